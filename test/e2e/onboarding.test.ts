/**
 * The sign-up path in a real browser under the strict CSP: onboarding creates the first admin, a
 * second person signs up and waits on the pending screen, the admin approves them (which ends their
 * session), and they sign in again and chat with a streamed answer from the fixture upstream. No
 * token is ever readable by page scripts.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startOpenAIUpstream, type MockUpstream } from '../fixtures/upstream.js';
import { call } from '../harness.js';
import {
  describeBrowser,
  ensureWebBuild,
  JWT_SHAPE,
  launchBrowser,
  screenshot,
  startServer,
  STRICT_CSP,
  watchPage,
  webStorageDump,
  type PageWatch,
  type Server,
  poll,
} from './browser.js';

const PASSWORD = 'correct horse battery';
const ADMIN = { name: 'Ada Admin', email: 'ada@example.com' };
const USER = { name: 'Grace User', email: 'grace@example.com' };

async function assertNoReadableToken(ctx: BrowserContext, page: Page) {
  const cookie = (await ctx.cookies()).find((c) => c.name === 'token');
  expect(cookie, 'the session cookie is set').toBeDefined();
  expect(cookie!.httpOnly).toBe(true);
  expect(cookie!.value).toMatch(JWT_SHAPE);
  const storage = await webStorageDump(page);
  expect(storage).not.toContain(cookie!.value);
  expect(storage).not.toMatch(JWT_SHAPE);
  expect(await page.evaluate<string>('document.cookie')).not.toContain(cookie!.value);
}

describeBrowser('web UI: onboarding, sign-up, approval (chromium, strict CSP)', () => {
  let server: Server;
  let browser: Browser;
  let upstream: MockUpstream;
  const watches: PageWatch[] = [];

  beforeAll(async () => {
    await ensureWebBuild();
    upstream = await startOpenAIUpstream({ apiKey: 'sk-upstream-onboarding-0123' });
    server = await startServer({ ENABLE_SIGNUP: 'true' });
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await upstream?.close();
  });

  it('onboarding → first admin; second user pending → approved → signs in again and reaches the app', async () => {
    // ---- the administrator creates the first account
    const adminCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const admin = await adminCtx.newPage();
    watches.push(watchPage(admin));
    const first = await admin.goto(`${server.url}/`);
    expect(first!.status()).toBe(200);
    expect(first!.headers()['content-security-policy']).toBe(STRICT_CSP);

    await admin.getByRole('heading', { name: 'Set up HridaAI' }).waitFor();
    await admin.getByLabel('Name').fill(ADMIN.name);
    await admin.getByLabel('E-mail').fill(ADMIN.email);
    await admin.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await admin.getByLabel('Confirm password').fill(PASSWORD);
    await screenshot(admin, 'onboarding');
    await admin.getByRole('button', { name: 'Create administrator account' }).click();
    await admin.getByRole('navigation', { name: 'Main' }).waitFor();
    await admin.getByRole('link', { name: 'Admin' }).waitFor();
    expect(new URL(admin.url()).pathname).toBe('/chat');
    await assertNoReadableToken(adminCtx, admin);

    // The admin connects a model server (through the API, with the browser's session).
    const adminToken = (await adminCtx.cookies()).find((c) => c.name === 'token')!.value;
    const conn = await call(server.app, 'POST', '/api/v1/connections', {
      token: adminToken,
      body: { type: 'openai', name: 'fixture', base_url: upstream.baseUrl, api_key: 'sk-upstream-onboarding-0123' },
    });
    expect(conn.status).toBe(201);

    const row = await server.app.ctx.db
      .selectFrom('users')
      .select(['role'])
      .where('email', '=', ADMIN.email)
      .executeTakeFirst();
    expect(row?.role).toBe('admin');

    // ---- a second person signs up (phone-sized window) and waits for approval
    const userCtx = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const user = await userCtx.newPage();
    watches.push(watchPage(user));
    await user.goto(`${server.url}/`);
    await user.getByRole('heading', { name: 'Sign in' }).waitFor();
    await screenshot(user, 'sign-in-phone');
    await user.getByRole('button', { name: 'Create one' }).click();
    await user.getByRole('heading', { name: 'Create an account' }).waitFor();
    await user.getByLabel('Name').fill(USER.name);
    await user.getByLabel('E-mail').fill(USER.email);
    await user.getByLabel('Password').fill(PASSWORD);
    await user.getByRole('button', { name: 'Create account' }).click();
    await user.getByRole('heading', { name: 'Waiting for approval' }).waitFor();
    await assertNoReadableToken(userCtx, user);
    await screenshot(user, 'pending-phone');

    // A pending account sees the pending screen whatever the address.
    await user.goto(`${server.url}/admin/users`);
    await user.getByRole('heading', { name: 'Waiting for approval' }).waitFor();
    expect(await user.getByRole('navigation', { name: 'Main' }).count()).toBe(0);

    // ---- the admin approves it from the users page
    await admin.getByRole('link', { name: 'Admin' }).click();
    await admin.getByRole('heading', { name: 'Users' }).waitFor();
    const pendingRow = admin.getByRole('row').filter({ hasText: USER.email });
    await pendingRow.getByText('Awaiting approval').waitFor();
    await screenshot(admin, 'admin-users');
    await admin.getByRole('button', { name: `Approve ${USER.email}` }).click();
    await admin.getByText(`${USER.email} was approved.`).waitFor();
    await pendingRow.getByText('Active', { exact: true }).waitFor();
    const approved = await server.app.ctx.db
      .selectFrom('users')
      .select(['id', 'role'])
      .where('email', '=', USER.email)
      .executeTakeFirstOrThrow();
    expect(approved.role).toBe('user');
    const grant = await call(server.app, 'POST', '/api/v1/access/model/mock-gpt/grants', {
      token: adminToken,
      body: { principal_type: 'user', principal_id: approved.id, permission: 'read' },
    });
    expect(grant.status).toBe(201);

    // ---- approval ended the pending session: the pending screen asks to sign in again
    await user.getByRole('button', { name: 'Check again' }).click();
    await user.getByRole('heading', { name: 'Sign in' }).waitFor();
    await user.getByText('Your account has been reviewed').waitFor();
    expect(await user.getByLabel('E-mail').inputValue()).toBe(USER.email);
    // Keyboard only: the password field has the focus, Enter submits.
    await user.keyboard.type(PASSWORD);
    await user.keyboard.press('Enter');
    await user.getByLabel('Message', { exact: true }).waitFor();
    expect(new URL(user.url()).pathname).toBe('/chat');
    await assertNoReadableToken(userCtx, user);

    // ---- the approved user chats: the answer streams in from the fixture upstream
    upstream.set({ chunks: 6, chunkDelayMs: 60, chunkText: (i) => `part${i} ` });
    await poll(() => user.getByLabel('Model').inputValue()).toBe('mock-gpt');
    await user.getByLabel('Message', { exact: true }).fill('Hello from a phone');
    await user.getByRole('button', { name: 'Send' }).click();
    await user.getByRole('article', { name: 'Answer' }).getByText('part5').waitFor();
    await screenshot(user, 'chat-phone');
    expect(upstream.requests.filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(1);

    // On a phone the main navigation sits behind the menu button.
    await user.getByRole('button', { name: 'Menu' }).click();
    await user.getByRole('link', { name: 'Settings' }).click();
    await user.getByRole('heading', { name: 'Profile' }).waitFor();
    expect(await user.getByRole('link', { name: 'Admin' }).count()).toBe(0);

    // ---- settings pages
    await admin.getByRole('link', { name: 'Settings' }).click();
    await admin.getByRole('heading', { name: 'Profile' }).waitFor();
    await screenshot(admin, 'settings-profile');
    await admin.getByRole('link', { name: 'Sessions' }).click();
    await admin.getByRole('heading', { name: 'Sessions' }).waitFor();
    await admin.getByText('This session', { exact: true }).waitFor();
    await screenshot(admin, 'settings-sessions');

    // ---- the admin revokes the user's sessions: the user's next request lands on the sign-in page
    await admin.getByRole('link', { name: 'Admin' }).click();
    await admin.getByRole('button', { name: `Manage ${USER.email}` }).click();
    await admin.getByRole('button', { name: `Revoke all sessions of ${USER.email}` }).click();
    await admin
      .getByRole('region', { name: `Sessions of ${USER.email}` })
      .getByText('No active sessions.')
      .waitFor();
    await user.getByRole('link', { name: 'Sessions' }).click();
    await user.getByRole('heading', { name: 'Sign in' }).waitFor();
    await user.getByText('This session has ended').waitFor();

    await adminCtx.close();
    await userCtx.close();

    for (const w of watches) {
      expect(w.csp, 'no Content-Security-Policy violations').toEqual([]);
      expect(w.pageErrors, 'no uncaught errors').toEqual([]);
    }
  }, 180_000);

  it('the violation detector works: an inline script is blocked and reported', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const w = watchPage(page);
    await page.goto(`${server.url}/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.evaluate(`(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__inlineRan = true';
      document.body.appendChild(s);
    })()`);
    await poll(() => w.csp.length).toBeGreaterThan(0);
    expect(await page.evaluate<boolean>('window.__inlineRan === true')).toBe(false);
    await ctx.close();
  });
});
