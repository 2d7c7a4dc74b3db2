/**
 * Python in the browser (Pyodide in a Web Worker), through the real gateway and the fixture
 * upstream, under the strict CSP: the Run button under a Python block of an answer prints 42,
 * the worker has no network functions left, the code interpreter sends the output back to the
 * model and stops after 3 rounds, and with the switches off neither control exists.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
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
  type PageWatch,
  type Server,
} from './browser.js';

const UPSTREAM_KEY = 'sk-upstream-code-0123456789';
/** Loading Pyodide (about 12 MB) takes seconds, more on a busy machine. */
const PYODIDE_WAIT = 90_000;

type Msg = { role: string; content: string };
const completions = (u: MockUpstream) => u.requests.filter((r) => r.path.endsWith('/chat/completions'));
const messagesOf = (u: MockUpstream, i: number) => completions(u)[i]!.body.messages as Msg[];

/** Every answer of the upstream in one chunk: `answers[n]` for its n-th chat request (the last one repeats). */
function script(u: MockUpstream, answers: string[]) {
  const base = completions(u).length;
  u.set({ chunks: 1, chunkText: () => answers[Math.min(completions(u).length - base - 1, answers.length - 1)]! });
}

/** A user who may use mock-gpt, with their session cookie in a new browser context. */
async function userContext(browser: Browser, server: Server, upstream: MockUpstream): Promise<BrowserContext> {
  const admin = await signup(server.app);
  const conn = await call(server.app, 'POST', '/api/v1/connections', {
    token: admin.token,
    body: { type: 'openai', name: 'fixture', base_url: upstream.baseUrl, api_key: UPSTREAM_KEY },
  });
  expect(conn.status).toBe(201);
  const u = await makeUser(server.app, { role: 'user' });
  const grant = await call(server.app, 'POST', '/api/v1/access/model/mock-gpt/grants', {
    token: admin.token,
    body: { principal_type: 'user', principal_id: u.user.id, permission: 'read' },
  });
  expect(grant.status).toBe(201);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.addCookies([{ name: 'token', value: u.token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
  return ctx;
}

async function ask(page: Page, text: string) {
  await poll(() => page.getByLabel('Model').inputValue()).toBe('mock-gpt');
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.keyboard.press('Enter');
}

describeBrowser('web UI: code execution in the browser (chromium, strict CSP)', () => {
  let upstream: MockUpstream;
  let server: Server;
  let offServer: Server;
  let browser: Browser;
  let ctx: BrowserContext;
  let offCtx: BrowserContext;
  const watches: PageWatch[] = [];

  beforeAll(async () => {
    await ensureWebBuild();
    upstream = await startOpenAIUpstream({ apiKey: UPSTREAM_KEY });
    server = await startServer();
    offServer = await startServer({ ENABLE_CODE_EXECUTION: 'false', ENABLE_CODE_INTERPRETER: 'false' });
    browser = await launchBrowser();
    ctx = await userContext(browser, server, upstream);
    offCtx = await userContext(browser, offServer, upstream);
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await offServer?.close();
    await upstream?.close();
  });

  it('Run under a Python block prints 42, in a worker without network, output cap and time limit', async () => {
    upstream.reset();
    script(upstream, [
      'Try this:\n\n```python\nprint(6*7)\n```\n\nAnd this:\n\n```python\nimport js\nprint([hasattr(js, n) for n in ("fetch", "XMLHttpRequest", "WebSocket", "importScripts")])\n```\n\nLoud:\n\n```python\nfor i in range(10**6):\n    print("line", i)\n```\n\nForever:\n\n```py\nwhile True:\n    pass\n```\n\nShown only:\n\n```js\nconsole.log(1)\n```\n',
    ]);
    const page = await ctx.newPage();
    // The page's clock can be moved forward to reach the 30 s time limit at once.
    await page.clock.install();
    const watch = watchPage(page);
    watches.push(watch);
    await page.goto(`${server.url}/chat`);
    await ask(page, 'Show me Python');
    const answer = page.getByRole('article', { name: 'Answer' });
    await answer.getByText('Shown only:').waitFor();
    await page.getByRole('button', { name: 'Send' }).waitFor();
    // One Run button per Python block, none for the JavaScript block.
    const run = answer.getByRole('button', { name: 'Run', exact: true });

    await poll(() => run.count()).toBe(4);

    const t0 = Date.now();
    await run.first().click();
    const output = answer.getByRole('group', { name: 'Output' });
    await output.first().getByText('42', { exact: true }).waitFor({ timeout: PYODIDE_WAIT });
    const firstRunMs = Date.now() - t0;
    console.info(`code-execution e2e: first run (Pyodide start included) took ${firstRunMs} ms`);
    expect(await output.first().locator('pre').first().innerText()).toBe('42\n');

    // The second block runs in the same (already started) worker: every network function is gone.
    await run.nth(1).click();
    await output.nth(1).getByText('[False, False, False, False]').waitFor({ timeout: 30_000 });
    await screenshot(page, 'chat-code-run');

    // Output beyond 64 KiB stops the run.
    await run.nth(2).click();
    await output
      .nth(2)
      .getByText(/Output limit reached \(64 KiB\)/)
      .waitFor({ timeout: 30_000 });
    const kept = await output.nth(2).locator('pre').first().innerText();
    expect(kept.length).toBeLessThanOrEqual(64 * 1024);
    expect(kept).toContain('line 0\n');

    // An endless loop is stopped at the time limit (the worker is killed); the next run starts a fresh one.
    await run.nth(3).click();
    await answer.getByText('Running…').waitFor();
    await page.clock.fastForward('00:31');
    await answer.getByText(/Stopped after 30 s \(time limit\)/).waitFor({ timeout: 30_000 });
    await run.first().click();
    await answer.getByText('Starting Python…').waitFor();
    await poll(() => output.first().locator('pre').first().innerText(), PYODIDE_WAIT).toBe('42\n');

    // Nothing ran on the server: the only requests are the page's own (the runtime files, no API call for the run).
    expect(completions(upstream)).toHaveLength(1);
    expect(watch.csp).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    await page.close();
  }, 180_000);

  it('the code interpreter runs `python exec` blocks and sends the output back, at most 3 rounds', async () => {
    upstream.reset();
    script(upstream, ['Let me compute.\n\n```python exec\nx = 6 * 7\nprint(f"x is {x}")\n```\n', 'The answer is 42.']);
    const page = await ctx.newPage();
    const watch = watchPage(page);
    watches.push(watch);
    await page.goto(`${server.url}/chat`);
    const toggle = page.getByLabel('Code interpreter');
    await toggle.check();
    await ask(page, 'What is six times seven?');
    await page.getByText('The answer is 42.').waitFor({ timeout: PYODIDE_WAIT });
    await page.getByRole('button', { name: 'Send' }).waitFor();

    expect(completions(upstream)).toHaveLength(2);
    const first = messagesOf(upstream, 0);
    expect(first[0]!.role).toBe('system');
    expect(first[0]!.content).toContain('python exec');
    const second = messagesOf(upstream, 1);
    expect(second.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(second[2]!.content).toContain('```python exec');
    const fed = second[3]!.content;
    expect(fed).toMatch(/^Code interpreter output \(round 1 of at most 3\)/);
    expect(fed).toContain('x is 42');
    // The output is shown in the conversation too.
    await page.getByRole('article', { name: 'Code output' }).getByText('x is 42').first().waitFor();
    await screenshot(page, 'chat-code-interpreter');

    // A model that always asks to run more code is stopped after 3 rounds. Variables persist between rounds.
    upstream.reset();
    script(upstream, [
      'Again.\n\n```python exec\ntry:\n    n += 1\nexcept NameError:\n    n = 1\nprint("round", n)\n```\n',
    ]);
    await ask(page, 'Keep going');
    await page.getByText(/at most 3 rounds per message/).waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Send' }).waitFor();
    expect(completions(upstream)).toHaveLength(4);
    expect(messagesOf(upstream, 3).at(-1)!.content).toContain('round 3');

    expect(watch.csp).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    await page.close();
  }, 180_000);

  it('with ENABLE_CODE_EXECUTION=false and ENABLE_CODE_INTERPRETER=false there is no Run button and no switch', async () => {
    upstream.reset();
    script(upstream, ['Code:\n\n```python\nprint(6*7)\n```\n\nEND']);
    const page = await offCtx.newPage();
    const watch = watchPage(page);
    watches.push(watch);
    await page.goto(`${offServer.url}/chat`);
    await ask(page, 'Show me Python');
    const answer = page.getByRole('article', { name: 'Answer' });
    await answer.getByText('END').waitFor();
    await page.getByRole('button', { name: 'Send' }).waitFor();
    expect(await answer.locator('pre.code-block').count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Run', exact: true }).count()).toBe(0);
    expect(await page.locator('.code-run-slot').count()).toBe(0);
    expect(await page.getByLabel('Code interpreter').count()).toBe(0);
    expect(watch.csp).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    await page.close();
  }, 120_000);
});
