/**
 * The workspace in a real browser: a model preset shared with a group through the grant editor
 * (a member then finds it in the chat's model picker; a non-member does not), and a knowledge base
 * with an uploaded document. The workspace is offered only to accounts with the permission.
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

const KEY = 'sk-upstream-workspace-0123456';

describeBrowser('web UI: workspace (chromium, strict CSP)', () => {
  let server: Server;
  let upstream: MockUpstream;
  let browser: Browser;

  beforeAll(async () => {
    await ensureWebBuild();
    upstream = await startOpenAIUpstream({ apiKey: KEY });
    server = await startServer();
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await upstream?.close();
  });

  it('shares a preset with a group and fills a knowledge base', async () => {
    const admin = await signup(server.app);
    const conn = await call(server.app, 'POST', '/api/v1/connections', {
      token: admin.token,
      body: { type: 'openai', name: 'fixture', base_url: upstream.baseUrl, api_key: KEY },
    });
    expect(conn.status).toBe(201);
    const member = await makeUser(server.app, { role: 'user' });
    const outsider = await makeUser(server.app, { role: 'user' });
    const group = await call(server.app, 'POST', '/api/v1/groups', { token: admin.token, body: { name: 'Writers' } });
    expect(group.status).toBe(201);
    expect(
      (
        await call(server.app, 'POST', `/api/v1/groups/${group.body.id}/members`, {
          token: admin.token,
          body: { user_ids: [member.user.id] },
        })
      ).status,
    ).toBe(200);

    // The group may use the base model (a preset needs every model of its chain).
    const base = await call(server.app, 'POST', '/api/v1/access/model/mock-gpt/grants', {
      token: admin.token,
      body: { principal_type: 'group', principal_id: group.body.id, permission: 'read' },
    });
    expect(base.status).toBe(201);

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await ctx.addCookies([{ name: 'token', value: admin.token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    const watch = watchPage(page);
    await page.goto(`${server.url}/chat`);
    await page.getByRole('link', { name: 'Workspace' }).click();
    await page.getByRole('heading', { name: 'Models', exact: true }).waitFor();

    // ---- a preset on top of the fixture's model
    await page.getByLabel('Model id').fill('editor');
    await page.getByLabel('Display name').fill('Copy editor');
    await poll(() => page.getByLabel('Base model').locator('option').count()).toBeGreaterThan(1);
    await page.getByLabel('Base model').selectOption('mock-gpt');
    await page.getByLabel('System prompt').fill('You fix grammar.');
    await page.getByRole('button', { name: 'Create model' }).click();
    await page.getByText('The model “Copy editor” was created.').waitFor();
    await page.getByRole('button', { name: 'Edit Copy editor' }).click();
    const access = page.getByRole('region', { name: 'Access to Copy editor' });
    await access.getByLabel('Add a user or group').fill('writ');
    await access.getByRole('button', { name: 'Give access to Group: Writers' }).click();
    await access.getByText('Writers').first().waitFor();
    await access.getByText('Can use').first().waitFor();
    await screenshot(page, 'workspace-models');

    // A member of the group finds the preset in the model picker; someone else does not.
    const picker = async (token: string) => {
      const c = await browser.newContext();
      await c.addCookies([{ name: 'token', value: token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
      const p = await c.newPage();
      await p.goto(`${server.url}/chat`);
      await poll(async () => (await p.getByLabel('Model').locator('option').allInnerTexts()).join()).not.toMatch(
        /^$|Loading/,
      );
      const options = await p.getByLabel('Model').locator('option').allInnerTexts();
      const nav = await p.getByRole('navigation', { name: 'Main' }).innerText();
      await c.close();
      return { options, nav };
    };
    const m = await picker(member.token);
    expect(m.options).toContain('Copy editor');
    expect(m.nav).not.toContain('Workspace');
    const o = await picker(outsider.token);
    expect(o.options).not.toContain('Copy editor');
    expect(o.options).toEqual(['No models available']);

    // ---- a knowledge base with a document
    await page.getByRole('link', { name: 'Knowledge' }).click();
    await page.getByRole('heading', { name: 'Knowledge', exact: true }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('Style guide');
    await page.getByRole('button', { name: 'Create knowledge base' }).click();
    await page.getByRole('button', { name: 'Add files' }).waitFor();
    await page.locator('input[type=file]').setInputFiles({
      name: 'rules.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('Always use the serial comma.\n'),
    });
    await page.getByText('rules.txt was added.').waitFor();
    await page.getByText('rules.txt', { exact: false }).first().waitFor();
    await screenshot(page, 'workspace-knowledge');

    expect(watch.csp).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    await ctx.close();
  }, 180_000);
});
