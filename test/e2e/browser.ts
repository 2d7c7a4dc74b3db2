/**
 * Browser tests: headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core against
 * HridaAI listening on 127.0.0.1 with the strict Content-Security-Policy. The web UI is built once
 * into web/dist, and again only when its sources changed.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { describe, expect } from 'vitest';
import { createTestApp, REQUIRE_SERVICES, SQLITE, type TestApp } from '../harness.js';

export const CHROMIUM_PATH = process.env.HRIDAAI_CHROMIUM_PATH ?? '/usr/bin/chromium';
export const STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'";
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WEB = path.join(ROOT, 'web');
const DIST_INDEX = path.join(WEB, 'dist', 'index.html');
const DIST_STAMP = path.join(WEB, 'dist', '.source-hash');

export const chromiumInstalled = existsSync(CHROMIUM_PATH);

/** `describe` when Chromium is installed; otherwise skipped with a reason (a failure in CI). */
export function describeBrowser(name: string, fn: () => void): void {
  if (chromiumInstalled) {
    describe(name, fn);
    return;
  }
  if (REQUIRE_SERVICES)
    throw new Error(
      `HRIDAAI_REQUIRE_SERVICES=1 but Chromium is not installed at ${CHROMIUM_PATH} (apt-get install chromium)`,
    );
  console.warn(`skipped: ${name}: chromium not installed`);
  describe.skip(`${name} — skipped: chromium not installed`, fn);
}

function collect(p: string, out: string[]): void {
  if (!existsSync(p)) return;
  if (statSync(p).isDirectory()) for (const e of readdirSync(p).sort()) collect(path.join(p, e), out);
  else out.push(p);
}

/** Hash of everything the build reads from web/ (a stale or hand-edited build is rebuilt). */
function sourceHash(): string {
  const files: string[] = [];
  for (const p of ['src', 'public', 'index.html', 'vite.config.ts']) collect(path.join(WEB, p), files);
  const h = createHash('sha256');
  for (const f of files) h.update(path.relative(WEB, f)).update('\0').update(readFileSync(f)).update('\0');
  return h.digest('hex');
}

function buildIsFresh(hash: string): boolean {
  if (!existsSync(DIST_INDEX) || !existsSync(DIST_STAMP)) return false;
  return readFileSync(DIST_STAMP, 'utf8') === hash;
}

/** Builds web/dist if it is missing or was built from other sources; one build at a time across workers. */
export async function ensureWebBuild(): Promise<void> {
  if (buildIsFresh(sourceHash())) return;
  const lock = path.join(
    tmpdir(),
    `hridaai-web-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 16)}.lock`,
  );
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 300_000) rmdirSync(lock);
      if (Date.now() > deadline) throw new Error(`Timed out waiting for the web build lock ${lock}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    const hash = sourceHash();
    if (buildIsFresh(hash)) return;
    const r = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'node_modules/vite/bin/vite.js'),
        'build',
        '--config',
        'web/vite.config.ts',
        '--logLevel',
        'warn',
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 170_000 },
    );
    if (r.status !== 0) throw new Error(`web build failed (${r.status}): ${r.stderr || r.stdout}`);
    writeFileSync(DIST_STAMP, hash);
  } finally {
    rmdirSync(lock);
  }
}

export interface Server {
  app: TestApp;
  url: string;
  close(): Promise<void>;
}

/** HridaAI on SQLite, listening on 127.0.0.1 with the strict CSP header (unless `csp: false`). */
export async function startServer(
  env: Record<string, string> = {},
  opts: { csp?: boolean; port?: number } = {},
): Promise<Server> {
  const app = await createTestApp(SQLITE, {
    env: { ...(opts.csp === false ? {} : { CONTENT_SECURITY_POLICY: STRICT_CSP }), ...env },
  });
  await app.app.listen({ port: opts.port ?? 0, host: '127.0.0.1' });
  const addr = app.app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no listening address');
  return { app, url: `http://127.0.0.1:${addr.port}`, close: () => app.close() };
}

export async function launchBrowser(): Promise<Browser> {
  // playwright starts Chromium with a fresh temporary --user-data-dir of its own.
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface PageWatch {
  /** Console messages about Content-Security-Policy violations. */
  csp: string[];
  /** Uncaught exceptions in the page. */
  pageErrors: string[];
}

export function watchPage(page: Page): PageWatch {
  const w: PageWatch = { csp: [], pageErrors: [] };
  page.on('console', (m) => {
    const t = m.text();
    if (/content security policy/i.test(t)) w.csp.push(t);
  });
  page.on('pageerror', (e) => w.pageErrors.push(String(e)));
  return w;
}

const RESULTS = path.join(ROOT, 'test-results', 'e2e');
const DOC_IMAGES = path.join(ROOT, 'docs', 'images');

/**
 * Saves a screenshot as a test artifact (test-results/e2e/); with HRIDAAI_UPDATE_SCREENSHOTS=1 it
 * also refreshes the copy in docs/images/ that the README shows.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  const png = await page.screenshot({ fullPage: false, animations: 'disabled' });
  writeFileSync(path.join(RESULTS, `${name}.png`), png);
  if (process.env.HRIDAAI_UPDATE_SCREENSHOTS === '1') {
    mkdirSync(DOC_IMAGES, { recursive: true });
    writeFileSync(path.join(DOC_IMAGES, `${name}.png`), png);
  }
}

/** Every value in localStorage and sessionStorage of the page, as one string. */
export async function webStorageDump(page: Page): Promise<string> {
  return page.evaluate<string>(
    'JSON.stringify({ local: Object.assign({}, window.localStorage), session: Object.assign({}, window.sessionStorage) })',
  );
}

export const JWT_SHAPE = /eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]{4,}/;

/** `expect.poll` with room for a loaded machine (the default gives up after one second). */
export function poll<T>(fn: () => T | Promise<T>, timeout = 20_000) {
  return expect.poll(fn, { timeout, interval: 100 });
}
