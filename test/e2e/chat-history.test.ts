/**
 * Chat history in the browser: stored chats in the sidebar, pin, folders, archive, delete — and a
 * share link opened by another signed-in user (read-only), refused to a visitor who is not signed
 * in, and dead once its owner stops sharing. Another user's chat id shows nothing.
 */
import type { Browser, BrowserContext } from 'playwright-core';
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

describeBrowser('web UI: chat history and share links (chromium, strict CSP)', () => {
  let server: Server;
  let browser: Browser;
  const watches: PageWatch[] = [];

  async function contextFor(token: string | null): Promise<BrowserContext> {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    if (token)
      await ctx.addCookies([{ name: 'token', value: token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    return ctx;
  }

  beforeAll(async () => {
    await ensureWebBuild();
    server = await startServer();
    await signup(server.app);
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('pins, files, archives and deletes chats; shares one with another user', async () => {
    const alice = await makeUser(server.app, { role: 'user' });
    const bob = await makeUser(server.app, { role: 'user' });
    for (const [title, q, a] of [
      ['Recipe', 'Soup?', 'Use *leeks*.'],
      ['Trip plan', 'Plan a trip', 'Go to **Lisbon** <img src=x onerror="window.__xss=1">'],
    ] as const) {
      const r = await call(server.app, 'POST', '/api/v1/chats', {
        token: alice.token,
        body: {
          title,
          messages: [
            { role: 'user', content: q },
            { role: 'assistant', content: a, model: 'some-model' },
          ],
        },
      });
      expect(r.status).toBe(201);
    }

    const aliceCtx = await contextFor(alice.token);
    const page = await aliceCtx.newPage();
    watches.push(watchPage(page));
    await page.goto(`${server.url}/chat`);
    const sidebar = page.getByRole('complementary', { name: 'Chats' });
    await sidebar.getByRole('button', { name: 'Trip plan' }).click();
    await page.getByRole('heading', { name: 'Trip plan', level: 1 }).waitFor();
    const tripUrl = page.url();
    expect(new URL(tripUrl).pathname).toMatch(/^\/chat\/[0-9a-f-]{36}$/);
    await page.getByRole('article', { name: 'Answer' }).locator('strong', { hasText: 'Lisbon' }).waitFor();

    // ---- pin
    await page.getByRole('button', { name: 'Chat options' }).click();
    await page.getByRole('button', { name: 'Pin', exact: true }).click();
    await sidebar
      .getByRole('region', { name: 'Pinned' })
      .getByRole('button', { name: /Trip plan/ })
      .waitFor();

    // ---- share: the link is shown and copied
    await page.getByRole('button', { name: 'Share link' }).click();
    const linkField = page.getByLabel(/^Share link/);
    await linkField.waitFor();
    const link = await linkField.inputValue();
    expect(link).toMatch(new RegExp(`^${server.url}/s/[A-Za-z0-9_-]{32}$`));
    await page.getByRole('button', { name: 'Copy link' }).click();
    await page.getByText('Link copied.').waitFor();
    expect(await page.evaluate<string>('navigator.clipboard.readText()')).toBe(link);
    await screenshot(page, 'chat-options');

    // ---- another signed-in user opens the link: a read-only copy
    const bobCtx = await contextFor(bob.token);
    const bobPage = await bobCtx.newPage();
    watches.push(watchPage(bobPage));
    await bobPage.goto(link);
    await bobPage.getByRole('heading', { name: 'Trip plan' }).waitFor();
    await bobPage.locator('strong', { hasText: 'Lisbon' }).waitFor();
    expect(await bobPage.getByText('Read-only copy shared by its owner').count()).toBe(1);
    expect(await bobPage.getByLabel('Message', { exact: true }).count()).toBe(0);
    expect(await bobPage.getByRole('button', { name: 'Edit' }).count()).toBe(0);
    expect(await bobPage.locator('.markdown img, [onerror]').count()).toBe(0);
    expect(await bobPage.evaluate<boolean>('"__xss" in window')).toBe(false);
    await screenshot(bobPage, 'shared-chat');

    // Bob cannot open Alice's chat itself.
    await bobPage.goto(tripUrl);
    await bobPage.getByText('This chat does not exist.').waitFor();
    expect(await bobPage.content()).not.toContain('Lisbon');

    // A visitor who is not signed in gets the sign-in page, not the chat.
    const anonCtx = await contextFor(null);
    const anon = await anonCtx.newPage();
    await anon.goto(link);
    await anon.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await anon.content()).not.toContain('Lisbon');
    await anonCtx.close();

    // ---- stop sharing: the link is dead
    await page.getByRole('button', { name: 'Stop sharing' }).click();
    await linkField.waitFor({ state: 'detached' });
    await bobPage.goto(link);
    await bobPage.getByText('This link does not exist or is no longer shared.').waitFor();
    await bobCtx.close();

    // ---- a folder
    await sidebar.getByRole('button', { name: 'New folder' }).click();
    await sidebar.getByLabel('Folder name').fill('Kitchen');
    await sidebar.getByRole('button', { name: 'Create folder' }).click();
    const folder = sidebar.locator('details.folder', { hasText: 'Kitchen' });
    await folder.waitFor();
    await sidebar.getByRole('button', { name: 'Recipe' }).click();
    await page.getByRole('heading', { name: 'Recipe', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Chat options' }).click();
    await page.getByLabel('Folder', { exact: true }).selectOption({ label: 'Kitchen' });
    await folder.getByRole('button', { name: 'Recipe' }).waitFor();

    // ---- rename, archive, find it in the archive, unarchive
    await page.getByLabel('Title', { exact: true }).fill('Leek soup');
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByRole('heading', { name: 'Leek soup', level: 1 }).waitFor();
    await folder.getByRole('button', { name: 'Leek soup' }).waitFor();
    await page.getByRole('button', { name: 'Archive', exact: true }).click();
    await poll(() => new URL(page.url()).pathname).toBe('/chat');
    await folder.getByText('Empty.').waitFor();
    await sidebar.getByRole('button', { name: 'Archived' }).click();
    await sidebar.getByRole('button', { name: 'Leek soup' }).click();
    await page.getByRole('button', { name: 'Chat options' }).click();
    await page.getByRole('button', { name: 'Unarchive' }).click();
    await sidebar.getByText('No archived chats.').waitFor();
    await sidebar.getByRole('button', { name: 'Chats', exact: true }).click();

    // ---- search finds message text
    await sidebar.getByLabel('Search chats').fill('lisbon');
    await sidebar.getByRole('button', { name: /Trip plan/ }).waitFor();
    await poll(() => sidebar.getByRole('button', { name: 'Leek soup' }).count()).toBe(0);
    await sidebar.getByRole('button', { name: /Trip plan/ }).waitFor();
    await sidebar.getByLabel('Search chats').fill('');

    // ---- delete
    await sidebar.getByRole('button', { name: /Trip plan/ }).click();
    await page.getByRole('heading', { name: 'Trip plan', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Chat options' }).click();
    await page.getByRole('button', { name: 'Delete chat' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await poll(() => new URL(page.url()).pathname).toBe('/chat');
    await poll(() => sidebar.getByRole('button', { name: /Trip plan/ }).count()).toBe(0);
    const left = await call(server.app, 'GET', '/api/v1/chats?archived=all', { token: alice.token });
    expect(left.body.items.map((c: { title: string }) => c.title)).toEqual(['Leek soup']);

    await aliceCtx.close();
    for (const w of watches) {
      expect(w.csp).toEqual([]);
      expect(w.pageErrors).toEqual([]);
    }
  }, 180_000);
});
