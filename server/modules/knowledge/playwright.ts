import net, { type AddressInfo } from 'node:net';
import { chromium, type Route } from 'playwright-core';
import type { AppContext } from '../../context.js';
import { AppError } from '../../platform/http/errors.js';
import { createSafeFetch, UrlBlockedError } from '../../platform/net/index.js';
import { FetchError } from '../../platform/net/errors.js';
import { WEB_MAX_BYTES, WEB_TIMEOUT_MS, webFetchOptions, type LoadedPage } from './web-loader.js';

/**
 * WEB_LOADER_ENGINE=playwright. Chromium never reaches the network itself:
 * - every request of the page (documents, frames, scripts, images, fetch/XHR, beacons) is
 *   intercepted and served through safe-fetch, so the same SSRF rules, the same single lookup and
 *   the same redirect rule (AIOHTTP_CLIENT_ALLOW_REDIRECTS, hop limit, every hop re-checked) apply;
 * - WebSockets are closed; service workers are blocked;
 * - Chromium's own resolver maps every name to NOTFOUND, and its proxy is a local black hole for
 *   loopback too (`<-loopback>`), so anything that escaped interception would fail (and is counted).
 */
export interface PlaywrightStats {
  intercepted: number;
  blocked: number;
  /** Connections that reached the black hole instead (Chromium's own background traffic, e.g. updates). */
  escapes: number;
  /** Their first request line (`CONNECT host:port …`). */
  escapeTargets: string[];
}

let lastStats: PlaywrightStats = { intercepted: 0, blocked: 0, escapes: 0, escapeTargets: [] };
/** Counters of the last load (tests). */
export function lastPlaywrightStats(): PlaywrightStats {
  return lastStats;
}

const PASS_REQUEST_HEADERS = ['accept', 'accept-language', 'content-type', 'user-agent'];
const DROP_RESPONSE_HEADERS = new Set([
  'content-encoding',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'set-cookie',
  'alt-svc',
]);

async function blackHole(
  onConnection: () => void,
  onRequestLine?: (line: string) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    onConnection();
    sockets.add(s);
    s.once('data', (d) => {
      onRequestLine?.(d.toString('latin1').split('\r\n')[0]!.slice(0, 300));
      s.destroy();
    });
    s.setTimeout(500, () => s.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/**
 * Chromium whose own network path leads nowhere: names resolve to NOTFOUND and every connection,
 * loopback included, goes to a local black hole that counts it (`onEscape`) and closes it.
 */
export async function launchIsolatedChromium(executablePath: string, onEscape: (requestLine?: string) => void) {
  const hole = await blackHole(
    () => undefined,
    (line) => onEscape(line),
  );
  try {
    const browser = await chromium.launch({
      executablePath,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-domain-reliability',
        '--disable-sync',
        '--no-pings',
        '--dns-prefetch-disable',
        '--no-first-run',
        '--disable-default-apps',
        '--disable-extensions',
        '--disable-client-side-phishing-detection',
        '--disable-features=OptimizationHints,Translate,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater',
        `--proxy-server=http://127.0.0.1:${hole.port}`,
        '--proxy-bypass-list=<-loopback>',
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      ],
    });
    return {
      browser,
      async close() {
        await browser.close().catch(() => undefined);
        await hole.close();
      },
    };
  } catch (e) {
    await hole.close();
    throw e;
  }
}

export async function loadWithPlaywright(ctx: AppContext, url: string): Promise<LoadedPage> {
  const sf = createSafeFetch(ctx.config, webFetchOptions(ctx));
  const stats: PlaywrightStats = { intercepted: 0, blocked: 0, escapes: 0, escapeTargets: [] };
  lastStats = stats;
  let launched: Awaited<ReturnType<typeof launchIsolatedChromium>>;
  try {
    await sf.check(url); // refuse before starting a browser
    launched = await launchIsolatedChromium(ctx.config.WEB_LOADER_CHROMIUM_PATH ?? '/usr/bin/chromium', (line) => {
      stats.escapes++;
      if (line && stats.escapeTargets.length < 50) stats.escapeTargets.push(line);
    });
  } catch (e) {
    await sf.close();
    throw e;
  }
  const { browser, close } = launched;
  let mainError: Error | null = null;
  let finalUrl = url;
  try {
    const context = await browser.newContext({ serviceWorkers: 'block', acceptDownloads: false });
    await context.routeWebSocket(/.*/, (ws) => {
      stats.blocked++;
      void ws.close();
    });
    const page = await context.newPage();
    const isMain = (route: Route) => {
      const r = route.request();
      return r.isNavigationRequest() && r.frame() === page.mainFrame();
    };
    await context.route('**/*', async (route) => {
      stats.intercepted++;
      const req = route.request();
      const main = isMain(route);
      try {
        const headers: Record<string, string> = {};
        const given = req.headers();
        for (const h of PASS_REQUEST_HEADERS) if (given[h]) headers[h] = given[h]!;
        // Redirects are followed (or refused) by safe-fetch itself, every hop re-checked: Chromium
        // does not route the hops of a redirect it follows on its own, so it never sees a 3xx.
        const res = await sf.fetch(req.url(), {
          method: req.method(),
          headers,
          body: req.postDataBuffer() ?? undefined,
          redirect: 'follow',
          maxBytes: WEB_MAX_BYTES,
          timeoutMs: WEB_TIMEOUT_MS,
        });
        if (main) finalUrl = res.url;
        let body = await res.buffer();
        if (main && res.redirects.length > 0 && /html/i.test(res.headers['content-type'] ?? ''))
          body = Buffer.concat([Buffer.from(`<base href="${res.url.replace(/"/g, '%22')}">`), body]);
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (!DROP_RESPONSE_HEADERS.has(k)) out[k] = v;
        await route.fulfill({ status: res.status, headers: out, body });
      } catch (e) {
        stats.blocked++;
        if (main && !mainError) mainError = e as Error;
        await route.abort(e instanceof UrlBlockedError ? 'blockedbyclient' : 'failed').catch(() => undefined);
      }
    });
    const response = await page.goto(url, { waitUntil: 'load', timeout: WEB_TIMEOUT_MS }).catch((e: Error) => {
      if (mainError) return null;
      throw new FetchError(
        'connect_failed',
        `The page could not be loaded (${e.message.split('\n')[0]!.slice(0, 120)})`,
      );
    });
    if (mainError) throw mainError;
    if (!response) throw new FetchError('connect_failed', 'The page could not be loaded');
    if (response.status() >= 400) throw new FetchError('bad_response', `the server answered HTTP ${response.status()}`);
    await page.waitForLoadState('networkidle', { timeout: 3000 }).catch(() => undefined);
    const title = (await page.title()).slice(0, 300);
    // Runs in the page, where `document` exists; the server is compiled without DOM types.
    const text = await page.evaluate(
      () => (globalThis as unknown as { document?: { body?: { innerText?: string } } }).document?.body?.innerText ?? '',
    );
    return {
      url: finalUrl,
      title: title || new URL(finalUrl).hostname,
      text: text.replace(/\n{3,}/g, '\n\n').trim(),
      contentType: 'text/html',
      size: Buffer.byteLength(text),
    };
  } catch (e) {
    if (e instanceof UrlBlockedError || e instanceof FetchError || e instanceof AppError) throw e;
    throw new FetchError('connect_failed', 'The page could not be rendered');
  } finally {
    await close();
    await sf.close();
  }
}
