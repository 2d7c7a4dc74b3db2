import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setWebLoaderTransport } from '../../server/modules/knowledge/index.js';
import { lastPlaywrightStats } from '../../server/modules/knowledge/playwright.js';
import { call, createTestApp, SQLITE, signup, type TestApp } from '../harness.js';
import { FAKE_PUBLIC, startAttacker, startCanary, testNet, type Attacker, type Canary } from '../net/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const d = existsSync(CHROMIUM) ? describe : describe.skip;
if (!existsSync(CHROMIUM)) console.warn(`skipped: Playwright loader tests: ${CHROMIUM} not installed`);

d('WEB_LOADER_ENGINE=playwright', () => {
  let canary: Canary;
  let attacker: Attacker;
  const apps: TestApp[] = [];

  async function appWith(env: Record<string, string>) {
    const app = await createTestApp(SQLITE, {
      env: { WEB_LOADER_ENGINE: 'playwright', WEB_LOADER_CHROMIUM_PATH: CHROMIUM, ...env },
    });
    apps.push(app);
    const net = testNet(attacker.port, { 'news.example': [FAKE_PUBLIC], 'loop.example': ['127.0.0.1'] });
    setWebLoaderTransport(app.ctx, { resolver: net.resolver, connector: net.connector });
    const admin = await signup(app);
    const kb = await call(app, 'POST', '/api/v1/knowledge', { token: admin.token, body: { name: 'web' } });
    return { app, token: admin.token, kb: kb.body.id as string };
  }

  beforeAll(async () => {
    canary = await startCanary();
    attacker = await startAttacker();
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    await canary?.close();
    await attacker?.close();
  });

  it('renders a page whose subresources and scripts reach for loopback: every such request is blocked', async () => {
    const { app, token, kb } = await appWith({});
    const p = canary.port;
    const html = `<!doctype html><html><head><title>Wombat facts</title>
      <link rel="stylesheet" href="http://localhost:${p}/s.css">
      <script src="http://127.0.0.1:${p}/a.js"></script></head>
      <body><p>The wombat digs burrows.</p>
      <img src="http://127.0.0.1:${p}/x.png"><img src="http://[::1]:${p}/y.png"><img src="http://loop.example:${p}/z.png">
      <iframe src="http://2130706433:${p}/frame"></iframe>
      <script>
        fetch('http://127.0.0.1:${p}/fetch').catch(() => {});
        try { new WebSocket('ws://127.0.0.1:${p}/ws'); } catch (e) {}
        navigator.sendBeacon && navigator.sendBeacon('http://127.0.0.1:${p}/beacon', 'x');
        var x = new XMLHttpRequest(); x.open('GET', 'http://169.254.169.254/latest/meta-data/'); x.send();
        document.body.insertAdjacentHTML('beforeend', '<p>Script ran.</p>');
      </script></body></html>`;
    const before = canary.hits();
    const r = await call(app, 'POST', `/api/v1/knowledge/${kb}/web`, {
      token,
      body: { url: 'http://news.example/page?html=' + encodeURIComponent(html) },
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.title).toBe('Wombat facts');
    const q = await call(app, 'POST', '/api/v1/retrieval/query', {
      token,
      body: { query: 'wombat', knowledge_ids: [kb] },
    });
    expect(q.body.items[0].text).toContain('The wombat digs burrows.');
    expect(q.body.items[0].text).toContain('Script ran.');
    const stats = lastPlaywrightStats();
    expect(stats.intercepted).toBeGreaterThan(5);
    expect(stats.blocked).toBeGreaterThan(5);
    // nothing the page asked for escaped interception (Chromium's own update pings may reach the black hole)
    expect(stats.escapeTargets.filter((l) => /127\.0\.0\.1|localhost|\[::1\]|news\.example|169\.254/.test(l))).toEqual(
      [],
    );
    expect(canary.hits()).toBe(before);
  });

  it('refuses a loopback URL and a redirect to one, with redirects off and on', async () => {
    const before = canary.hits();
    const target = `http://127.0.0.1:${canary.port}/`;
    for (const env of [{}, { AIOHTTP_CLIENT_ALLOW_REDIRECTS: 'true' }] as Record<string, string>[]) {
      const { app, token, kb } = await appWith(env);
      for (const url of [target, `http://news.example/r?to=${encodeURIComponent(target)}`]) {
        const r = await call(app, 'POST', `/api/v1/knowledge/${kb}/web`, { token, body: { url } });
        expect(r.status, `${JSON.stringify(env)} ${url}`).toBe(400);
        expect(r.body.error.code).toBe('url_blocked');
      }
    }
    // with redirects on, a public hop is followed by the browser and checked again
    const { app, token, kb } = await appWith({ AIOHTTP_CLIENT_ALLOW_REDIRECTS: 'true' });
    const page = `/page?html=${encodeURIComponent('<title>Hop</title><p>After the hop.</p>')}`;
    const ok = await call(app, 'POST', `/api/v1/knowledge/${kb}/web`, {
      token,
      body: { url: `http://news.example/r?to=${encodeURIComponent(page)}` },
    });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.title).toBe('Hop');
    expect(canary.hits()).toBe(before);
    expect(lastPlaywrightStats().escapeTargets.filter((l) => /127\.0\.0\.1|news\.example/.test(l))).toEqual([]);
  });
});

d('isolated Chromium (the safety net under interception)', () => {
  it('a request that is not intercepted reaches only the black hole, never the target', async () => {
    const { launchIsolatedChromium } = await import('../../server/modules/knowledge/playwright.js');
    const canary = await startCanary();
    const lines: string[] = [];
    const { browser, close } = await launchIsolatedChromium(CHROMIUM, (l) => lines.push(l ?? ''));
    try {
      const page = await (await browser.newContext()).newPage();
      for (const u of [
        `http://127.0.0.1:${canary.port}/`,
        `http://localhost:${canary.port}/`,
        `http://[::1]:${canary.port}/`,
      ]) {
        await expect(page.goto(u, { timeout: 10_000 })).rejects.toThrow();
      }
      expect(lines.some((l) => l.includes(`:${canary.port}`))).toBe(true);
      expect(canary.hits()).toBe(0);
    } finally {
      await close();
      await canary.close();
    }
  });
});
