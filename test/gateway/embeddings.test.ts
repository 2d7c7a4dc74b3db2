import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { describeMatrix, makeUser, matrix, sleep } from '../harness.js';
import { EMBEDDING_VECTOR } from '../fixtures/upstream.js';
import { call, gatewayEnv, grantModel, setLimits, UPSTREAM_KEY, userWithKey, type GatewayEnv } from './helpers.js';

const MAX_BODY = 1024 * 1024;

describeMatrix('embeddings through the gateway', matrix(), (b) => {
  let env: GatewayEnv;
  let user: Awaited<ReturnType<typeof userWithKey>>;

  beforeAll(async () => {
    env = await gatewayEnv(b, {
      env: { USER_PERMISSIONS_FEATURES_API_KEYS: 'true', GATEWAY_MAX_BODY_SIZE: String(MAX_BODY) },
    });
    user = await userWithKey(env);
    for (const m of ['mock-gpt', 'mock-small', 'llama-mock:latest']) await grantModel(env, m, { user: user.id });
  });
  afterAll(async () => env?.close());
  beforeEach(() => {
    env.openai.reset();
    env.ollama.reset();
  });

  const embed = (token: string, body: unknown, url = '/api/v1/embeddings') =>
    call(env.app, 'POST', url, { token, body });
  const openaiCalls = () => env.openai.requests.filter((r) => r.path === '/v1/embeddings');
  const ollamaCalls = () => env.ollama.requests.filter((r) => r.path === '/api/embed');
  const usageRows = async (userId: string) => {
    await call(env.app, 'GET', '/api/v1/usage?group_by=route', { token: env.admin.token }); // flushes the queue
    return env.app.ctx.db
      .selectFrom('gateway_usage')
      .selectAll()
      .where('user_id', '=', userId)
      .where('route', '=', 'embeddings')
      .orderBy('created_at')
      .execute();
  };
  async function freshUser(models: string[] = ['mock-gpt']) {
    const u = await makeUser(env.app, { role: 'user' });
    for (const m of models) await grantModel(env, m, { user: u.user.id });
    return u;
  }

  it('OpenAI connection: both paths, the admin key upstream, the model as the client named it, Server-Timing', async () => {
    for (const url of ['/api/embeddings', '/api/v1/embeddings']) {
      env.openai.reset();
      const r = await embed(
        user.token,
        { model: 'mock-gpt', input: ['one', 'two'], encoding_format: 'float', dimensions: 3, user: 'end-user-1' },
        url,
      );
      expect(r.status, r.text).toBe(200);
      expect(r.body).toEqual({
        object: 'list',
        model: 'mock-gpt',
        data: [
          { object: 'embedding', index: 0, embedding: EMBEDDING_VECTOR },
          { object: 'embedding', index: 1, embedding: EMBEDDING_VECTOR },
        ],
        usage: { prompt_tokens: 2, total_tokens: 2 },
      });
      expect(r.headers['server-timing']).toMatch(/^gateway;dur=\d+\.\d{3};desc="HridaAI overhead", upstream;dur=/);
      expect(r.headers['x-ratelimit-limit-requests']).toBe('600');
      const sent = openaiCalls();
      expect(sent).toHaveLength(1);
      expect(sent[0]!.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
      expect(sent[0]!.body).toEqual({
        model: 'mock-gpt',
        input: ['one', 'two'],
        encoding_format: 'float',
        dimensions: 3,
        user: 'end-user-1',
      });
    }
    // A flat token array is one input; a batch of token arrays is several.
    const one = await embed(user.token, { model: 'mock-gpt', input: [1, 2, 3] });
    expect(one.status, one.text).toBe(200);
    expect(one.body.data).toHaveLength(1);
    const two = await embed(user.token, { model: 'mock-gpt', input: [[1, 2], [3]] });
    expect(two.status, two.text).toBe(200);
    expect(two.body.data).toHaveLength(2);
  });

  it('Ollama connection: /api/embed with its native body, translated to the OpenAI shape', async () => {
    const r = await embed(user.token, {
      model: 'llama-mock:latest',
      input: ['alpha beta', 'gamma'],
      user: 'not-for-ollama',
      dimensions: 3,
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({
      object: 'list',
      model: 'llama-mock:latest',
      data: [
        { object: 'embedding', index: 0, embedding: EMBEDDING_VECTOR },
        { object: 'embedding', index: 1, embedding: EMBEDDING_VECTOR },
      ],
      usage: { prompt_tokens: 3, total_tokens: 3 },
    });
    expect(r.headers['server-timing']).toMatch(/^gateway;dur=/);
    expect(ollamaCalls().map((c) => c.body)).toEqual([
      { model: 'llama-mock:latest', input: ['alpha beta', 'gamma'], dimensions: 3 },
    ]);
    const single = await embed(user.token, { model: 'llama-mock:latest', input: 'just one' });
    expect(single.status, single.text).toBe(200);
    expect(single.body.data).toHaveLength(1);
    expect(ollamaCalls().at(-1)!.body).toEqual({ model: 'llama-mock:latest', input: 'just one' });

    // Ollama takes text only: token arrays are refused before anything is dispatched.
    env.ollama.reset();
    const tokens = await embed(user.token, { model: 'llama-mock:latest', input: [1, 2, 3] });
    expect(tokens.status).toBe(400);
    expect(tokens.body.error).toMatchObject({ code: 'validation_failed', param: 'input' });
    expect(ollamaCalls()).toHaveLength(0);

    // Without prompt_eval_count the usage is HridaAI's estimate (characters / 3).
    env.ollama.set({ usage: false });
    const est = await embed(user.token, { model: 'llama-mock:latest', input: 'abcdefghi' });
    expect(est.status, est.text).toBe(200);
    expect(est.body.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
  });

  it('the official openai client with an API key (base64 by default, float when asked)', async () => {
    const client = new OpenAI({ apiKey: user.key, baseURL: `${env.url}/api/v1`, maxRetries: 0, timeout: 10_000 });
    for (const model of ['mock-gpt', 'llama-mock:latest']) {
      const res = await client.embeddings.create({ model, input: ['hello world', 'again'] });
      expect(res.model).toBe(model);
      expect(res.data).toHaveLength(2);
      expect(res.data.map((d) => d.index)).toEqual([0, 1]);
      for (const d of res.data) {
        expect(d.embedding).toHaveLength(EMBEDDING_VECTOR.length);
        d.embedding.forEach((x, i) => expect(x).toBeCloseTo(EMBEDDING_VECTOR[i]!, 6));
      }
      expect(res.usage.prompt_tokens).toBeGreaterThan(0);
      const floats = await client.embeddings.create({ model, input: 'hello', encoding_format: 'float' });
      expect(floats.data[0]!.embedding).toEqual(EMBEDDING_VECTOR);
    }
    // The client asked for base64 (its default); the OpenAI upstream was asked the same.
    expect(openaiCalls()[0]!.body.encoding_format).toBe('base64');
    expect(JSON.stringify(openaiCalls()[0]!.headers)).not.toContain(user.key);
    expect(ollamaCalls()[0]!.body).toEqual({ model: 'llama-mock:latest', input: ['hello world', 'again'] });
    const rows = await usageRows(user.id);
    expect(rows.filter((r) => r.key_id === user.keyId)).toHaveLength(4);
    // Errors reach the client in the OpenAI envelope.
    await expect(client.embeddings.create({ model: 'no-such-model', input: 'x' })).rejects.toMatchObject({
      status: 404,
      code: 'model_not_found',
    });
  });

  it('a preset over an embedding model dispatches to the base model; its prompt and parameters are not applied', async () => {
    const p = await call(env.app, 'POST', '/api/v1/presets', {
      token: env.admin.token,
      body: {
        id: 'embed-preset',
        name: 'Embedder',
        base_model_id: 'mock-small',
        system_prompt: 'Never sent with embeddings.',
        params: { temperature: 0.3, max_tokens: 64 },
      },
    });
    expect(p.status, p.text).toBe(201);
    const u = await freshUser([]);
    await grantModel(env, 'embed-preset', { user: u.user.id });
    // The preset alone is not enough: every model of the chain needs a grant.
    const denied = await embed(u.token, { model: 'embed-preset', input: 'x' });
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatchObject({ code: 'model_access_denied', type: 'permission_error' });
    expect(openaiCalls()).toHaveLength(0);

    await grantModel(env, 'mock-small', { user: u.user.id });
    await sleep(env.app.config.SESSION_CACHE_TTL_MS + 50); // decisions are reused that long
    const r = await embed(u.token, { model: 'embed-preset', input: 'some text' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.model).toBe('embed-preset');
    expect(openaiCalls().map((c) => c.body)).toEqual([{ model: 'mock-small', input: 'some text' }]);
    const rows = await usageRows(u.user.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ model_id: 'embed-preset', base_model_id: 'mock-small' });
  });

  it('no grant → 404 model_not_found (as an unknown model); nothing is dispatched', async () => {
    const u = await freshUser([]);
    for (const model of ['mock-gpt', 'llama-mock:latest', 'does-not-exist']) {
      const r = await embed(u.token, { model, input: 'x' });
      expect(r.status).toBe(404);
      expect(r.body.error).toMatchObject({ code: 'model_not_found', type: 'not_found_error' });
      expect(Object.keys(r.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    }
    expect(openaiCalls()).toHaveLength(0);
    expect(ollamaCalls()).toHaveLength(0);
  });

  it('API keys: the model allowlist (403) and the endpoint allowlist match the embeddings paths exactly', async () => {
    const k = await userWithKey(env, { allowedModels: ['mock-small'] });
    await grantModel(env, 'mock-gpt', { user: k.id });
    await grantModel(env, 'mock-small', { user: k.id });
    const refused = await embed(k.key, { model: 'mock-gpt', input: 'x' });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'api_key_model_forbidden', type: 'permission_error' });
    expect((await embed(k.key, { model: 'mock-small', input: 'x' })).status).toBe(200);
    // The user's session is not bound by the key's list.
    expect((await embed(k.token, { model: 'mock-gpt', input: 'x' })).status).toBe(200);

    const keyFor = async (allowed_endpoints: string[]) => {
      const r = await call(env.app, 'POST', '/api/v1/api-keys', {
        token: k.token,
        body: { name: 'endpoints', allowed_endpoints },
      });
      expect(r.status, r.text).toBe(201);
      return r.body.key as string;
    };
    const chatOnly = await keyFor(['/api/v1/chat/completions']);
    const r1 = await embed(chatOnly, { model: 'mock-small', input: 'x' });
    expect(r1.status).toBe(403);
    expect(r1.body.error).toMatchObject({ code: 'api_key_endpoint_forbidden', type: 'permission_error' });
    const embedOnly = await keyFor(['/api/v1/embeddings']);
    expect((await embed(embedOnly, { model: 'mock-small', input: 'x' })).status).toBe(200);
    const other = await embed(embedOnly, { model: 'mock-small', input: 'x' }, '/api/embeddings');
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe('api_key_endpoint_forbidden');
    const chat = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: embedOnly,
      body: { model: 'mock-small', messages: [{ role: 'user', content: 'x' }] },
    });
    expect(chat.status).toBe(403);
    // A prefix of the path is not the path.
    const prefix = await keyFor(['/api/v1/embed']);
    expect((await embed(prefix, { model: 'mock-small', input: 'x' })).status).toBe(403);
  });

  it('pending accounts and anonymous callers are refused in the OpenAI envelope', async () => {
    const p = await makeUser(env.app, { role: 'pending' });
    const r = await embed(p.token, { model: 'mock-gpt', input: 'x' });
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ code: 'account_pending', type: 'permission_error' });
    const anon = await call(env.app, 'POST', '/api/v1/embeddings', { body: { model: 'mock-gpt', input: 'x' } });
    expect(anon.status).toBe(401);
    expect(anon.body.error.type).toBe('authentication_error');
    expect(openaiCalls()).toHaveLength(0);
  });

  it('requests per minute: 429 with Retry-After; a token limit refuses an input larger than it', async () => {
    const u = await freshUser();
    await setLimits(env, 'user', u.user.id, { requests_per_minute: 2 });
    const codes: number[] = [];
    let last;
    for (let i = 0; i < 3; i++) {
      last = await embed(u.token, { model: 'mock-gpt', input: 'x' });
      codes.push(last.status);
    }
    expect(codes).toEqual([200, 200, 429]);
    expect(last!.body.error).toMatchObject({ code: 'rate_limited', type: 'rate_limit_error' });
    expect(Number(last!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(last!.headers['retry-after'])).toBeLessThanOrEqual(61);
    expect(openaiCalls()).toHaveLength(2);

    const t = await freshUser();
    await setLimits(env, 'user', t.user.id, { tokens_per_minute: 50 });
    const big = await embed(t.token, { model: 'mock-gpt', input: 'a'.repeat(300) }); // ≈ 100 tokens
    expect(big.status).toBe(429);
    expect(big.headers['retry-after']).toBeDefined();
    expect(openaiCalls()).toHaveLength(2);
    expect((await embed(t.token, { model: 'mock-gpt', input: 'a'.repeat(30) })).status).toBe(200);
  });

  it('budgets are reserved with the estimate and settled with the upstream figure', async () => {
    const u = await freshUser();
    await setLimits(env, 'user', u.user.id, { tokens_per_day: 20 });
    env.openai.set({ promptTokens: 1 });
    // Each request reserves 10 (30 characters / 3) and is settled at 1: five fit into 20.
    // Unsettled, the third would already be refused.
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      codes.push((await embed(u.token, { model: 'mock-gpt', input: 'b'.repeat(30) })).status);
      await sleep(20);
    }
    expect(codes).toEqual([200, 200, 200, 200, 200]);
    // 5 used: a reservation of 20 does not fit, one of 10 does.
    const over = await embed(u.token, { model: 'mock-gpt', input: 'c'.repeat(60) });
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe('budget_exceeded');
    expect((await embed(u.token, { model: 'mock-gpt', input: 'c'.repeat(30) })).status).toBe(200);
  });

  it('records one usage row per request with route embeddings; the usage report groups by it', async () => {
    const u = await freshUser(['mock-gpt', 'llama-mock:latest']);
    env.openai.set({ promptTokens: 7 });
    expect((await embed(u.token, { model: 'mock-gpt', input: ['a', 'b'] })).status).toBe(200);
    env.openai.set({ usage: false });
    expect((await embed(u.token, { model: 'mock-gpt', input: 'abcdefghijkl' })).status).toBe(200);
    expect((await embed(u.token, { model: 'llama-mock:latest', input: 'one two three' })).status).toBe(200);
    const chat = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: u.token,
      body: { model: 'mock-gpt', messages: [{ role: 'user', content: 'hi' }] },
    });
    expect(chat.status).toBe(200);

    const rows = await usageRows(u.user.id);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatchObject({
      route: 'embeddings',
      model_id: 'mock-gpt',
      base_model_id: 'mock-gpt',
      connection_id: env.openaiConnId,
      prompt_tokens: 7,
      completion_tokens: 0,
      total_tokens: 7,
      usage_source: 'upstream',
      status: 'completed',
      http_status: 200,
      stream: 0,
      key_id: null,
    });
    expect(rows[1]).toMatchObject({ prompt_tokens: 4, total_tokens: 4, usage_source: 'estimated' });
    expect(rows[2]).toMatchObject({
      connection_id: env.ollamaConnId,
      prompt_tokens: 3,
      usage_source: 'upstream',
    });

    const report = await call(env.app, 'GET', `/api/v1/usage?group_by=route&user_id=${u.user.id}`, {
      token: env.admin.token,
    });
    expect(report.status).toBe(200);
    const byRoute = Object.fromEntries(
      report.body.items.map((i: { group: string; requests: number; total_tokens: number }) => [i.group, i]),
    );
    expect(byRoute.embeddings).toMatchObject({ requests: 3, total_tokens: 14, completion_tokens: 0 });
    expect(byRoute.chat).toMatchObject({ requests: 1 });
    const mine = await call(env.app, 'GET', '/api/v1/usage/me?group_by=route', { token: u.token });
    expect(mine.body.items.find((i: { group: string }) => i.group === 'embeddings')).toMatchObject({ requests: 3 });
  });

  it('upstream errors: 500 → 502 envelope without the upstream body; 400 → upstream_rejected; recorded', async () => {
    const u = await freshUser(['mock-gpt', 'llama-mock:latest']);
    env.openai.set({ status: 500, errorBody: { error: { message: 'internal detail at 10.0.0.7' } } }, 'mock-gpt');
    env.ollama.set({ status: 500, errorBody: { error: 'ollama detail at 10.0.0.8' } });
    for (const model of ['mock-gpt', 'llama-mock:latest']) {
      const r = await embed(u.token, { model, input: 'x' });
      expect(r.status).toBe(502);
      expect(r.body.error).toMatchObject({ code: 'upstream_error', type: 'api_error' });
      expect(r.text).not.toMatch(/10\.0\.0\.[78]/);
    }
    env.openai.set(
      { status: 400, errorBody: { error: { message: 'input too long for key sk-abcdefghijkl' } } },
      'mock-gpt',
    );
    const rej = await embed(u.token, { model: 'mock-gpt', input: 'x' });
    expect(rej.status).toBe(400);
    expect(rej.body.error.code).toBe('upstream_rejected');
    expect(rej.body.error.message).toContain('input too long');
    expect(rej.body.error.message).not.toContain('sk-abcdefghijkl');
    const rows = await usageRows(u.user.id);
    expect(rows.map((r) => [r.status, r.http_status])).toEqual([
      ['error', 502],
      ['error', 502],
      ['error', 400],
    ]);
  });

  it('malformed bodies → 400 naming the field; nothing is dispatched', async () => {
    const cases: [unknown, string][] = [
      [{ input: 'x' }, 'model'],
      [{ model: 'mock-gpt' }, 'input'],
      [{ model: 'mock-gpt', input: [] }, 'input'],
      [{ model: 'mock-gpt', input: '' }, 'input'],
      [{ model: 'mock-gpt', input: ['ok', 3] }, 'input'],
      [{ model: 'mock-gpt', input: { text: 'x' } }, 'input'],
      [{ model: 'mock-gpt', input: [[1, 2], []] }, 'input'],
      [{ model: 'mock-gpt', input: [-1] }, 'input'],
      [{ model: 'mock-gpt', input: Array.from({ length: 2049 }, () => 'x') }, 'input'],
      [{ model: 'mock-gpt', input: 'x', encoding_format: 'hex' }, 'encoding_format'],
      [{ model: 'mock-gpt', input: 'x', dimensions: 0 }, 'dimensions'],
      [{ model: 'mock-gpt', input: 'x', dimensions: 1.5 }, 'dimensions'],
    ];
    for (const [body, param] of cases) {
      const r = await embed(user.token, body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'validation_failed', type: 'invalid_request_error' });
      // The field, or the element of it that is wrong (`input.1`).
      expect(r.body.error.param).toMatch(new RegExp(`^${param}(\\.\\d+)*$`));
    }
    const bad = await call(env.app, 'POST', '/api/v1/embeddings', {
      token: user.token,
      rawBody: '{"model": "mock-gpt", "input": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_json', type: 'invalid_request_error' });
    expect(openaiCalls()).toHaveLength(0);
    // 2048 inputs is the most accepted.
    const most = await embed(user.token, { model: 'mock-gpt', input: Array.from({ length: 2048 }, () => 'x') });
    expect(most.status, most.text.slice(0, 200)).toBe(200);
    expect(most.body.data).toHaveLength(2048);
  });

  it('a body over GATEWAY_MAX_BODY_SIZE → 413 in the envelope', async () => {
    const r = await embed(user.token, { model: 'mock-gpt', input: 'x'.repeat(MAX_BODY + 10) });
    expect(r.status).toBe(413);
    expect(r.body.error).toMatchObject({ code: 'body_too_large', type: 'invalid_request_error' });
    expect(openaiCalls()).toHaveLength(0);
  });
});
