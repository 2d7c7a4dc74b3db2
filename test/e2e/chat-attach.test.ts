/**
 * Attaching knowledge in the chat page: a file uploaded from the composer and a knowledge base
 * picked from the list go with the request as `files`; the answer shows its sources as plain text
 * (markup in a passage stays inert) under the strict CSP.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startOpenAIUpstream, type MockUpstream } from '../fixtures/upstream.js';
import { call, makeUser, signup } from '../harness.js';
import { upload } from '../files/multipart.js';
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

const UPSTREAM_KEY = 'sk-upstream-e2e-attach-0123456789';
const completions = (u: MockUpstream) => u.requests.filter((r) => r.path.endsWith('/chat/completions'));

describeBrowser('web UI: attach files and knowledge bases, see citations (chromium, strict CSP)', () => {
  let server: Server;
  let upstream: MockUpstream;
  let browser: Browser;
  let user: { token: string; id: string };
  let kbId: string;

  beforeAll(async () => {
    await ensureWebBuild();
    upstream = await startOpenAIUpstream({ apiKey: UPSTREAM_KEY });
    server = await startServer({ USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS: 'true' });
    const admin = await signup(server.app);
    const conn = await call(server.app, 'POST', '/api/v1/connections', {
      token: admin.token,
      body: { type: 'openai', name: 'fixture', base_url: upstream.baseUrl, api_key: UPSTREAM_KEY },
    });
    expect(conn.status).toBe(201);
    const u = await makeUser(server.app, { role: 'user' });
    user = { token: u.token, id: u.user.id };
    const grant = await call(server.app, 'POST', '/api/v1/access/model/mock-gpt/grants', {
      token: admin.token,
      body: { principal_type: 'user', principal_id: user.id, permission: 'read' },
    });
    expect(grant.status).toBe(201);
    const kb = await call(server.app, 'POST', '/api/v1/knowledge', {
      token: user.token,
      body: { name: 'Lighthouses' },
    });
    expect(kb.status).toBe(201);
    kbId = kb.body.id;
    const f = await upload(server.app, user.token, [
      { filename: 'lights.txt', content: 'The Fastnet lighthouse stands on a rock off Ireland.' },
    ]);
    expect(f.status).toBe(201);
    const added = await call(server.app, 'POST', `/api/v1/knowledge/${kbId}/files`, {
      token: user.token,
      body: { file_id: f.body.id },
    });
    expect(added.status).toBe(201);
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await upstream?.close();
  });

  it('uploads a file and picks a knowledge base in the composer; the answer lists the sources', async () => {
    upstream.reset();
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await ctx.addCookies([{ name: 'token', value: user.token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    const watch = watchPage(page);
    await page.goto(`${server.url}/chat`);
    await poll(() => page.getByLabel('Model').inputValue()).toBe('mock-gpt');

    await page.locator('input[type=file]').setInputFiles({
      name: 'kiwi.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from(
        'The kiwi is a flightless bird of New Zealand. <img src=x onerror="window.__xss_cite=1"><b>bold</b>',
      ),
    });
    const attachedList = page.getByRole('list', { name: 'Attached' });
    await attachedList.getByText('kiwi.txt').waitFor();
    await page.getByLabel('Attach a knowledge base').selectOption({ label: 'Lighthouses' });
    await attachedList.getByText('Lighthouses').waitFor();

    await page.getByLabel('Message', { exact: true }).fill('Tell me about the kiwi and the Fastnet lighthouse');
    await page.getByRole('button', { name: 'Send' }).click();
    const answer = page.getByRole('article', { name: 'Answer' });
    await answer.getByText('tok2').waitFor();
    const sources = answer.locator('.citations');
    await sources.getByText('kiwi.txt').waitFor();
    await sources.getByText('lights.txt').waitFor();
    // the passage is text: its markup is shown, never parsed
    expect(await sources.innerText()).toContain('<img src=x onerror=');
    expect(await sources.locator('img, b').count()).toBe(0);
    expect(await page.evaluate('window.__xss_cite')).toBeUndefined();

    const sent = completions(upstream);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.body.files).toBeUndefined();
    const system = sent[0]!.body.messages[0];
    expect(system.role).toBe('system');
    expect(system.content).toContain('flightless bird');
    expect(system.content).toContain('Fastnet lighthouse');
    expect(watch.csp).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    await screenshot(page, 'chat-citations');
    await ctx.close();
  }, 120_000);
});
