/**
 * The Pyodide runtime is served by HridaAI itself (no CDN: offline installs work and nothing is
 * fetched from elsewhere): an allowlist of files of the installed package, with the right content
 * types, without authentication, and nothing else of the disk. The code worker's script carries a
 * policy of its own that allows WebAssembly and nothing the page's policy forbids otherwise.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CODE_WORKER_CSP, PYODIDE_FILES, pyodideDir } from '../../server/modules/code/routes.js';
import { call, createTestApp, SQLITE, type TestApp } from '../harness.js';
import { ensureWebBuild, ROOT, STRICT_CSP } from '../e2e/browser.js';

const workerFile = () => readdirSync(path.join(ROOT, 'web/dist/assets')).find((f) => /^python-worker-.+\.js$/.test(f))!;

describe('Pyodide runtime and code worker served by HridaAI', () => {
  let app: TestApp;
  let off: TestApp;

  beforeAll(async () => {
    await ensureWebBuild();
    app = await createTestApp(SQLITE, {
      env: { CONTENT_SECURITY_POLICY: STRICT_CSP, CONTENT_SECURITY_POLICY_REPORT_ONLY: "script-src 'self'" },
    });
    off = await createTestApp(SQLITE, { env: { ENABLE_CODE_EXECUTION: 'false', ENABLE_CODE_INTERPRETER: 'false' } });
  }, 240_000);

  afterAll(async () => {
    await app?.close();
    await off?.close();
  });

  it('the installed pyodide package has every file the worker loads', () => {
    const dir = pyodideDir()!;
    expect(dir).toBeTruthy();
    for (const f of [
      'pyodide.asm.wasm',
      'pyodide.asm.js',
      'pyodide.mjs',
      'pyodide.js',
      'python_stdlib.zip',
      'pyodide-lock.json',
    ])
      expect(statSync(path.join(dir, f)).isFile(), f).toBe(true);
  });

  it('serves the wasm as application/wasm, without a session, byte for byte', async () => {
    const r = await app.app.inject({ method: 'GET', url: '/static/pyodide/pyodide.asm.wasm' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('application/wasm');
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers['content-security-policy']).toBe(STRICT_CSP);
    const onDisk = readFileSync(path.join(pyodideDir()!, 'pyodide.asm.wasm'));
    expect(Number(r.headers['content-length'])).toBe(onDisk.length);
    expect(r.rawPayload.subarray(0, 4).toString('hex')).toBe('0061736d'); // \0asm
    expect(r.rawPayload.equals(onDisk)).toBe(true);
    // Revalidation costs a 304.
    const again = await app.app.inject({
      method: 'GET',
      url: '/static/pyodide/pyodide.asm.wasm',
      headers: { 'if-none-match': String(r.headers.etag) },
    });
    expect(again.statusCode).toBe(304);
    expect(again.rawPayload.length).toBe(0);
  });

  it('serves every allowlisted file with its content type', async () => {
    const expected: Record<string, RegExp> = {
      'pyodide.js': /^text\/javascript/,
      'pyodide.mjs': /^text\/javascript/,
      'pyodide.asm.js': /^text\/javascript/,
      'pyodide.asm.wasm': /^application\/wasm$/,
      'python_stdlib.zip': /^application\/zip$/,
      'pyodide-lock.json': /^application\/json/,
    };
    expect(Object.keys(PYODIDE_FILES).sort()).toEqual(Object.keys(expected).sort());
    for (const [f, type] of Object.entries(expected)) {
      const r = await call(app, 'GET', `/static/pyodide/${f}`);
      expect(r.status, f).toBe(200);
      expect(String(r.headers['content-type']), f).toMatch(type);
    }
  });

  it('serves nothing else: other files of the package, traversal and encoded variants are 404', async () => {
    for (const url of [
      '/static/pyodide/package.json',
      '/static/pyodide/README.md',
      '/static/pyodide/pyodide.d.ts',
      '/static/pyodide/console.html',
      '/static/pyodide/pyodide.js.map',
      '/static/pyodide/',
      '/static/pyodide/../../package.json',
      '/static/pyodide/..%2f..%2fpackage.json',
      '/static/pyodide/%2e%2e%2f%2e%2e%2fpackage.json',
      '/static/pyodide/%2e%2e/%2e%2e/package.json',
      '/static/pyodide/..%5c..%5cpackage.json',
      '/static/pyodide/pyodide.js%00.wasm',
      '/static/pyodide/%252e%252e%252fpackage.json',
      '/static/pyodide/__proto__',
      '/static/pyodide/constructor',
      '/static/pyodide/hasOwnProperty',
      '/static/pyodide/PYODIDE.ASM.WASM',
    ]) {
      const r = await call(app, 'GET', url);
      expect(r.status, url).toBe(404);
      expect(r.text, url).not.toContain('"name": "hrida-ai"');
      expect(r.text, url).not.toContain('"name": "pyodide"');
    }
    // A deeper path is a page of the UI (index.html), never a file of the package.
    const deeper = await call(app, 'GET', '/static/pyodide/pyodide.asm.wasm/x');
    expect(String(deeper.headers['content-type'])).toMatch(/^text\/html/);
  });

  it('the code worker script carries the worker policy (wasm, no eval) instead of the page policy', async () => {
    const file = workerFile();
    const r = await call(app, 'GET', `/assets/${file}`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/javascript/);
    expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(r.headers['content-security-policy']).toBe(CODE_WORKER_CSP);
    expect(r.headers['content-security-policy-report-only']).toBeUndefined();
    expect(CODE_WORKER_CSP).toContain("'wasm-unsafe-eval'");
    expect(CODE_WORKER_CSP).not.toMatch(/'unsafe-eval'|'unsafe-inline'/);
    expect(r.text).toBe(readFileSync(path.join(ROOT, 'web/dist/assets', file), 'utf8'));
    // The page and its other scripts keep the admin's policy, unchanged.
    const page = await call(app, 'GET', '/chat');
    expect(page.headers['content-security-policy']).toBe(STRICT_CSP);
    expect(page.headers['content-security-policy']).not.toMatch(/wasm-unsafe-eval|unsafe-eval/);
    const main = /src="(\/assets\/[^"]+\.js)"/.exec(page.text)![1]!;
    expect((await call(app, 'GET', main)).headers['content-security-policy']).toBe(STRICT_CSP);
    // Unknown or malformed worker names are 404, nothing is read outside web/dist/assets.
    for (const url of [
      '/assets/python-worker-missing.js',
      '/assets/python-worker-..%2f..%2findex.html',
      '/assets/python-worker-..%2f..%2f..%2fpackage.json',
      '/assets/python-worker-x.js%00',
    ]) {
      const bad = await call(app, 'GET', url);
      expect(bad.status, url).toBe(404);
      expect(bad.headers['content-security-policy'], url).not.toBe(CODE_WORKER_CSP);
    }
  });

  it('with code execution and the interpreter off, neither the runtime nor the worker is served', async () => {
    expect((await call(off, 'GET', '/static/pyodide/pyodide.asm.wasm')).status).toBe(404);
    expect((await call(off, 'GET', '/static/pyodide/pyodide.js')).status).toBe(404);
    expect((await call(off, 'GET', `/assets/${workerFile()}`)).status).toBe(404);
  });
});
