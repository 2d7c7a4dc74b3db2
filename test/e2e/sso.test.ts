/**
 * Single sign-on in a real browser: the sign-in page offers the configured provider, the browser
 * goes through the OpenID Connect provider (the test IdP on 127.0.0.1) and comes back signed in
 * with an HttpOnly cookie; a refused sign-in comes back to the sign-in page with a message.
 */
import { randomUUID } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort, startTestIdp, type TestIdp } from '../fixtures/oidc-provider.js';
import { signup } from '../harness.js';
import {
  describeBrowser,
  ensureWebBuild,
  JWT_SHAPE,
  launchBrowser,
  poll,
  startServer,
  watchPage,
  webStorageDump,
  type Server,
} from './browser.js';

describeBrowser('web UI: single sign-on (chromium, strict CSP)', () => {
  let server: Server;
  let idp: TestIdp;
  let browser: Browser;

  beforeAll(async () => {
    await ensureWebBuild();
    const port = await freePort();
    const redirect = `http://127.0.0.1:${port}/oauth/oidc/callback`;
    idp = await startTestIdp({ redirectUris: [redirect] });
    server = await startServer(
      {
        OAUTH_CLIENT_ID: idp.clientId,
        OAUTH_CLIENT_SECRET: idp.clientSecret,
        OPENID_PROVIDER_URL: idp.issuer,
        OPENID_REDIRECT_URI: redirect,
        OAUTH_SCOPES: 'openid email profile',
        OAUTH_PROVIDER_NAME: 'Company SSO',
        ENABLE_OAUTH_SIGNUP: 'true',
        OAUTH_ALLOWED_DOMAINS: 'example.com',
        DEFAULT_USER_ROLE: 'user',
      },
      { port },
    );
    await signup(server.app);
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await idp?.close();
  });

  it('signs in through the provider and lands in the app', async () => {
    const sub = `sub-${randomUUID()}`;
    idp.setAccount(sub, { email: 'sso-user@example.com', email_verified: true, name: 'Sam Sso' });
    idp.loginAs(sub);
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const watch = watchPage(page);
    await page.goto(`${server.url}/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByRole('link', { name: 'Continue with Company SSO' }).click();
    await page.getByLabel('Message', { exact: true }).waitFor();
    expect(await page.getByRole('navigation', { name: 'Main' }).innerText()).toContain('Chat');
    const cookie = (await ctx.cookies(server.url)).find((c) => c.name === 'token');
    expect(cookie?.httpOnly).toBe(true);
    expect(await webStorageDump(page)).not.toMatch(JWT_SHAPE);
    expect(watch.csp).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    await ctx.close();
  });

  it('a refused sign-in comes back to the sign-in page with a message', async () => {
    const sub = `sub-${randomUUID()}`;
    idp.setAccount(sub, { email: 'someone@elsewhere.test', email_verified: true, name: 'Out Sider' });
    idp.loginAs(sub);
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${server.url}/`);
    await page.getByRole('link', { name: 'Continue with Company SSO' }).click();
    await page
      .getByRole('alert')
      .getByText(/Single sign-on did not succeed|no account/)
      .waitFor();
    await poll(() => new URL(page.url()).search).toBe('');
    expect((await ctx.cookies(server.url)).find((c) => c.name === 'token')).toBeUndefined();
    await ctx.close();
  });
});
