/** How the server hands out the built web UI: SPA fallback, API 404s, caching, no path escapes. */
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppContext } from '../../server/context.js';
import { registerWebUi } from '../../server/modules/web/routes.js';
import { call, createTestApp, SQLITE, type TestApp } from '../harness.js';
import { ensureWebBuild, STRICT_CSP } from './browser.js';

describe('web UI static serving', () => {
  let app: TestApp;

  beforeAll(async () => {
    await ensureWebBuild();
    app = await createTestApp(SQLITE, { env: { CONTENT_SECURITY_POLICY: STRICT_CSP } });
  }, 240_000);

  afterAll(async () => {
    await app?.close();
  });

  it('serves index.html at / and for client-side routes, uncached, with the security headers', async () => {
    for (const url of ['/', '/chat', '/settings/sessions', '/admin/users?role=pending']) {
      const r = await call(app, 'GET', url);
      expect(r.status, url).toBe(200);
      expect(r.headers['content-type']).toMatch(/^text\/html/);
      expect(r.headers['cache-control']).toBe('no-cache');
      expect(r.headers['content-security-policy']).toBe(STRICT_CSP);
      expect(r.text).toContain('<div id="root"></div>');
    }
  });

  it('the built page has no inline script and loads nothing from another origin', async () => {
    const html = (await call(app, 'GET', '/')).text;
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(body!.trim()).toBe('');
      expect(attrs).toMatch(/src="\/assets\/[^"]+\.js"/);
    }
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/\son[a-z]+=/i);
  });

  it('serves hashed assets with a long cache lifetime, other files revalidated', async () => {
    const html = (await call(app, 'GET', '/')).text;
    const js = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const r = await call(app, 'GET', js);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/javascript/);
    expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const icon = await call(app, 'GET', '/favicon.svg');
    expect(icon.status).toBe(200);
    expect(icon.headers['cache-control']).toBe('no-cache');
  });

  it('keeps the JSON 404 for unknown API paths and missing files', async () => {
    for (const url of ['/api', '/api/nope', '/api/v1/nope?x=1']) {
      const r = await call(app, 'GET', url);
      expect(r.status, url).toBe(404);
      expect(r.body.error.code).toBe('not_found');
    }
    const missing = await call(app, 'GET', '/assets/missing-abc123.js');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    // Other methods on UI paths are not routes.
    expect((await call(app, 'POST', '/chat', { body: {} })).status).toBe(404);
  });

  it('never serves a file outside web/dist, nor a dotfile', async () => {
    for (const url of [
      '/../package.json',
      '/%2e%2e/package.json',
      '/%2e%2e/%2e%2e/package.json',
      '/assets/..%2f..%2f..%2fpackage.json',
      '/assets/%2e%2e%5c..%5cpackage.json',
      '/.source-hash',
      '/%2esource-hash',
      '/index.html%00.js',
      '/%E0%A4%A.js',
    ]) {
      const r = await call(app, 'GET', url);
      expect(r.text, url).not.toContain('"name": "hrida-ai"');
      expect(r.text, url).not.toMatch(/^[0-9a-f]{64}$/);
      expect([200, 400, 404], url).toContain(r.status);
      if (r.status === 200) expect(r.text).toContain('<div id="root"></div>');
    }
  });

  it('without a build, explains how to build the UI', async () => {
    const bare = Fastify();
    await registerWebUi(bare, {} as AppContext, '/nonexistent/hridaai-web-dist');
    const r = await bare.inject({ method: 'GET', url: '/chat' });
    expect(r.statusCode).toBe(503);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.body).toContain('npm run build:web');
    expect(r.body).not.toMatch(/<script/i);
    const api = await bare.inject({ method: 'GET', url: '/api/x' });
    expect(api.statusCode).toBe(404);
    await bare.close();
  });
});
