/**
 * The admin Users page in a real browser: the API keys of another user are listed (metadata only)
 * and one is revoked after a confirmation; the key stops working at once.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, makeUser, signup } from '../harness.js';
import {
  describeBrowser,
  ensureWebBuild,
  launchBrowser,
  poll,
  screenshot,
  startServer,
  watchPage,
  type Server,
} from './browser.js';

describeBrowser('web UI: admin revokes a user’s API key (chromium, strict CSP)', () => {
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

  it('lists the keys of a user in Manage and revokes one after confirming', async () => {
    const admin = await signup(server.app, 'root@example.com');
    const member = await makeUser(server.app, { role: 'user', email: 'dev@example.com' });
    const group = await call(server.app, 'POST', '/api/v1/groups', {
      token: admin.token,
      body: { name: 'Key holders', permissions: { features: { api_keys: true } } },
    });
    expect(group.status, group.text).toBe(201);
    expect(
      (
        await call(server.app, 'POST', `/api/v1/groups/${group.body.id}/members`, {
          token: admin.token,
          body: { user_ids: [member.user.id] },
        })
      ).status,
    ).toBe(200);
    const made: { id: string; key: string }[] = [];
    for (const name of ['ci-bot', 'notebook']) {
      const r = await call(server.app, 'POST', '/api/v1/api-keys', { token: member.token, body: { name } });
      expect(r.status, r.text).toBe(201);
      made.push(r.body);
    }
    const [ciBot, notebook] = made as [{ id: string; key: string }, { id: string; key: string }];
    expect((await call(server.app, 'GET', '/api/v1/auths/', { token: ciBot.key })).status).toBe(200);

    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    await ctx.addCookies([{ name: 'token', value: admin.token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    const watch = watchPage(page);

    await page.goto(`${server.url}/admin/users`);
    await page.getByRole('heading', { name: 'Users' }).waitFor();
    await page.getByRole('button', { name: 'Manage dev@example.com' }).click();
    const section = page.getByRole('region', { name: 'API keys of dev@example.com' });
    await section.getByRole('cell', { name: 'ci-bot', exact: true }).waitFor();
    await section.getByRole('cell', { name: 'notebook', exact: true }).waitFor();
    await section.getByText(`sk-${ciBot.id}…${ciBot.key.slice(-4)}`).waitFor();
    const html = await page.content();
    for (const k of made) expect(html).not.toContain(k.key.slice(19));
    await section.scrollIntoViewIfNeeded();
    await screenshot(page, 'admin-user-api-keys');

    // Cancel first: nothing happens.
    await section.getByRole('button', { name: 'Revoke key ci-bot' }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke “ci-bot” of dev@example.com?' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await poll(() => dialog.isVisible()).toBe(false);
    expect((await call(server.app, 'GET', '/api/v1/auths/', { token: ciBot.key })).status).toBe(200);

    await section.getByRole('button', { name: 'Revoke key ci-bot' }).click();
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await section.getByText('The key “ci-bot” was revoked.').waitFor();
    await poll(() => section.getByRole('cell', { name: 'ci-bot', exact: true }).count()).toBe(0);
    await section.getByRole('cell', { name: 'notebook', exact: true }).waitFor();

    const gone = await call(server.app, 'GET', '/api/v1/auths/', { token: ciBot.key });
    expect(gone.status).toBe(401);
    expect((await call(server.app, 'GET', '/api/v1/auths/', { token: notebook.key })).status).toBe(200);
    const trail = await call(server.app, 'GET', '/api/v1/audit?action=api_key.revoked', { token: admin.token });
    expect(trail.body.items.map((e: { resource_id: string }) => e.resource_id)).toEqual([ciBot.id]);

    expect(watch.csp).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    await ctx.close();
  }, 180_000);
});
