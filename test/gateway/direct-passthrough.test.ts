import http from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeMatrix, makeUser, matrix, sleep } from '../harness.js';
import { startOpenAIUpstream, type MockUpstream } from '../fixtures/upstream.js';
import { call, gatewayEnv, grantModel, setLimits, sseData, UPSTREAM_KEY, type GatewayEnv } from './helpers.js';

const ask = (model: string, extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: 'user', content: 'hello' }],
  ...extra,
});

describeMatrix('direct connections: disabled (default)', matrix().slice(0, 1), (b) => {
  let env: GatewayEnv;
  beforeAll(async () => {
    env = await gatewayEnv(b, { listen: false });
  });
  afterAll(async () => env?.close());

  it('the routes answer 403 and a request naming a user connection is refused, even if one exists', async () => {
    const u = await makeUser(env.app, { role: 'user' });
    for (const [m, url] of [
      ['GET', '/api/v1/user/connections'],
      ['POST', '/api/v1/user/connections'],
      ['GET', '/api/v1/user/connections/x'],
    ] as const) {
      const r = await call(env.app, m, url, {
        token: u.token,
        body: m === 'POST' ? { type: 'openai', name: 'x', base_url: env.openai.baseUrl } : undefined,
      });
      expect(r.status, url).toBe(403);
      expect(r.body.error.code).toBe('direct_connections_disabled');
    }
    // A row left over from a time the setting was on.
    const now = Date.now();
    await env.app.ctx.db
      .insertInto('model_connections')
      .values({
        id: 'leftover',
        owner_id: u.user.id,
        type: 'openai',
        name: 'old',
        base_url: env.openai.baseUrl,
        api_key_enc: null,
        headers_enc: null,
        prefix_id: null,
        model_ids: '["mock-gpt"]',
        enabled: 1,
        created_by: u.user.id,
        created_at: now,
        updated_at: now,
      })
      .execute();
    const r = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: u.token,
      body: ask('direct/leftover/mock-gpt'),
    });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('direct_connections_disabled');
    expect(env.openai.requests.filter((x) => x.path === '/v1/chat/completions')).toHaveLength(0);
    expect(JSON.stringify((await call(env.app, 'GET', '/api/models', { token: u.token })).body)).not.toContain(
      'direct/',
    );
  });
});

describeMatrix('direct connections: enabled', matrix(), (b) => {
  let strict: GatewayEnv;
  let env: GatewayEnv;
  let mine: MockUpstream;
  beforeAll(async () => {
    strict = await gatewayEnv(b, { listen: false, connections: false, env: { ENABLE_DIRECT_CONNECTIONS: 'true' } });
    // The SSRF rules refuse private addresses; this instance allows them so the loopback fixture is reachable.
    env = await gatewayEnv(b, {
      listen: false,
      env: { ENABLE_DIRECT_CONNECTIONS: 'true', ENABLE_RAG_LOCAL_WEB_FETCH: 'true' },
    });
    mine = await startOpenAIUpstream({ apiKey: 'sk-users-own-key-1234567', models: ['own-model'] });
  });
  afterAll(async () => {
    await strict?.close();
    await env?.close();
    await mine?.close();
  });

  it('a user connection goes through the SSRF rules: private and metadata addresses are refused', async () => {
    const u = await makeUser(strict.app, { role: 'user' });
    for (const base_url of [
      strict.openai.baseUrl,
      'http://10.1.2.3/v1',
      'http://169.254.169.254/latest',
      'http://[::ffff:127.0.0.1]:8080/v1',
      'http://0x7f000001/v1',
    ]) {
      const r = await call(strict.app, 'POST', '/api/v1/user/connections', {
        token: u.token,
        body: { type: 'openai', name: 'x', base_url },
      });
      expect(r.status, base_url).toBe(400);
    }
    const meta = await call(env.app, 'POST', '/api/v1/user/connections', {
      token: (await makeUser(env.app, { role: 'user' })).token,
      body: { type: 'openai', name: 'x', base_url: 'http://169.254.169.254/v1' },
    });
    expect(meta.status).toBe(400);
  });

  it('is visible and usable only by its owner, with the owner’s own key', async () => {
    const owner = await makeUser(env.app, { role: 'user' });
    const other = await makeUser(env.app, { role: 'user' });
    const c = await call(env.app, 'POST', '/api/v1/user/connections', {
      token: owner.token,
      body: { type: 'openai', name: 'mine', base_url: mine.baseUrl, api_key: 'sk-users-own-key-1234567' },
    });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ api_key: '********', scope: 'user' });
    expect(c.text).not.toContain('sk-users-own-key');
    const id = c.body.id as string;
    const model = `direct/${id}/own-model`;

    const list = await call(env.app, 'GET', '/api/v1/models', { token: owner.token });
    expect(list.body.data.map((m: { id: string }) => m.id)).toEqual([model]);
    const r = await call(env.app, 'POST', '/api/v1/chat/completions', { token: owner.token, body: ask(model) });
    expect(r.status).toBe(200);
    expect(mine.requests.at(-1)!.headers.authorization).toBe('Bearer sk-users-own-key-1234567');

    // Another user: 404 everywhere, and the model does not exist for them.
    for (const [m, url] of [
      ['GET', `/api/v1/user/connections/${id}`],
      ['PATCH', `/api/v1/user/connections/${id}`],
      ['DELETE', `/api/v1/user/connections/${id}`],
      ['POST', `/api/v1/user/connections/${id}/test`],
    ] as const)
      expect(
        (await call(env.app, m, url, { token: other.token, body: m === 'PATCH' ? { name: 'x' } : undefined })).status,
        `${m} ${url}`,
      ).toBe(404);
    expect((await call(env.app, 'GET', '/api/v1/user/connections', { token: other.token })).body.items).toEqual([]);
    const stolen = await call(env.app, 'POST', '/api/v1/chat/completions', { token: other.token, body: ask(model) });
    expect(stolen.status).toBe(404);
    // Admin routes never show users' connections; a user connection is not an admin one.
    expect((await call(env.app, 'GET', `/api/v1/connections/${id}`, { token: env.admin.token })).status).toBe(404);
    expect(
      (await call(env.app, 'GET', '/api/v1/connections', { token: env.admin.token })).body.items.map(
        (x: { id: string }) => x.id,
      ),
    ).not.toContain(id);
    // Presets cannot be built on a direct model.
    const g = await call(env.app, 'POST', '/api/v1/presets', {
      token: env.admin.token,
      body: { id: 'on-direct', name: 'x', base_model_id: model },
    });
    expect(g.status).toBe(400);
    expect((await call(env.app, 'DELETE', `/api/v1/user/connections/${id}`, { token: owner.token })).status).toBe(200);
    expect(
      (await call(env.app, 'POST', '/api/v1/chat/completions', { token: owner.token, body: ask(model) })).status,
    ).toBe(404);
  });
});

describeMatrix('OpenAI pass-through', matrix().slice(0, 2), (b) => {
  let off: GatewayEnv;
  let on: GatewayEnv;
  beforeAll(async () => {
    off = await gatewayEnv(b, { listen: false });
    on = await gatewayEnv(b, { env: { ENABLE_OPENAI_API_PASSTHROUGH: 'true' } });
  });
  afterAll(async () => {
    await off?.close();
    await on?.close();
  });

  it('answers 403 by default (after authentication)', async () => {
    expect((await call(off.app, 'GET', '/api/openai/models')).status).toBe(401);
    const r = await call(off.app, 'GET', '/api/openai/models', { token: off.admin.token });
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ code: 'passthrough_disabled', type: 'permission_error' });
    const p = await call(off.app, 'POST', '/api/openai/chat/completions', {
      token: off.admin.token,
      body: ask('mock-gpt'),
    });
    expect(p.status).toBe(403);
    expect(off.openai.requests.filter((x) => x.path !== '/v1/models')).toHaveLength(0);
  });

  it('when enabled: forwards with the admin key, still checks a named model, limits, usage and audit', async () => {
    const u = await makeUser(on.app, { role: 'user' });
    const models = await call(on.app, 'GET', '/api/openai/models', { token: u.token });
    expect(models.status).toBe(200);
    expect(models.body.data.map((m: { id: string }) => m.id)).toContain('mock-small');
    expect(on.openai.requests.at(-1)!.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);

    const denied = await call(on.app, 'POST', '/api/openai/chat/completions', {
      token: u.token,
      body: ask('mock-small'),
    });
    expect(denied.status).toBe(404);
    await grantModel(on, 'mock-gpt', { user: u.user.id });
    const ok = await call(on.app, 'POST', '/api/openai/chat/completions', { token: u.token, body: ask('mock-gpt') });
    expect(ok.status).toBe(200);
    expect(ok.body.choices[0].message.content).toBe('tok0 tok1 tok2 ');
    const streamed = await call(on.app, 'POST', '/api/openai/chat/completions', {
      token: u.token,
      body: ask('mock-gpt', { stream: true, stream_options: { include_usage: true } }),
    });
    expect(sseData(streamed.text).at(-1)).toBe('[DONE]');

    // Raw paths over a real socket (no client-side normalisation): nothing climbs out of the base URL.
    for (const bad of [
      '/api/openai/a/../../admin',
      '/api/openai/..%2f..%2fadmin',
      '/api/openai/a/%2e%2e/%2e%2e/x',
      '/api/openai/x%5cy',
    ]) {
      const status = await new Promise<number>((resolve, reject) => {
        const rq = http.request(`${on.url}${bad}`, { headers: { authorization: `Bearer ${u.token}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        rq.on('error', reject);
        rq.end();
      });
      expect([400, 404], bad).toContain(status);
    }
    expect(on.openai.requests.every((r) => r.path.startsWith('/v1/'))).toBe(true);

    await setLimits(on, 'user', u.user.id, { requests_per_minute: 4 });
    const codes: number[] = [];
    for (let i = 0; i < 2; i++)
      codes.push((await call(on.app, 'GET', '/api/openai/models', { token: u.token })).status);
    expect(codes).toEqual([200, 429]);

    await sleep(100);
    const usage = await call(on.app, 'GET', `/api/v1/usage?group_by=route&user_id=${u.user.id}`, {
      token: on.admin.token,
    });
    const pt = usage.body.items.find((i: { group: string }) => i.group === 'passthrough');
    expect(pt.requests).toBe(4);
    expect(pt.total_tokens).toBeGreaterThan(0);
    const audit = await on.app.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'gateway.passthrough')
      .where('subject_id', '=', u.user.id)
      .execute();
    expect(audit.length).toBeGreaterThanOrEqual(4);
    expect(audit.map((a) => JSON.parse(a.details ?? '{}').path)).toContain('chat/completions');
  });
});

describeMatrix('direct connections under OFFLINE_MODE', matrix().slice(0, 1), (b) => {
  let env: GatewayEnv;
  beforeAll(async () => {
    env = await gatewayEnv(b, {
      listen: false,
      env: { ENABLE_DIRECT_CONNECTIONS: 'true', ENABLE_RAG_LOCAL_WEB_FETCH: 'true', OFFLINE_MODE: 'true' },
    });
  });
  afterAll(async () => env?.close());

  it('a user connection is not one the admin configured: refused; admin connections keep working', async () => {
    const u = await makeUser(env.app, { role: 'user' });
    const r = await call(env.app, 'POST', '/api/v1/user/connections', {
      token: u.token,
      body: { type: 'openai', name: 'x', base_url: env.openai.baseUrl },
    });
    expect(r.status).toBe(403);
    expect(r.body.error.message).toContain('OFFLINE_MODE');
    const c = await call(env.app, 'POST', '/api/v1/chat/completions', { token: u.token, body: ask('direct/x/y') });
    expect(c.status).toBe(403);
    const admin = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: env.admin.token,
      body: ask('mock-gpt'),
    });
    expect(admin.status).toBe(200);
  });
});
