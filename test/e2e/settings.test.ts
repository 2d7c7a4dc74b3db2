/**
 * Account settings in the browser: profile name and image, two-factor enrolment and the second
 * sign-in step (recovery code), a temporary password that must be changed at the next sign-in,
 * the personal data export and account deletion.
 */
import { authenticator } from 'otplib';
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
  type PageWatch,
  type Server,
  poll,
} from './browser.js';

const PASSWORD = 'correct horse battery';
// A 1×1 PNG.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

describeBrowser('web UI: account settings (chromium, strict CSP)', () => {
  let server: Server;
  let browser: Browser;
  let adminToken: string;
  const watches: PageWatch[] = [];

  beforeAll(async () => {
    await ensureWebBuild();
    server = await startServer();
    adminToken = (await signup(server.app)).token;
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function signIn(email: string, password: string) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    watches.push(watchPage(page));
    await page.goto(`${server.url}/`);
    await page.getByLabel('E-mail').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    return { ctx, page };
  }

  it('profile, two-factor enrolment and sign-in with a recovery code', async () => {
    const u = await makeUser(server.app, { role: 'user', password: PASSWORD, email: 'ines@example.com' });
    const { ctx, page } = await signIn(u.user.email, PASSWORD);
    await page.getByLabel('Message', { exact: true }).waitFor();

    // ---- profile: name and image
    await page.goto(`${server.url}/settings/profile`);
    await page.getByLabel('Name').fill('Inês');
    await page.getByRole('button', { name: 'Save profile' }).click();
    await page.getByText('Profile saved.').waitFor();
    await page.locator('input[type=file]').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: PNG });
    await poll(
      async () =>
        (
          await server.app.ctx.db
            .selectFrom('profile_images')
            .select('content_type')
            .where('user_id', '=', u.user.id)
            .executeTakeFirst()
        )?.content_type,
    ).toBe('image/png');
    // The page shows the new image (1×1), not the default avatar.
    await poll(() =>
      page.evaluate<boolean>(
        "(() => { const i = document.querySelector('img.avatar'); return !!i && i.complete && i.naturalWidth === 1; })()",
      ),
    ).toBe(true);
    expect(
      (await server.app.ctx.db.selectFrom('users').select('name').where('id', '=', u.user.id).executeTakeFirst())?.name,
    ).toBe('Inês');

    // ---- two-factor: enrol, keep the recovery codes
    await page.getByRole('link', { name: 'Two-factor' }).click();
    await page.getByRole('heading', { name: 'Two-factor authentication' }).waitFor();
    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
    const secret = await page.getByLabel('Secret key').inputValue();
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
    // The otpauth URI is also shown as a QR code, drawn in the page (no request, strict CSP).
    const qr = page.getByRole('img', { name: 'QR code for your authenticator app' });
    await qr.waitFor();
    expect((await qr.locator('path').getAttribute('d'))!.length).toBeGreaterThan(500);
    await page.getByLabel('Code from the app').fill(authenticator.generate(secret));
    await page.getByRole('button', { name: 'Turn on' }).click();
    const codes = await page.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem').allInnerTexts();
    expect(codes).toHaveLength(10);
    await screenshot(page, 'settings-two-factor');
    await page.getByRole('button', { name: 'I have saved the codes' }).click();
    await page.getByText('Recovery codes left').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await ctx.close();

    // ---- the next sign-in asks for the second factor
    const again = await signIn(u.user.email, PASSWORD);
    await again.page.getByRole('heading', { name: 'Two-step verification' }).waitFor();
    expect(await again.ctx.cookies()).toEqual([]);
    await again.page.getByRole('button', { name: 'Use a recovery code' }).click();
    await again.page.getByLabel('Recovery code').fill('not-a-code');
    await again.page.getByRole('button', { name: 'Verify' }).click();
    await again.page.getByRole('alert').waitFor();
    await again.page.getByLabel('Recovery code').fill(codes[0]!);
    await again.page.getByRole('button', { name: 'Verify' }).click();
    await again.page.getByLabel('Message', { exact: true }).waitFor();
    const storage = await again.page.evaluate<string>(
      'JSON.stringify([Object.assign({}, localStorage), Object.assign({}, sessionStorage)])',
    );
    expect(storage).not.toMatch(/challenge|eyJ/);
    await again.ctx.close();
  }, 120_000);

  it('a temporary password set by an admin must be changed before anything else', async () => {
    const u = await makeUser(server.app, { role: 'user', password: PASSWORD, email: 'tom@example.com' });
    const set = await call(server.app, 'POST', `/api/v1/users/${u.user.id}/password`, {
      token: adminToken,
      body: { password: 'temporary pass 123', require_change: true },
    });
    expect(set.status).toBe(200);
    const { ctx, page } = await signIn(u.user.email, 'temporary pass 123');
    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    expect(await page.getByRole('navigation', { name: 'Main' }).count()).toBe(0);
    await page.getByLabel('Current password').fill('temporary pass 123');
    await page.getByLabel('New password', { exact: true }).fill('my own pass 456');
    await page.getByLabel('Confirm new password').fill('my own pass 456');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByLabel('Message', { exact: true }).waitFor();
    await ctx.close();
  }, 120_000);

  it('exports the account data and deletes the account', async () => {
    const u = await makeUser(server.app, { role: 'user', password: PASSWORD, email: 'zoe@example.com' });
    const { ctx, page } = await signIn(u.user.email, PASSWORD);
    await page.getByLabel('Message', { exact: true }).waitFor();
    await page.goto(`${server.url}/settings/data`);
    await page.getByRole('heading', { name: 'Your data' }).waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download my data' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('hridaai-export.json');
    const text = await (await download.createReadStream()).toArray();
    expect(Buffer.concat(text).toString('utf8')).toContain('zoe@example.com');
    await screenshot(page, 'settings-data');

    await page.getByLabel('Current password').fill(PASSWORD);
    const deleteButton = page.getByRole('button', { name: 'Delete my account' });
    expect(await deleteButton.isDisabled()).toBe(true);
    await page.getByLabel(/to confirm/).fill('delete my account');
    await deleteButton.click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete everything' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    const gone = await server.app.ctx.db
      .selectFrom('users')
      .select('id')
      .where('id', '=', u.user.id)
      .executeTakeFirst();
    expect(gone).toBeUndefined();
    await ctx.close();

    for (const w of watches) {
      expect(w.csp).toEqual([]);
      expect(w.pageErrors).toEqual([]);
    }
  }, 120_000);
});
