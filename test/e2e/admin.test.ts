/**
 * The admin console in a real browser: connections (secrets never shown), groups and their
 * permissions, the effective-permission matrix, the audit log viewer with filters, usage, and
 * impersonation with its banner.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startOpenAIUpstream, type MockUpstream } from '../fixtures/upstream.js';
import { call, makeUser, signup } from '../harness.js';
import {
  describeBrowser,
  ensureWebBuild,
  launchBrowser,
  screenshot,
  startServer,
  watchPage,
  type Server,
  poll,
} from './browser.js';

const SECRET = 'sk-upstream-admin-e2e-S3cr3t-value';

describeBrowser('web UI: admin console (chromium, strict CSP)', () => {
  let server: Server;
  let upstream: MockUpstream;
  let browser: Browser;

  beforeAll(async () => {
    await ensureWebBuild();
    upstream = await startOpenAIUpstream({ apiKey: SECRET });
    server = await startServer();
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await upstream?.close();
  });

  it('connections, groups, permissions, audit, usage and impersonation', async () => {
    const admin = await signup(server.app, 'root@example.com');
    const member = await makeUser(server.app, { role: 'user', email: 'dev@example.com' });
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    await ctx.addCookies([{ name: 'token', value: admin.token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    const watch = watchPage(page);

    // ---- a connection: the key goes in, only a mask comes out
    await page.goto(`${server.url}/admin/connections`);
    await page.getByRole('heading', { name: 'Connections' }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('fixture');
    await page.getByLabel('Base URL').fill(upstream.baseUrl);
    await page.getByLabel('API key').fill(SECRET);
    await page.getByRole('button', { name: 'Add connection' }).click();
    await page.getByText('Connection added.').waitFor();
    const row = page.getByRole('row').filter({ hasText: 'fixture' });
    await row.getByText('********').waitFor();
    await page.getByRole('button', { name: 'Test fixture' }).click();
    await row.getByText(/OK: 2 models/).waitFor();
    expect(await page.content()).not.toContain(SECRET);
    await screenshot(page, 'admin-connections');

    // ---- a group that grants API keys, with a member
    await page.getByRole('link', { name: 'Groups' }).click();
    await page.getByRole('heading', { name: 'Groups' }).waitFor();
    await page.getByLabel('Group name').fill('Engineers');
    await page.getByRole('button', { name: 'Create group' }).click();
    const editor = page.getByRole('region', { name: 'Group Engineers' });
    await editor.waitFor();
    await editor.getByLabel('API keys').check();
    await editor.getByRole('button', { name: 'Save group' }).click();
    await editor.getByText('Group saved.').waitFor();
    await editor.getByLabel('Add a member').fill('dev@');
    await editor.getByRole('button', { name: 'Add dev@example.com' }).click();
    await editor.getByText('dev@example.com was added to the group.').waitFor();
    await editor.getByRole('button', { name: 'Remove dev@example.com' }).waitFor();
    await screenshot(page, 'admin-groups');
    const perms = await call(server.app, 'GET', '/api/v1/users/me/permissions', { token: member.token });
    expect(perms.body.permissions.features.api_keys).toBe(true);

    // ---- the effective-permission matrix shows it
    await page.getByRole('link', { name: 'Permissions' }).click();
    await page.getByRole('heading', { name: 'Effective permissions' }).waitFor();
    const devRow = page.getByRole('row').filter({ hasText: 'dev@example.com' }).first();
    await devRow.waitFor();
    expect(await devRow.getByLabel('allowed').count()).toBeGreaterThanOrEqual(1);
    await devRow.getByText('Groups: Engineers').waitFor();
    await screenshot(page, 'admin-permissions');

    // ---- the audit log: filters, details, no secret
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    await page.getByRole('cell', { name: 'connection.created' }).waitFor();
    await page.getByLabel('Action').fill('group.*');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await poll(() => page.getByRole('cell', { name: 'connection.created' }).count()).toBe(0);
    await page.getByRole('cell', { name: 'group.created' }).waitFor();
    const actions = await page.locator('tbody td.mono').allInnerTexts();
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.every((a) => a.startsWith('group.'))).toBe(true);
    await page
      .getByRole('row')
      .filter({ hasText: 'group.created' })
      .getByRole('button', { name: /^Details/ })
      .click();
    await page.locator('pre.json').first().waitFor();
    await screenshot(page, 'admin-audit');
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByRole('cell', { name: 'connection.created' }).waitFor();
    expect(await page.content()).not.toContain(SECRET);

    // ---- usage
    await page.getByRole('link', { name: 'Usage' }).click();
    await page.getByRole('heading', { name: 'Usage' }).waitFor();
    await page.getByRole('rowheader', { name: 'Total' }).waitFor();

    // ---- impersonation: banner while acting, admin again after
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('button', { name: 'Act as dev@example.com' }).click();
    const dialog = page.getByRole('dialog', { name: 'Act as dev@example.com' });
    await dialog.getByLabel(/Reason/).fill('Checking a support ticket');
    await dialog.getByRole('button', { name: 'Start' }).click();
    const banner = page.getByText('You are acting as');
    await banner.waitFor();
    expect(await page.getByRole('link', { name: 'Admin' }).count()).toBe(0);
    await screenshot(page, 'impersonation-banner');
    await page.getByRole('button', { name: /^Stop acting as/ }).click();
    await page.getByRole('heading', { name: 'Users' }).waitFor();
    expect(await page.getByText('You are acting as').count()).toBe(0);
    const trail = await call(server.app, 'GET', '/api/v1/audit?action=impersonation.*', { token: admin.token });
    expect(trail.body.items.map((e: { action: string }) => e.action)).toContain('impersonation.started');

    expect(watch.csp).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    await ctx.close();
  }, 180_000);
});
