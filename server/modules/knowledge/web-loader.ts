import type { AppContext } from '../../context.js';
import { AppError } from '../../platform/http/errors.js';
import { createSafeFetch, UrlBlockedError, type SafeFetchOptions } from '../../platform/net/index.js';
import { FetchError } from '../../platform/net/errors.js';
import { extractText, htmlToText } from './extract.js';

/**
 * The web loader: a URL a person typed becomes a document. Both engines go through safe-fetch —
 * `safe_web` directly, `playwright` for every request the rendered page makes (see playwright.ts).
 */
export const WEB_MAX_BYTES = 5 * 1024 * 1024;
export const WEB_TIMEOUT_MS = 20_000;

export interface LoadedPage {
  url: string;
  title: string;
  text: string;
  contentType: string;
  size: number;
}

/** Transport overrides (resolver, socket layer) — tests only. */
type Transport = Pick<SafeFetchOptions, 'resolver' | 'connector' | 'onConnect'>;
const transports = new WeakMap<object, Transport>();

export function setWebLoaderTransport(ctx: Pick<AppContext, 'config'>, t: Transport | null): void {
  if (t) transports.set(ctx.config, t);
  else transports.delete(ctx.config);
}

export function webFetchOptions(ctx: Pick<AppContext, 'config'>): SafeFetchOptions {
  return { purpose: 'web_loader', maxBytes: WEB_MAX_BYTES, timeoutMs: WEB_TIMEOUT_MS, ...transports.get(ctx.config) };
}

/** Maps safe-fetch refusals to the API's error codes (`url_blocked` names the rule). */
export function toAppError(e: unknown): Error {
  if (e instanceof UrlBlockedError)
    return new AppError('url_blocked', `The URL is blocked: ${e.message}`, { rule: e.rule });
  if (e instanceof FetchError)
    return new AppError('fetch_failed', `The page could not be fetched: ${e.message}`, { reason: e.reason });
  return e as Error;
}

function titleFromUrl(u: string): string {
  try {
    const url = new URL(u);
    return `${url.hostname}${url.pathname === '/' ? '' : url.pathname}`.slice(0, 300);
  } catch {
    return u.slice(0, 300);
  }
}

async function loadWithSafeFetch(ctx: AppContext, url: string): Promise<LoadedPage> {
  const sf = createSafeFetch(ctx.config, webFetchOptions(ctx));
  try {
    const res = await sf.fetch(url, {
      headers: { accept: 'text/html,application/xhtml+xml,text/plain;q=0.9,application/pdf;q=0.8,*/*;q=0.5' },
    });
    if (res.status < 200 || res.status >= 300) {
      res.dispose();
      throw new FetchError('bad_response', `the server answered HTTP ${res.status}`);
    }
    const body = await res.buffer();
    const ct = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    let extracted;
    if (
      ct === 'text/html' ||
      ct === 'application/xhtml+xml' ||
      (!ct && /<html/i.test(body.subarray(0, 1024).toString()))
    )
      extracted = htmlToText(body.toString('utf8'));
    else if (ct === 'application/pdf') extracted = await extractText(body, 'pdf');
    else if (ct.startsWith('text/') || ct === 'application/json') extracted = await extractText(body, 'txt', ct);
    else throw new AppError('extraction_failed', `Pages of type ${ct || 'unknown'} cannot be loaded`);
    return {
      url: res.url,
      title: extracted.title || titleFromUrl(res.url),
      text: extracted.text,
      contentType: ct || 'text/html',
      size: body.length,
    };
  } finally {
    await sf.close();
  }
}

export async function loadWebPage(ctx: AppContext, url: string): Promise<LoadedPage> {
  try {
    if (ctx.config.WEB_LOADER_ENGINE === 'playwright') {
      const { loadWithPlaywright } = await import('./playwright.js');
      return await loadWithPlaywright(ctx, url);
    }
    return await loadWithSafeFetch(ctx, url);
  } catch (e) {
    throw toAppError(e);
  }
}
