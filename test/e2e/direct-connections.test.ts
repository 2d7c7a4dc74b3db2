/**
 * A user's own model connections (Settings › Connections) in a real browser: not offered when
 * ENABLE_DIRECT_CONNECTIONS is off; when on, added (the key only ever shown masked), tested,
 * edited and deleted, with the server's refusal of a forbidden address shown next to the form.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startOpenAIUpstream, type MockUpstream } from '../fixtures/upstream.js';
import { call, makeUser, signup } from '../harness.js';
import {
  describeBrowser,
  ensureWebBuild,
  launchBrowser,
  poll,
  screenshot,
  startServer,
  watchPage,
  type PageWatch,
  type Server,
} from './browser.js';

const KEY = 'sk-own-direct-e2e-5e1f0c9a77';

describeBrowser('web UI: direct connections (chromium, strict CSP)', () => {
  let off: Server;
  let on: Server;
  let upstream: MockUpstream;
  let browser: Browser;
  const watches: PageWatch[] = [];

  beforeAll(async () => {
    await ensureWebBuild();
    upstream = await startOpenAIUpstream({ apiKey: KEY, models: ['own-model'] });
    off = await startServer();
    // A user's URL goes through the SSRF rules, which refuse private addresses; this instance
    // allows them (ENABLE_RAG_LOCAL_WEB_FETCH) so that the loopback fixture is reachable.
    on = await startServer({ ENABLE_DIRECT_CONNECTIONS: 'true', ENABLE_RAG_LOCAL_WEB_FETCH: 'true' });
    await signup(off.app);
    await signup(on.app);
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    for (const w of watches) {
      expect(w.csp).toEqual([]);
      expect(w.pageErrors).toEqual([]);
    }
    await browser?.close();
    await off?.close();
    await on?.close();
    await upstream?.close();
  });

  async function open(server: Server, token: string, path: string) {
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    await ctx.addCookies([{ name: 'token', value: token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    watches.push(watchPage(page));
    await page.goto(`${server.url}${path}`);
    return { ctx, page };
  }

  it('is not offered when the server has direct connections off', async () => {
    const u = await makeUser(off.app, { role: 'user' });
    const { ctx, page } = await open(off, u.token, '/settings/connections');
    // An unknown settings page falls back to the profile.
    await page.waitForURL(`${off.url}/settings/profile`);
    const subnav = page.getByRole('navigation', { name: 'Settings' });
    await subnav.getByRole('link', { name: 'Profile' }).waitFor();
    expect(await subnav.getByRole('link', { name: 'Connections' }).count()).toBe(0);
    expect((await call(off.app, 'GET', '/api/config')).body.features.enable_direct_connections).toBe(false);
    await ctx.close();
  }, 60_000);

  it('add (key masked), refuse a forbidden address, test, edit and delete', async () => {
    const u = await makeUser(on.app, { role: 'user' });
    const { ctx, page } = await open(on, u.token, '/settings/profile');
    await page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Connections' }).click();
    await page.getByRole('heading', { name: 'Your connections' }).waitFor();
    await page.getByText('You have no connections of your own yet.').waitFor();

    // The cloud metadata address is refused even where local addresses are allowed.
    await page.getByLabel('Name', { exact: true }).fill('mine');
    await page.getByLabel('Base URL').fill('http://169.254.169.254/v1');
    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Add connection' }).click();
    await page.getByRole('alert').getByText('base_url is not allowed').waitFor();
    expect((await call(on.app, 'GET', '/api/v1/user/connections', { token: u.token })).body.items).toEqual([]);

    await page.getByLabel('Base URL').fill(upstream.baseUrl);
    await page.getByRole('button', { name: 'Add connection' }).click();
    await page.getByText('Connection added.').waitFor();
    const listed = await call(on.app, 'GET', '/api/v1/user/connections', { token: u.token });
    expect(listed.body.items).toHaveLength(1);
    const id = listed.body.items[0].id as string;
    expect(listed.body.items[0]).toMatchObject({ name: 'mine', api_key: '********', scope: 'user' });
    const row = page.locator(`tr[data-connection="${id}"]`);
    await row.getByText('********').waitFor();
    await page.getByRole('button', { name: 'Test mine' }).click();
    await row.getByText(/OK: 1 models/).waitFor();
    expect(await page.content()).not.toContain(KEY);
    const models = await call(on.app, 'GET', '/api/models', { token: u.token });
    expect(JSON.stringify(models.body)).toContain(`direct/${id}/own-model`);
    await screenshot(page, 'settings-connections');

    // Edit: a new name; the stored key is kept.
    await page.getByRole('button', { name: 'Edit mine' }).click();
    const editor = page.getByRole('region', { name: 'Edit mine' });
    await editor.getByLabel('Name', { exact: true }).fill('my server');
    await editor.getByRole('button', { name: 'Save connection' }).click();
    await page.getByText('Connection saved.').waitFor();
    await poll(() => row.locator('.cell-title').innerText()).toMatch(/^my server/);
    const retest = await call(on.app, 'POST', `/api/v1/user/connections/${id}/test`, { token: u.token });
    expect(retest.body).toMatchObject({ ok: true, models: 1 }); // the upstream still gets the stored key

    // Delete.
    await page.getByRole('button', { name: 'Delete my server' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByText('my server was deleted.').waitFor();
    await poll(() => row.count()).toBe(0);
    expect((await call(on.app, 'GET', '/api/v1/user/connections', { token: u.token })).body.items).toEqual([]);
    await ctx.close();
  }, 120_000);
});
