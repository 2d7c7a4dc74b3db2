/**
 * The admin settings page in a real browser: a value set in the environment is shown with its
 * source, a secret is masked, and no secret value reaches the page.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signup } from '../harness.js';
import {
  describeBrowser,
  ensureWebBuild,
  launchBrowser,
  screenshot,
  startServer,
  watchPage,
  type Server,
} from './browser.js';

const CLIENT_SECRET = 'oidc-client-secret-e2e-41c9d7';

describeBrowser('web UI: admin settings (chromium, strict CSP)', () => {
  let server: Server;
  let browser: Browser;

  beforeAll(async () => {
    await ensureWebBuild();
    server = await startServer({
      OAUTH_CLIENT_ID: 'hridaai-e2e',
      OAUTH_CLIENT_SECRET: CLIENT_SECRET,
      OPENID_PROVIDER_URL: 'http://127.0.0.1:9/',
      OAUTH_PROVIDER_NAME: 'Company SSO',
    });
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('shows each value with its source, masks secrets, filters by name', async () => {
    const admin = await signup(server.app);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await ctx.addCookies([{ name: 'token', value: admin.token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    const watch = watchPage(page);
    await page.goto(`${server.url}/admin/users`);
    await page.getByRole('link', { name: 'Configuration', exact: true }).click();
    await page.getByRole('heading', { name: 'Configuration', exact: true }).waitFor();
    await page.getByText('this view is read-only', { exact: false }).waitFor();
    await page.getByRole('region', { name: 'Single sign-on (OAuth / OpenID Connect)' }).waitFor();

    const row = (name: string) => page.locator(`tr[data-setting="${name}"]`);
    await expect.poll(() => row('OAUTH_PROVIDER_NAME').locator('[data-col=value]').innerText()).toBe('Company SSO');
    expect(await row('OAUTH_PROVIDER_NAME').locator('[data-col=source]').innerText()).toBe('environment');
    expect(await row('ENABLE_ADMIN_EXPORT').locator('[data-col=source]').innerText()).toBe('default');
    expect(await row('OAUTH_CLIENT_SECRET').locator('[data-col=value]').innerText()).toContain('********');
    expect(await row('HRIDAAI_SECRET_KEY').locator('[data-col=value]').innerText()).toContain('********');
    const html = await page.content();
    expect(html).not.toContain(CLIENT_SECRET);
    expect(html).not.toContain(server.app.env.HRIDAAI_SECRET_KEY!);

    await page.getByLabel('Filter settings').fill('oauth_client');
    await expect.poll(() => page.locator('tr[data-setting]').count()).toBe(2);
    expect(await row('OAUTH_CLIENT_ID').count()).toBe(1);
    expect(await row('JWT_EXPIRES_IN').count()).toBe(0);
    await screenshot(page, 'admin-settings');

    expect(watch.csp).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    await ctx.close();
  }, 120_000);
});
