/**
 * Sign-in lockouts and gateway limits in a real browser: an account locked by failed sign-ins is
 * listed and cleared, after which its owner signs in; a limit added in the form is what the API
 * returns, a bad value shows the server's message next to the form, and the user sees their own
 * limits in Settings. Non-admins are not offered the admin pages.
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
  type PageWatch,
  type Server,
} from './browser.js';

const PASSWORD = 'correct horse battery';

describeBrowser('web UI: lockouts and limits (chromium, strict CSP)', () => {
  let server: Server;
  let browser: Browser;
  let admin: { token: string };
  const watches: PageWatch[] = [];

  beforeAll(async () => {
    await ensureWebBuild();
    server = await startServer({ LOGIN_MAX_ATTEMPTS: '3', LOGIN_BACKOFF_BASE: '0' });
    admin = await signup(server.app, 'root@example.com');
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    for (const w of watches) {
      expect(w.csp).toEqual([]);
      expect(w.pageErrors).toEqual([]);
    }
    await browser?.close();
    await server?.close();
  });

  async function open(token: string | null, path: string) {
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    if (token)
      await ctx.addCookies([{ name: 'token', value: token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    watches.push(watchPage(page));
    await page.goto(`${server.url}${path}`);
    return { ctx, page };
  }

  it('a lockout from failed sign-ins is listed; clearing it lets the user sign in', async () => {
    const u = await makeUser(server.app, { role: 'user', email: 'locked@example.com', password: PASSWORD });
    const signin = (password: string) =>
      call(server.app, 'POST', '/api/v1/auths/signin', {
        body: { email: u.user.email, password },
        remoteAddress: '127.0.0.9',
      });
    for (let i = 0; i < 3; i++) expect((await signin('wrong password')).status).toBe(401);
    expect((await signin(PASSWORD)).status).toBe(401); // locked: the right password is refused too

    const { ctx, page } = await open(admin.token, '/admin/users');
    await page.getByRole('link', { name: 'Lockouts', exact: true }).click();
    await page.getByRole('heading', { name: 'Sign-in lockouts' }).waitFor();
    const row = page.getByRole('row').filter({ hasText: 'locked@example.com' });
    await row.getByText('Locked', { exact: true }).waitFor();
    expect(await row.innerText()).toContain(`User ${u.user.id}`);
    // The client address that made the attempts is listed too (not locked: its threshold is higher).
    await page.getByRole('row').filter({ hasText: '127.0.0.9' }).getByText('Can sign in').waitFor();
    await screenshot(page, 'admin-lockouts');

    await page.getByRole('button', { name: 'Clear account locked@example.com' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Clear', exact: true }).click();
    await page.getByText('The account locked@example.com was cleared').waitFor();
    await poll(() => row.count()).toBe(0);
    const left = await call(server.app, 'GET', '/api/v1/admin/lockouts', { token: admin.token });
    expect(left.body.items.map((e: { label: string }) => e.label)).toEqual(['127.0.0.9']);
    await ctx.close();

    // The user signs in with the sign-in form.
    const s = await open(null, '/');
    await s.page.getByLabel('E-mail').fill(u.user.email);
    await s.page.getByLabel('Password').fill(PASSWORD);
    await s.page.getByRole('button', { name: 'Sign in' }).click();
    await s.page.getByLabel('Message', { exact: true }).waitFor();
    await s.ctx.close();
  }, 120_000);

  it('limits: added in the form, returned by the API, bad values explained; the user sees theirs', async () => {
    const member = await makeUser(server.app, { role: 'user', email: 'member@example.com' });
    const { ctx, page } = await open(admin.token, '/admin/limits');
    await page.getByRole('heading', { name: 'Limits and budgets' }).waitFor();
    await page.getByRole('heading', { name: 'Defaults for every user' }).waitFor();
    await page.getByText('No limits yet').waitFor();

    await page.getByLabel('Applies to').selectOption('user');
    await page.getByLabel('User', { exact: true }).fill(member.user.id);
    await page.getByLabel('Requests per minute').fill('5');
    await page.getByLabel('Tokens per day').fill('0');
    await page.getByRole('button', { name: 'Add limits' }).click();
    await page.getByText('The limits were added.').waitFor();

    const api = await call(server.app, 'GET', '/api/v1/gateway/limits', { token: admin.token });
    expect(api.body.items).toHaveLength(1);
    expect(api.body.items[0]).toMatchObject({
      scope: 'user',
      subject_id: member.user.id,
      requests_per_minute: 5,
      tokens_per_minute: null,
      concurrent_requests: null,
      tokens_per_day: 0,
      tokens_per_month: null,
    });
    const row = page.locator(`tr[data-limit="${api.body.items[0].id}"]`);
    await poll(() => row.locator('.cell-title').innerText()).toBe('User Someone (member@example.com)');
    expect(await row.locator('[data-col=requests_per_minute]').innerText()).toBe('5');
    expect(await row.locator('[data-col=tokens_per_day]').innerText()).toBe('No limit');
    expect(await row.locator('[data-col=tokens_per_minute]').innerText()).toBe('Default');
    await screenshot(page, 'admin-limits');

    // A value the server refuses: its message is shown next to the form and next to the field.
    await page.getByRole('button', { name: 'Edit User Someone (member@example.com)' }).click();
    await page.getByRole('heading', { name: /^Edit the limits of user/ }).waitFor();
    await page.getByLabel('Requests per minute').fill('-5');
    await page.getByRole('button', { name: 'Save limits' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.innerText()).toMatch(/^Invalid body: requests_per_minute: .*>=\s*0/);
    await page.locator('.field-error').first().waitFor();
    expect(await page.getByLabel('Requests per minute').getAttribute('aria-invalid')).toBe('true');
    const unchanged = await call(server.app, 'GET', '/api/v1/gateway/limits', { token: admin.token });
    expect(unchanged.body.items[0].requests_per_minute).toBe(5);
    // Not a number at all: refused before it is sent.
    await page.getByLabel('Requests per minute').fill('lots');
    await page.getByRole('button', { name: 'Save limits' }).click();
    await page.getByText('Enter a whole number').waitFor();
    await page.getByLabel('Requests per minute').fill('7');
    await page.getByRole('button', { name: 'Save limits' }).click();
    await page.getByText('The limits were saved.').waitFor();
    await poll(async () => (await row.locator('[data-col=requests_per_minute]').innerText()).trim()).toBe('7');
    await ctx.close();

    // The member sees their own limits, and is not offered the admin pages.
    const m = await open(member.token, '/settings/limits');
    await m.page.getByRole('heading', { name: 'Usage limits' }).waitFor();
    const rpm = m.page.locator('tr[data-kind=requests]');
    await rpm.waitFor();
    expect(await rpm.locator('[data-col=value]').innerText()).toBe('7');
    expect(await rpm.innerText()).toContain('Your account');
    expect(await m.page.locator('tr[data-kind=budget_day]').count()).toBe(0); // 0: no limit
    await screenshot(m.page, 'settings-limits');
    expect(await m.page.getByRole('link', { name: 'Admin' }).count()).toBe(0);
    await m.page.goto(`${server.url}/admin/limits`);
    await m.page.waitForURL(`${server.url}/chat`);
    expect(await m.page.getByRole('heading', { name: 'Limits and budgets' }).count()).toBe(0);
    await m.ctx.close();
  }, 120_000);
});
