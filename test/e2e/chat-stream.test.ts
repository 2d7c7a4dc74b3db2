/**
 * The chat page against the real gateway and the OpenAI-compatible fixture upstream over HTTP:
 * the model picker lists only the models the user was granted, answers stream in piece by piece,
 * Stop ends the upstream request, and a hostile answer from the model stays inert.
 */
import type { Browser, BrowserContext } from 'playwright-core';
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
  type PageWatch,
  type Server,
  poll,
} from './browser.js';

const UPSTREAM_KEY = 'sk-upstream-e2e-0123456789';

const completions = (u: MockUpstream) => u.requests.filter((r) => r.path.endsWith('/chat/completions'));

describeBrowser('web UI: chat with the gateway and a streaming upstream (chromium, strict CSP)', () => {
  let server: Server;
  let upstream: MockUpstream;
  let browser: Browser;
  let ctx: BrowserContext;
  let user: { token: string; id: string };
  const watches: PageWatch[] = [];

  beforeAll(async () => {
    await ensureWebBuild();
    upstream = await startOpenAIUpstream({ apiKey: UPSTREAM_KEY });
    server = await startServer();
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
    browser = await launchBrowser();
    ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await ctx.addCookies([{ name: 'token', value: user.token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await upstream?.close();
  });

  it('lists only granted models and streams an answer piece by piece', async () => {
    upstream.reset();
    upstream.set({ chunks: 12, chunkDelayMs: 120, chunkText: (i) => `word${i} ` });
    const page = await ctx.newPage();
    watches.push(watchPage(page));
    await page.goto(`${server.url}/chat`);
    const picker = page.getByLabel('Model');
    await poll(() => picker.inputValue()).toBe('mock-gpt');
    const options = await picker.locator('option').allInnerTexts();
    expect(options).toEqual(['mock-gpt']);

    await page.getByLabel('Message', { exact: true }).fill('Count for me');
    await page.getByRole('button', { name: 'Send' }).click();
    const answer = page.getByRole('article', { name: 'Answer' });
    // Part of the answer is on screen while the stream is still open.
    await answer.getByText('word2').waitFor();
    expect(await page.getByRole('button', { name: 'Stop' }).isVisible()).toBe(true);
    expect(await answer.innerText()).not.toContain('word11');
    await answer.getByText('word11').waitFor();
    await page.getByRole('button', { name: 'Send' }).waitFor();

    expect(completions(upstream)).toHaveLength(1);
    expect(completions(upstream)[0]!.body).toMatchObject({
      model: 'mock-gpt',
      stream: true,
      messages: [{ role: 'user', content: 'Count for me' }],
    });
    await screenshot(page, 'chat-streamed');
    await page.close();
  }, 120_000);

  it('Stop ends the answer and the upstream request', async () => {
    upstream.reset();
    upstream.set({ chunks: 200, chunkDelayMs: 100, chunkText: (i) => `tok${i} ` });
    const page = await ctx.newPage();
    watches.push(watchPage(page));
    await page.goto(`${server.url}/chat`);
    await poll(() => page.getByLabel('Model').inputValue()).toBe('mock-gpt');
    await page.getByLabel('Message', { exact: true }).fill('Talk for a long time');
    await page.keyboard.press('Enter');
    const answer = page.getByRole('article', { name: 'Answer' });
    await answer.getByText('tok3').waitFor();
    await page.getByRole('button', { name: 'Stop' }).click();
    await answer.getByText('Stopped.').waitFor();
    await page.getByRole('button', { name: 'Send' }).waitFor();
    await poll(() => completions(upstream)[0]?.clientAborted).toBe(true);
    expect(completions(upstream)[0]!.chunksSent).toBeLessThan(200);
    const shown = await answer.innerText();
    expect(shown).not.toContain('tok199');
    await page.close();
  }, 120_000);

  it('a hostile answer from the model does not execute', async () => {
    upstream.reset();
    const parts = [
      'Sure: <img src=x onerror="window.__xss_img=1">',
      ' <script>window.__xss_script=1</script>',
      ' <svg onload="window.__xss_svg=1"></svg> [x](javascript:window.__xss_link=1) END',
    ];
    upstream.set({ chunks: parts.length, chunkText: (i) => parts[i]! });
    const page = await ctx.newPage();
    watches.push(watchPage(page));
    await page.goto(`${server.url}/chat`);
    await poll(() => page.getByLabel('Model').inputValue()).toBe('mock-gpt');
    await page.getByLabel('Message', { exact: true }).fill('Be nasty');
    await page.keyboard.press('Enter');
    const answer = page.getByRole('article', { name: 'Answer' });
    await answer.getByText('END').waitFor();
    expect(await answer.innerText()).toContain('<img src=x onerror="window.__xss_img=1">');
    expect(await page.locator('.markdown img, .markdown script, .markdown svg, [onerror], [onload]').count()).toBe(0);
    await page.waitForTimeout(300);
    expect(
      await page.evaluate<string[]>(`['__xss_img','__xss_script','__xss_svg','__xss_link'].filter((k) => k in window)`),
    ).toEqual([]);
    await page.close();

    for (const w of watches) {
      expect(w.csp).toEqual([]);
      expect(w.pageErrors).toEqual([]);
    }
  }, 120_000);
});
