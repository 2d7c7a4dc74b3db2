/**
 * API keys in the browser: a key is shown once at creation (copy button), works as a Bearer
 * credential, is never stored by the page, and stops working when revoked from the list.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, makeUser, signup } from '../harness.js';
import {
  describeBrowser,
  ensureWebBuild,
  launchBrowser,
  screenshot,
  startServer,
  watchPage,
  webStorageDump,
  type Server,
} from './browser.js';

const KEY_SHAPE = /^sk-[0-9a-f]{16}[A-Za-z0-9_-]{43}$/;

describeBrowser('web UI: API keys (chromium, strict CSP)', () => {
  let server: Server;
  let browser: Browser;

  beforeAll(async () => {
    await ensureWebBuild();
    server = await startServer();
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('creates a key shown once, copies it, lists it without the secret, revokes it', async () => {
    const { token } = await signup(server.app);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    await ctx.addCookies([{ name: 'token', value: token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    const watch = watchPage(page);

    await page.goto(`${server.url}/settings`);
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('heading', { name: 'API keys' }).waitFor();
    await page.getByLabel('Name').fill('ci-bot');
    await page.getByLabel('Expires').selectOption('30');
    await page.getByRole('button', { name: 'Create key' }).click();

    const field = page.getByLabel('New API key');
    await field.waitFor();
    const key = await field.inputValue();
    expect(key).toMatch(KEY_SHAPE);
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    expect(await page.evaluate<string>('navigator.clipboard.readText()')).toBe(key);
    await screenshot(page, 'settings-api-keys');

    // The key works as a Bearer credential.
    const me = await call(server.app, 'GET', '/api/v1/auths/', { token: key });
    expect(me.status).toBe(200);
    expect(me.body.auth_kind).toBe('api-key');

    // Dismissed: the secret is gone from the page, and it was never stored.
    await page.getByRole('button', { name: 'I have saved the key' }).click();
    await field.waitFor({ state: 'detached' });
    expect(await page.content()).not.toContain(key);
    expect(await webStorageDump(page)).not.toContain(key);
    await page.reload();
    const row = page.getByRole('row').filter({ hasText: 'ci-bot' });
    await row.waitFor();
    expect(await row.innerText()).toContain(`sk-${key.slice(3, 19)}…${key.slice(-4)}`);
    expect(await page.content()).not.toContain(key);

    // Revoked from the list: it stops working at once.
    await page.getByRole('button', { name: 'Revoke key ci-bot' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await page.getByText('The key “ci-bot” was revoked.').waitFor();
    expect((await call(server.app, 'GET', '/api/v1/auths/', { token: key })).status).toBe(401);

    expect(watch.csp).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    await ctx.close();
  }, 120_000);

  it('is not offered to a user without the API-key permission', async () => {
    const { token } = await makeUser(server.app, { role: 'user' });
    const ctx = await browser.newContext();
    await ctx.addCookies([{ name: 'token', value: token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    await page.goto(`${server.url}/settings`);
    await page.getByRole('heading', { name: 'Profile' }).waitFor();
    await page.getByRole('link', { name: 'Sessions' }).waitFor();
    expect(await page.getByRole('link', { name: 'API keys' }).count()).toBe(0);
    // And the server agrees.
    const r = await call(server.app, 'POST', '/api/v1/api-keys', { token, body: { name: 'x' } });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('permission_required');
    await ctx.close();
  });
});
