/**
 * Workspace prompts in a real browser: the tab is offered only with the workspace permission; an
 * author creates a prompt and shares it with one of their groups through the grant editor; a member
 * of that group can read it.
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
  type Server,
} from './browser.js';

describeBrowser('web UI: workspace prompts (chromium, strict CSP)', () => {
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

  it('creates a prompt and shares it with a group; the tab needs the permission', async () => {
    const admin = await signup(server.app);
    const author = await makeUser(server.app, { role: 'user' });
    const reader = await makeUser(server.app, { role: 'user' });
    const group = await call(server.app, 'POST', '/api/v1/groups', {
      token: admin.token,
      body: { name: 'Editors', permissions: { workspace: { prompts: true } } },
    });
    expect(group.status, group.text).toBe(201);
    const added = await call(server.app, 'POST', `/api/v1/groups/${group.body.id}/members`, {
      token: admin.token,
      body: { user_ids: [author.user.id] },
    });
    expect(added.status).toBe(200);
    const readers = await call(server.app, 'POST', '/api/v1/groups', { token: admin.token, body: { name: 'Readers' } });
    expect(readers.status).toBe(201);
    await call(server.app, 'POST', `/api/v1/groups/${readers.body.id}/members`, {
      token: admin.token,
      body: { user_ids: [author.user.id, reader.user.id] },
    });

    // Without the permission there is no workspace in the navigation.
    const rc = await browser.newContext();
    await rc.addCookies([{ name: 'token', value: reader.token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const rp = await rc.newPage();
    await rp.goto(`${server.url}/chat`);
    await rp.getByRole('navigation', { name: 'Main' }).waitFor();
    expect(await rp.getByRole('navigation', { name: 'Main' }).innerText()).not.toContain('Workspace');
    await rc.close();

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await ctx.addCookies([{ name: 'token', value: author.token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    const watch = watchPage(page);
    await page.goto(`${server.url}/chat`);
    await page.getByRole('link', { name: 'Workspace' }).click();
    await page.getByRole('heading', { name: 'Prompts', exact: true }).waitFor();
    const tabs = await page.getByRole('navigation', { name: 'Workspace' }).innerText();
    expect(tabs).toContain('Prompts');
    expect(tabs).not.toContain('Knowledge');

    await page.getByLabel('Command').fill('/tidy');
    await page.getByLabel('Title', { exact: true }).fill('Tidy up');
    await page.getByLabel('Prompt text').fill('Rewrite the text below in plain English.');
    await page.getByRole('button', { name: 'Create prompt' }).click();
    const access = page.getByRole('region', { name: 'Access to /tidy' });
    await access.waitFor();
    await access.getByLabel('Add one of your groups').fill('read');
    await access.getByRole('button', { name: 'Give access to Group: Readers' }).click();
    await access.getByText('Can use', { exact: true }).first().waitFor();
    await screenshot(page, 'workspace-prompts');

    const listed = await call(server.app, 'GET', '/api/v1/prompts', { token: reader.token });
    expect(listed.body.items.map((p: { command: string }) => p.command)).toEqual(['tidy']);
    expect(listed.body.items[0].content).toBe('Rewrite the text below in plain English.');

    expect(watch.csp).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    await ctx.close();
  }, 180_000);
});
