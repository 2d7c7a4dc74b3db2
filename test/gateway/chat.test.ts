import http from 'node:http';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { describeMatrix, matrix, sleep } from '../harness.js';
import { call, gatewayEnv, grantModel, sseData, UPSTREAM_KEY, userWithKey, type GatewayEnv } from './helpers.js';

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describeMatrix('chat completions through the gateway', matrix(), (b) => {
  let env: GatewayEnv;
  let user: Awaited<ReturnType<typeof userWithKey>>;
  let client: OpenAI;

  beforeAll(async () => {
    env = await gatewayEnv(b, {
      env: { USER_PERMISSIONS_FEATURES_API_KEYS: 'true', GATEWAY_STREAM_IDLE_TIMEOUT: '1' },
    });
    user = await userWithKey(env);
    await grantModel(env, 'mock-gpt', { user: user.id });
    await grantModel(env, 'llama-mock:latest', { user: user.id });
    client = new OpenAI({ apiKey: user.key, baseURL: `${env.url}/api/v1`, maxRetries: 0, timeout: 10_000 });
  });
  afterAll(async () => env?.close());
  beforeEach(() => {
    env.openai.reset();
    env.ollama.reset();
  });

  const usageRows = async () => {
    const r = await call(env.app, 'GET', `/api/v1/usage?group_by=status&user_id=${user.id}`, {
      token: env.admin.token,
    });
    return r.body;
  };

  it('the official openai client lists only the granted models', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids.sort()).toEqual(['llama-mock:latest', 'mock-gpt']);
    const one = await client.models.retrieve('mock-gpt');
    expect(one.id).toBe('mock-gpt');
    await expect(client.models.retrieve('mock-small')).rejects.toMatchObject({ status: 404 });
  });

  it('completes (non-streaming) with the admin key upstream and a Server-Timing header', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'hello there friend' }] })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('tok0 tok1 tok2 ');
    expect(data.usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 });
    expect(response.headers.get('server-timing')).toMatch(
      /^gateway;dur=\d+\.\d{3};desc="HridaAI overhead", upstream;dur=/,
    );
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('600');
    const sent = env.openai.requests.find((r) => r.path === '/v1/chat/completions')!;
    expect(sent.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(JSON.stringify(sent.headers)).not.toContain(user.key);
  });

  it('streams; the usage frame HridaAI asks for reaches the client only when it asked', async () => {
    env.openai.set({ chunks: 5 });
    const stream = await client.chat.completions.create({
      model: 'mock-gpt',
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    });
    let text = '';
    for await (const c of stream) {
      expect(c.choices.length).toBe(1);
      text += c.choices[0]!.delta.content ?? '';
    }
    expect(text).toBe('tok0 tok1 tok2 tok3 tok4 ');
    expect(env.openai.requests.at(-1)!.body.stream_options).toEqual({ include_usage: true });

    const withUsage = await client.chat.completions.create({
      model: 'mock-gpt',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'hi' }],
    });
    let usage: unknown = null;
    for await (const c of withUsage) if (c.usage) usage = c.usage;
    expect(usage).toMatchObject({ prompt_tokens: 1, completion_tokens: 5, total_tokens: 6 });
  });

  it('a server that answers a streaming request with one JSON document is replayed as a stream', async () => {
    env.openai.set({ chunks: 2, jsonWhenStreaming: true });
    const stream = await client.chat.completions.create({
      model: 'mock-gpt',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'hi' }],
    });
    let text = '';
    let usage: unknown = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe('tok0 tok1 ');
    expect(usage).toMatchObject({ completion_tokens: 2 });
  });

  it('streams from an Ollama connection (native API translated to OpenAI chunks)', async () => {
    env.ollama.set({ chunks: 4 });
    const stream = await client.chat.completions.create({
      model: 'llama-mock:latest',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 50,
      temperature: 0.2,
      messages: [{ role: 'user', content: 'one two' }],
    });
    let text = '';
    let usage: unknown = null;
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe('tok0 tok1 tok2 tok3 ');
    expect(finish).toBe('stop');
    expect(usage).toMatchObject({ prompt_tokens: 2, completion_tokens: 4 });
    const sent = env.ollama.requests.find((r) => r.path === '/api/chat')!;
    expect(sent.body).toMatchObject({
      model: 'llama-mock:latest',
      stream: true,
      options: { num_predict: 50, temperature: 0.2 },
    });
    const plain = await client.chat.completions.create({
      model: 'llama-mock:latest',
      messages: [{ role: 'user', content: 'one two' }],
    });
    expect(plain.choices[0]!.message.content).toBe('tok0 tok1 tok2 tok3 ');
    expect(plain.usage?.total_tokens).toBe(6);
  });

  it('errors use the OpenAI envelope: unknown model, no grant, no credentials, bad key', async () => {
    await expect(
      client.chat.completions.create({ model: 'mock-small', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    const r = await fetch(`${env.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'x' }] }),
    });
    const body = (await r.json()) as { error: Record<string, unknown> };
    expect(r.status).toBe(404);
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(body.error).toMatchObject({ type: 'not_found_error', code: 'model_not_found' });
    const anon = await fetch(`${env.url}/api/chat/completions`, { method: 'POST', body: '{}' });
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as { error: { type: string } }).error.type).toBe('authentication_error');
    const bad = new OpenAI({ apiKey: 'sk-not-a-real-key', baseURL: `${env.url}/api/v1`, maxRetries: 0 });
    await expect(bad.models.list()).rejects.toMatchObject({ status: 401 });
    const invalid = await fetch(`${env.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: 'mock-gpt', messages: [] }),
    });
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: { param: string } }).error.param).toBe('messages');
  });

  it('an upstream error before the first byte is a proper HTTP error, without the upstream body', async () => {
    env.openai.set({ status: 500, errorBody: { error: { message: 'internal detail at 10.0.0.7' } } }, 'mock-gpt');
    for (const stream of [false, true]) {
      const r = await fetch(`${env.url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
        body: JSON.stringify({ model: 'mock-gpt', stream, messages: [{ role: 'user', content: 'x' }] }),
      });
      expect(r.status).toBe(502);
      const text = await r.text();
      expect(JSON.parse(text).error).toMatchObject({ code: 'upstream_error', type: 'api_error' });
      expect(text).not.toContain('10.0.0.7');
    }
    env.openai.set(
      { status: 400, errorBody: { error: { message: 'max_tokens is too large for key sk-abcdefghijkl' } } },
      'mock-gpt',
    );
    const e = (await client.chat.completions
      .create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'x' }] })
      .then(
        () => null,
        (x: unknown) => x,
      )) as { status: number; code: string; message: string };
    expect(e).toMatchObject({ status: 400, code: 'upstream_rejected' });
    expect(e.message).toContain('max_tokens is too large');
    expect(e.message).not.toContain('sk-abcdefghijkl');
    env.openai.set({ status: 401 }, 'mock-gpt');
    await expect(
      client.chat.completions.create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({ status: 502, code: 'upstream_error' });
  });

  it('a stream that fails before its first event is a proper HTTP error, not an empty 200', async () => {
    for (const b of [
      { failBeforeFirstEvent: 'error' as const },
      { failBeforeFirstEvent: 'abort' as const },
      { failBeforeFirstEvent: 'empty' as const },
    ]) {
      env.openai.reset();
      env.openai.set({ chunks: 6, ...b });
      const r = await fetch(`${env.url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
        body: JSON.stringify({ model: 'mock-gpt', stream: true, messages: [{ role: 'user', content: 'x' }] }),
      });
      const text = await r.text();
      expect(r.status, `${JSON.stringify(b)}: ${text}`).toBe(502);
      expect(r.headers.get('content-type')).toContain('application/json');
      const doc = JSON.parse(text) as { error: { code: string; message: string } };
      expect(doc.error.code).toBe('upstream_error');
      expect(doc.error.message).not.toContain('mock mid-stream failure');
    }
  });

  it('an upstream failure after the first byte ends the stream with a terminal error event', async () => {
    for (const b of [{ errorAfter: 2 }, { abortAfter: 2 }]) {
      env.openai.reset();
      env.openai.set({ chunks: 6, ...b });
      const r = await fetch(`${env.url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
        body: JSON.stringify({ model: 'mock-gpt', stream: true, messages: [{ role: 'user', content: 'x' }] }),
      });
      expect(r.status).toBe(200);
      const events = sseData(await r.text());
      expect(events).not.toContain('[DONE]');
      const last = JSON.parse(events.at(-1)!) as { error: { code: string; message: string } };
      expect(last.error.code).toBe('upstream_error');
      expect(last.error.message).not.toContain('mock mid-stream failure');
      expect(events.filter((e) => e.includes('"delta":{"content"'))).toHaveLength(2);
    }
    // The official client surfaces it as an error, after the content it received.
    env.openai.reset();
    env.openai.set({ chunks: 6, errorAfter: 3 });
    const stream = await client.chat.completions.create({
      model: 'mock-gpt',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    let text = '';
    await expect(
      (async () => {
        for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
      })(),
    ).rejects.toThrow(/failed while streaming/);
    expect(text).toBe('tok0 tok1 tok2 ');
  });

  it('a stalled upstream is cut after GATEWAY_STREAM_IDLE_TIMEOUT with a terminal timeout event; usage is recorded', async () => {
    const before = (await usageRows()).totals.requests as number;
    env.openai.set({ chunks: 5, stallAfter: 2 });
    const t0 = Date.now();
    const r = await fetch(`${env.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: 'mock-gpt', stream: true, messages: [{ role: 'user', content: 'x' }] }),
    });
    const events = sseData(await r.text());
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(JSON.parse(events.at(-1)!).error.code).toBe('upstream_timeout');
    await waitFor(() => env.openai.requests.at(-1)!.clientAborted);
    await waitFor(async () => ((await usageRows()).totals.requests as number) === before + 1);
    const rows = (await usageRows()).items as { group: string; requests: number }[];
    expect(rows.find((x) => x.group === 'error')?.requests).toBeGreaterThanOrEqual(1);
  });

  it('a client that goes away aborts the upstream request; the usage of the aborted stream is recorded', async () => {
    const before = await usageRows();
    const abortedBefore =
      (before.items as { group: string; requests: number }[]).find((x) => x.group === 'aborted')?.requests ?? 0;
    env.openai.set({ chunks: 500, chunkDelayMs: 20 });
    const ac = new AbortController();
    const r = await fetch(`${env.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: 'mock-gpt', stream: true, messages: [{ role: 'user', content: 'x' }] }),
      signal: ac.signal,
    });
    const reader = r.body!.getReader();
    let seen = 0;
    while (seen < 5) {
      const { value } = await reader.read();
      seen += (new TextDecoder().decode(value).match(/data:/g) ?? []).length;
    }
    ac.abort();
    await waitFor(() => env.openai.requests.at(-1)!.clientAborted);
    const up = env.openai.requests.at(-1)!;
    expect(up.chunksSent).toBeLessThan(100);
    await waitFor(async () => {
      const items = (await usageRows()).items as { group: string; requests: number; completion_tokens: number }[];
      return (items.find((x) => x.group === 'aborted')?.requests ?? 0) === abortedBefore + 1;
    });
    const aborted = ((await usageRows()).items as { group: string; completion_tokens: number }[]).find(
      (x) => x.group === 'aborted',
    )!;
    expect(aborted.completion_tokens).toBeGreaterThan(0);
  });

  it('applies backpressure: a client that stops reading stops the upstream', async () => {
    const big = 'x'.repeat(16 * 1024);
    env.openai.set({ chunks: 3000, chunkText: () => big });
    const u = new URL(`${env.url}/api/v1/chat/completions`);
    const body = JSON.stringify({ model: 'mock-gpt', stream: true, messages: [{ role: 'user', content: 'x' }] });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname,
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
        },
        resolve,
      );
      req.on('error', reject);
      req.end(body);
    });
    res.pause();
    await sleep(800);
    const sentWhilePaused = env.openai.requests.at(-1)!.chunksSent;
    // 3000 chunks are 48 MB; only what fits in the socket and stream buffers may have left the upstream.
    expect(sentWhilePaused).toBeLessThan(800);
    let bytes = 0;
    res.on('data', (d: Buffer) => (bytes += d.length));
    res.resume();
    await new Promise((r) => res.on('end', r));
    expect(env.openai.requests.at(-1)!.chunksSent).toBe(3000);
    expect(bytes).toBeGreaterThan(3000 * big.length);
  });

  it('records usage per user, key, model and connection (admin report)', async () => {
    await client.chat.completions.create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'a b c d' }] });
    const byKey = await call(env.app, 'GET', `/api/v1/usage?group_by=key&user_id=${user.id}`, {
      token: env.admin.token,
    });
    expect(byKey.status).toBe(200);
    expect(byKey.body.items.map((i: { group: string }) => i.group)).toContain(user.keyId);
    const byConn = await call(env.app, 'GET', '/api/v1/usage?group_by=connection', { token: env.admin.token });
    expect(byConn.body.items.map((i: { group: string }) => i.group)).toContain(env.openaiConnId);
    const byDay = await call(env.app, 'GET', '/api/v1/usage?group_by=day', { token: env.admin.token });
    expect(byDay.body.items[0].group).toBe(new Date().toISOString().slice(0, 10));
    // Not for non-admins; a user sees their own only.
    const denied = await call(env.app, 'GET', '/api/v1/usage', { token: user.token });
    expect(denied.status).toBe(403);
    const mine = await call(env.app, 'GET', '/api/v1/usage/me?group_by=user', { token: user.token });
    expect(mine.body.items.map((i: { group: string }) => i.group)).toEqual([user.id]);
  });
});
