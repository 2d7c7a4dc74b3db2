/**
 * The chat page in a real browser, against the OpenAI-compatible contract of /api/models and
 * /api/chat/completions (answered here by the browser's request interception): streamed Markdown
 * with highlighted code, regenerate, edit, error display — and a model answer carrying
 * `<img onerror>`, `<script>` and `javascript:` links that must not execute. The page runs once
 * under the strict CSP and once without any CSP, so the sanitiser is tested on its own.
 */
import type { Browser, Page, Route } from 'playwright-core';
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
  poll,
} from './browser.js';

const frame = (content: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`;
const sse = (parts: string[], tail = 'data: [DONE]\n\n') => parts.map(frame).join('') + tail;

const HOSTILE = [
  'Here is some code:\n\n```js\nconst answer = 42;\n```\n\n',
  'Look: <img src=x onerror="window.__xss_img=1">',
  ' and <script>window.__xss_script=1</script>',
  ' and [click me](javascript:window.__xss_link=1)',
  ' and <a href="javascript:window.__xss_a=1">raw link</a>',
  '\n\n![pixel](http://127.0.0.2:9/p.png)\n\n**done**',
];

interface Interceptor {
  requests: { model: string; stream: boolean; messages: { role: string; content: string }[] }[];
  next: ((route: Route) => Promise<void>)[];
}

async function intercept(page: Page): Promise<Interceptor> {
  const it: Interceptor = { requests: [], next: [] };
  await page.route('**/api/models', (r) =>
    r.fulfill({ json: { object: 'list', data: [{ id: 'fixture-model', name: 'Fixture model', object: 'model' }] } }),
  );
  await page.route('**/api/chat/completions', async (r) => {
    it.requests.push(r.request().postDataJSON());
    const handler = it.next.shift();
    if (handler) await handler(r);
    else await r.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: sse(['ok']) });
  });
  return it;
}

/** A signed-in account: the first admin on a fresh server (which would otherwise show onboarding), else a user. */
async function someUser(app: Server['app']): Promise<{ token: string }> {
  return signup(app).catch(() => makeUser(app, { role: 'user' }));
}

describeBrowser('web UI: chat page (chromium)', () => {
  const servers: Record<string, Server> = {};
  let browser: Browser;

  beforeAll(async () => {
    await ensureWebBuild();
    servers.csp = await startServer();
    servers.none = await startServer({}, { csp: false });
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    for (const s of Object.values(servers)) await s.close();
  });

  for (const mode of ['csp', 'none'] as const) {
    it(`renders a hostile streamed answer as inert text (${mode === 'csp' ? 'strict CSP' : 'no CSP'})`, async () => {
      const server = servers[mode]!;
      const { token } = await signup(server.app);
      expect((await call(server.app, 'GET', '/api/v1/auths/', { cookie: token })).status).toBe(200);
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await ctx.addCookies([{ name: 'token', value: token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
      const page = await ctx.newPage();
      const watch = watchPage(page);
      const api = await intercept(page);
      api.next.push((r) =>
        r.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: sse(HOSTILE) }),
      );

      await page.goto(`${server.url}/chat`);
      const model = page.getByLabel('Model');
      await poll(() => model.inputValue()).toBe('fixture-model');
      await page.getByLabel('Message', { exact: true }).fill('hello');
      await page.keyboard.press('Enter');

      const answer = page.getByRole('article', { name: 'Answer' });
      await answer.getByText('done').waitFor();
      expect(api.requests[0]).toEqual({
        model: 'fixture-model',
        stream: true,
        messages: [{ role: 'user', content: 'hello' }],
      });

      // The tags are shown as text, nothing was created from them.
      const text = await answer.innerText();
      expect(text).toContain('<img src=x onerror="window.__xss_img=1">');
      expect(text).toContain('<script>window.__xss_script=1</script>');
      expect(await page.locator('.markdown img, .markdown script, .markdown iframe, [onerror]').count()).toBe(0);
      expect(await page.locator('a[href^="javascript:" i]').count()).toBe(0);
      // Code is highlighted.
      expect(await answer.locator('.hljs-keyword').first().innerText()).toBe('const');
      // Try the link the model wrote: it is plain text, nothing runs.
      await page.waitForTimeout(300);
      const ran = await page.evaluate<string[]>(
        `['__xss_img','__xss_script','__xss_link','__xss_a'].filter((k) => k in window)`,
      );
      expect(ran).toEqual([]);

      if (mode === 'csp') {
        await screenshot(page, 'chat');
        await page.getByRole('button', { name: 'Switch to dark theme' }).click();
        expect(await page.evaluate<string>('document.documentElement.dataset.theme')).toBe('dark');
        await screenshot(page, 'chat-dark');
        await page.getByRole('button', { name: 'Switch to light theme' }).click();
      }

      // ---- regenerate resends the same conversation
      api.next.push((r) =>
        r.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: sse(['second ', 'answer']) }),
      );
      await page.getByRole('button', { name: 'Regenerate' }).click();
      await answer.getByText('second answer').waitFor();
      expect(api.requests[1]!.messages).toEqual([{ role: 'user', content: 'hello' }]);
      expect(await page.getByRole('article', { name: 'Answer' }).count()).toBe(1);

      // ---- the conversation is stored: a reload shows it again, at its own address
      await poll(() => new URL(page.url()).pathname).toMatch(/^\/chat\/[0-9a-f-]{36}$/);
      await poll(async () => (await call(server.app, 'GET', '/api/v1/chats', { token })).body.items.length).toBe(1);
      await page.reload();
      await page.getByRole('article', { name: 'Answer' }).getByText('second answer').waitFor();
      expect(await page.getByRole('article', { name: 'Your message' }).innerText()).toContain('hello');
      expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('hello');

      // ---- a follow-up carries the history; an error status is shown with its message
      api.next.push((r) =>
        r.fulfill({ status: 403, json: { error: { message: 'You may not use this model', code: 'model_forbidden' } } }),
      );
      await page.getByLabel('Message', { exact: true }).fill('and then?');
      await page.getByRole('button', { name: 'Send' }).click();
      await page.getByRole('alert').getByText('You may not use this model').waitFor();
      expect(api.requests[2]!.messages).toEqual([
        { role: 'user', content: 'hello' },
        { role: 'assistant', content: 'second answer' },
        { role: 'user', content: 'and then?' },
      ]);

      // ---- edit the first message: the conversation restarts from it
      api.next.push((r) =>
        r.fulfill({
          status: 200,
          headers: { 'content-type': 'text/event-stream' },
          body: sse(['partial '], 'data: {"error":{"message":"The upstream went away","code":"upstream_error"}}\n\n'),
        }),
      );
      await page.getByRole('article', { name: 'Your message' }).first().getByRole('button', { name: 'Edit' }).click();
      await page.getByLabel('Edit message').fill('hello again');
      await page.getByRole('button', { name: 'Save and send' }).click();
      await page.getByRole('alert').getByText('The upstream went away').waitFor();
      expect(api.requests[3]!.messages).toEqual([{ role: 'user', content: 'hello again' }]);
      await page.getByRole('article', { name: 'Answer' }).getByText('partial').waitFor();
      // Stored: the edited question; not stored: the failed answer.
      const chatId = new URL(page.url()).pathname.split('/')[2]!;
      const stored = (await call(server.app, 'GET', `/api/v1/chats/${chatId}`, { token })).body;
      expect(stored.messages.map((m: { role: string; content: string }) => [m.role, m.content])).toEqual([
        ['user', 'hello again'],
      ]);

      // ---- the chat list finds the conversation
      await page.getByLabel('Search chats').fill('again');
      await page.getByRole('complementary', { name: 'Chats' }).getByRole('button', { name: 'hello' }).waitFor();
      await page.getByLabel('Search chats').fill('zzz');
      await page.getByText('No chat matches.').waitFor();

      expect(watch.csp).toEqual([]);
      expect(watch.pageErrors).toEqual([]);
      await ctx.close();
    }, 120_000);
  }

  it('previews HTML from an answer only inside a sandboxed iframe with the iframe policy first', async () => {
    // No page CSP here: the iframe's own policy and sandbox must hold on their own.
    const server = servers.none!;
    const { token } = await someUser(server.app);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await ctx.addCookies([{ name: 'token', value: token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    const api = await intercept(page);
    const html =
      '<h1 id="t">Artifact</h1><script>parent.__artifact_parent=1; document.body.dataset.ran="1"</script>' +
      '<img src=x onerror="parent.__artifact_img=1">';
    api.next.push((r) =>
      r.fulfill({
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
        body: sse(['A page:\n\n```html\n', html, '\n```\n']),
      }),
    );
    await page.goto(`${server.url}/chat`);
    await poll(() => page.getByLabel('Model').inputValue()).toBe('fixture-model');
    await page.getByLabel('Message', { exact: true }).fill('make a page');
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Preview HTML' }).click();
    const iframe = page.locator('iframe.artifact');
    await iframe.waitFor();
    expect(await iframe.getAttribute('sandbox')).toBe('allow-scripts');
    const frame = await (await iframe.elementHandle())!.contentFrame();
    await frame!.locator('#t').waitFor();
    // The policy is the first element of the document, before the content.
    expect(await frame!.evaluate<string>('document.head.firstElementChild.outerHTML')).toBe(
      `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    );
    expect(await frame!.evaluate<string | undefined>('document.body.dataset.ran')).toBeUndefined();
    // An opaque origin: no cookies, no way into this page.
    expect(await frame!.evaluate<string>('location.origin')).toBe('null');
    await page.waitForTimeout(300);
    expect(await page.evaluate<string[]>(`['__artifact_parent','__artifact_img'].filter((k) => k in window)`)).toEqual(
      [],
    );
    await ctx.close();
  });

  it('shows a clear message when no model service is configured', async () => {
    const server = servers.csp!;
    const { token } = await someUser(server.app);
    const ctx = await browser.newContext();
    await ctx.addCookies([{ name: 'token', value: token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    await page.route('**/api/models', (r) =>
      r.fulfill({ status: 404, json: { error: { code: 'not_found', message: 'x' } } }),
    );
    await page.goto(`${server.url}/chat`);
    await page.getByText('No model service is configured on this server yet.').waitFor();
    expect(await page.getByRole('button', { name: 'Send' }).isDisabled()).toBe(true);
    await ctx.close();
  });
});
