/**
 * The chat composer's `/command` list (workspace prompts inserted into the message) and what a
 * reopened chat shows of a stored answer: its sources and, collapsed, its tool calls — under the
 * strict CSP.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startOpenAIUpstream, type MockUpstream } from '../fixtures/upstream.js';
import { call, makeUser, signup } from '../harness.js';
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

const UPSTREAM_KEY = 'sk-upstream-e2e-composer-0123456789';
const SUMMARY = 'Summarise the text below in three bullet points.\nKeep {{CLIPBOARD}} as written.';

describeBrowser(
  'web UI: /command prompts in the composer; stored sources and tool calls (chromium, strict CSP)',
  () => {
    let server: Server;
    let upstream: MockUpstream;
    let browser: Browser;
    let user: { token: string; id: string };
    let other: { token: string; id: string };

    beforeAll(async () => {
      await ensureWebBuild();
      upstream = await startOpenAIUpstream({ apiKey: UPSTREAM_KEY });
      server = await startServer({ USER_PERMISSIONS_WORKSPACE_PROMPTS_ACCESS: 'true' });
      const admin = await signup(server.app);
      const conn = await call(server.app, 'POST', '/api/v1/connections', {
        token: admin.token,
        body: { type: 'openai', name: 'fixture', base_url: upstream.baseUrl, api_key: UPSTREAM_KEY },
      });
      expect(conn.status).toBe(201);
      const u = await makeUser(server.app, { role: 'user' });
      user = { token: u.token, id: u.user.id };
      const o = await makeUser(server.app, { role: 'user' });
      other = { token: o.token, id: o.user.id };
      const grant = await call(server.app, 'POST', '/api/v1/access/model/mock-gpt/grants', {
        token: admin.token,
        body: { principal_type: 'user', principal_id: user.id, permission: 'read' },
      });
      expect(grant.status).toBe(201);
      for (const [token, command, title, content] of [
        [user.token, 'summary', 'Summarise', SUMMARY],
        [user.token, 'translate', 'Translate to French', 'Translate into French:'],
        [other.token, 'sumother', 'Not yours', 'Another user’s prompt'],
      ] as const) {
        const r = await call(server.app, 'POST', '/api/v1/prompts', { token, body: { command, title, content } });
        expect(r.status, r.text).toBe(201);
      }
      browser = await launchBrowser();
    }, 240_000);

    afterAll(async () => {
      await browser?.close();
      await server?.close();
      await upstream?.close();
    });

    it('typing /sum lists the matching prompts; Enter, a click or the arrows insert one; Escape closes', async () => {
      upstream.reset();
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await ctx.addCookies([{ name: 'token', value: user.token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
      const page = await ctx.newPage();
      const watch = watchPage(page);
      await page.goto(`${server.url}/chat`);
      await poll(() => page.getByLabel('Model').inputValue()).toBe('mock-gpt');
      const box = page.getByLabel('Message', { exact: true });
      const list = page.getByRole('listbox', { name: 'Prompts' });

      await box.click();
      await box.pressSequentially('/sum');
      await list.waitFor();
      // Only the caller's readable prompts, filtered by what was typed.
      await poll(() => list.getByRole('option').allInnerTexts()).toEqual([expect.stringContaining('/summary')]);
      await screenshot(page, 'chat-prompt-commands');
      await box.press('Enter');
      await poll(() => box.inputValue()).toBe(SUMMARY);
      expect(await list.count()).toBe(0);
      // Enter picked the prompt; nothing was sent.
      expect(await page.getByRole('article').count()).toBe(0);

      // The whole list with "/", the arrow keys move, Enter inserts before the text that follows.
      await box.fill('');
      await box.pressSequentially('/');
      await poll(() => list.getByRole('option').count()).toBe(2);
      await box.press('ArrowDown');
      await poll(() => list.getByRole('option', { selected: true }).innerText()).toContain('/translate');
      await box.press('Enter');
      await poll(() => box.inputValue()).toBe('Translate into French:');

      // A click inserts too; Escape closes the list and leaves the text as typed.
      await box.fill('');
      await box.pressSequentially('/tr');
      await list.getByRole('option', { name: /translate/ }).click();
      await poll(() => box.inputValue()).toBe('Translate into French:');
      await box.fill('');
      await box.pressSequentially('/su');
      await list.waitFor();
      await box.press('Escape');
      await poll(() => list.count()).toBe(0);
      expect(await box.inputValue()).toBe('/su');
      // Past the command word the list stays closed.
      await box.pressSequentially('m now');
      expect(await list.count()).toBe(0);
      expect(await page.getByText('No prompt matches').count()).toBe(0);

      expect(upstream.requests.filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(0);
      expect(watch.csp).toEqual([]);
      expect(watch.pageErrors).toEqual([]);
      await ctx.close();
    }, 120_000);

    it('a reopened chat shows the sources its answer was given and, collapsed, its tool calls', async () => {
      upstream.reset();
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await ctx.addCookies([{ name: 'token', value: user.token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
      const page = await ctx.newPage();
      const watch = watchPage(page);
      await page.goto(`${server.url}/chat`);
      await poll(() => page.getByLabel('Model').inputValue()).toBe('mock-gpt');
      await page.locator('input[type=file]').setInputFiles({
        name: 'tides.txt',
        mimeType: 'text/plain',
        buffer: Buffer.from('Spring tides happen at new and full moon. <b>bold</b>'),
      });
      await page.getByRole('list', { name: 'Attached' }).getByText('tides.txt').waitFor();
      await page.getByLabel('Message', { exact: true }).fill('When are spring tides?');
      await page.getByRole('button', { name: 'Send' }).click();
      const answer = page.getByRole('article', { name: 'Answer' });
      await answer.getByText('tok2').waitFor();
      await answer.locator('.citations').getByText('tides.txt').waitFor();
      await poll(() => page.url()).toMatch(/\/chat\/[\w-]+$/);
      const chatId = page.url().split('/').pop()!;
      // Saved with the answer…
      await poll(
        async () =>
          (await call(server.app, 'GET', `/api/v1/chats/${chatId}`, { token: user.token })).body.messages?.[1]
            ?.citations?.[0]?.title,
      ).toBe('tides.txt');
      // …and shown again after a reload.
      await page.reload();
      const reopened = page.getByRole('article', { name: 'Answer' });
      await reopened.getByText('tok2').waitFor();
      const sources = reopened.locator('.citations');
      await sources.getByText('tides.txt').waitFor();
      expect(await sources.innerText()).toContain('<b>bold</b>');
      expect(await sources.locator('b').count()).toBe(0);

      // A chat whose answer called tools (stored through the API, as a linked completion stores it).
      const chat = await call(server.app, 'POST', '/api/v1/chats', {
        token: user.token,
        body: {
          title: 'Tools',
          messages: [
            { role: 'user', content: 'Weather in Perth?' },
            {
              role: 'assistant',
              content: null,
              model: 'mock-gpt',
              tool_calls: [
                {
                  id: 'call_1',
                  type: 'function',
                  function: { name: 'get_weather', arguments: '{"city":"Perth <i>x</i>"}' },
                },
              ],
            },
            { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
            { role: 'assistant', content: 'It is 21 °C in Perth.', model: 'mock-gpt' },
          ],
        },
      });
      expect(chat.status, chat.text).toBe(201);
      await page.goto(`${server.url}/chat/${chat.body.id}`);
      await page.getByText('It is 21 °C in Perth.').waitFor();
      const calls = page.locator('details.tool-calls');
      await expect(calls.count()).resolves.toBe(1);
      expect(await calls.locator('summary').innerText()).toContain('get_weather');
      expect(await calls.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
      expect(await calls.locator('.tool-call-args').isVisible()).toBe(false);
      await calls.locator('summary').click();
      await calls.locator('.tool-call-args').waitFor();
      expect(await calls.locator('.tool-call-args').innerText()).toContain('"city": "Perth <i>x</i>"');
      expect(await calls.locator('i').count()).toBe(0);
      await screenshot(page, 'chat-tool-calls');

      expect(watch.csp).toEqual([]);
      expect(watch.pageErrors).toEqual([]);
      await ctx.close();
    }, 120_000);
  },
);
