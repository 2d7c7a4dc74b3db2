import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { describeMatrix, makeUser, matrix } from '../harness.js';
import { call, gatewayEnv, grantModel, userWithKey, type GatewayEnv } from './helpers.js';

const ask = (model: string) => ({ model, messages: [{ role: 'user', content: 'question' }] });
const ids = (body: { data: { id: string }[] }) => body.data.map((m) => m.id).sort();

describeMatrix('models, grants and presets', matrix(), (b) => {
  let env: GatewayEnv;

  beforeAll(async () => {
    env = await gatewayEnv(b, { listen: false, env: { USER_PERMISSIONS_FEATURES_API_KEYS: 'true' } });
  });
  afterAll(async () => env?.close());
  beforeEach(() => env.openai.reset());

  const chat = (token: string, model: string) =>
    call(env.app, 'POST', '/api/v1/chat/completions', { token, body: ask(model) });

  it('lists and dispatches only what is granted (to the user or one of their groups); pending users get nothing', async () => {
    const u = await makeUser(env.app, { role: 'user' });
    expect(ids((await call(env.app, 'GET', '/api/v1/models', { token: u.token })).body)).toEqual([]);
    expect((await call(env.app, 'GET', '/api/models', { token: u.token })).body.data).toEqual([]);
    const r = await chat(u.token, 'mock-gpt');
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('model_not_found');
    expect(env.openai.requests.filter((x) => x.path === '/v1/chat/completions')).toHaveLength(0);

    const g = await call(env.app, 'POST', '/api/v1/groups', { token: env.admin.token, body: { name: 'readers' } });
    await call(env.app, 'POST', `/api/v1/groups/${g.body.id}/members`, {
      token: env.admin.token,
      body: { user_ids: [u.user.id] },
    });
    await grantModel(env, 'mock-gpt', { group: g.body.id });
    await new Promise((r) => setTimeout(r, env.app.config.SESSION_CACHE_TTL_MS + 50));
    expect(ids((await call(env.app, 'GET', '/api/v1/models', { token: u.token })).body)).toEqual(['mock-gpt']);
    expect((await chat(u.token, 'mock-gpt')).status).toBe(200);
    expect((await chat(u.token, 'mock-small')).status).toBe(404);
    // Non-admins never see which connection serves a model.
    const mine = await call(env.app, 'GET', '/api/models', { token: u.token });
    expect(mine.body.data[0].connection).toBeUndefined();
    const adminView = await call(env.app, 'GET', '/api/models', { token: env.admin.token });
    expect(adminView.body.data.find((m: { id: string }) => m.id === 'mock-gpt').connection.id).toBe(env.openaiConnId);

    const p = await makeUser(env.app, { role: 'pending' });
    expect((await call(env.app, 'GET', '/api/v1/models', { token: p.token })).status).toBe(403);
    const pc = await chat(p.token, 'mock-gpt');
    expect(pc.status).toBe(403);
    expect(pc.body.error).toMatchObject({ code: 'account_pending', type: 'permission_error' });
  });

  it('presets: the grant is checked on every model of the chain; the preset shapes the upstream request', async () => {
    const created = await call(env.app, 'POST', '/api/v1/presets', {
      token: env.admin.token,
      body: {
        id: 'helper',
        name: 'Helper',
        base_model_id: 'mock-gpt',
        system_prompt: 'You are helpful.',
        params: { temperature: 0.1, max_tokens: 64 },
      },
    });
    expect(created.status).toBe(201);
    const outer = await call(env.app, 'POST', '/api/v1/presets', {
      token: env.admin.token,
      body: {
        id: 'helper-strict',
        name: 'Strict',
        base_model_id: 'helper',
        system_prompt: 'Be brief.',
        params: { temperature: 0 },
      },
    });
    expect(outer.status).toBe(201);

    const u = await makeUser(env.app, { role: 'user' });
    await grantModel(env, 'helper-strict', { user: u.user.id });
    // Granted the outer preset only: not listed, and refused (403: the preset is theirs to see, its base is not).
    expect(ids((await call(env.app, 'GET', '/api/v1/models', { token: u.token })).body)).toEqual([]);
    const denied = await chat(u.token, 'helper-strict');
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('model_access_denied');
    await grantModel(env, 'helper', { user: u.user.id });
    expect((await chat(u.token, 'helper-strict')).status).toBe(403);
    await grantModel(env, 'mock-gpt', { user: u.user.id });
    await new Promise((r) => setTimeout(r, env.app.config.SESSION_CACHE_TTL_MS + 50));
    expect(ids((await call(env.app, 'GET', '/api/v1/models', { token: u.token })).body)).toEqual([
      'helper',
      'helper-strict',
      'mock-gpt',
    ]);
    const ok = await chat(u.token, 'helper-strict');
    expect(ok.status).toBe(200);
    const sent = env.openai.requests.at(-1)!.body;
    expect(sent.model).toBe('mock-gpt');
    expect(sent.temperature).toBe(0); // the outer preset wins over the one it is built on
    expect(sent.max_tokens).toBe(64);
    expect(sent.messages[0]).toEqual({ role: 'system', content: 'You are helpful.\n\nBe brief.' });
    expect(sent.messages[1]).toEqual({ role: 'user', content: 'question' });

    // Readers do not see the prompt or the parameters; writers do.
    const asReader = await call(env.app, 'GET', '/api/v1/presets/helper', { token: u.token });
    expect(asReader.status).toBe(200);
    expect(asReader.body).not.toHaveProperty('system_prompt');
    expect(asReader.body).not.toHaveProperty('params');
    expect(JSON.stringify((await call(env.app, 'GET', '/api/models', { token: u.token })).body)).not.toContain(
      'helpful',
    );
    const asAdmin = await call(env.app, 'GET', '/api/v1/presets/helper', { token: env.admin.token });
    expect(asAdmin.body).toMatchObject({
      system_prompt: 'You are helpful.',
      params: { temperature: 0.1 },
      can_write: true,
    });
    expect(
      (await call(env.app, 'PATCH', '/api/v1/presets/helper', { token: u.token, body: { name: 'x' } })).status,
    ).toBe(403);

    // A loop is refused; an id taken by a connection model is refused; an inactive preset is not dispatched.
    const loop = await call(env.app, 'PATCH', '/api/v1/presets/helper', {
      token: env.admin.token,
      body: { base_model_id: 'helper-strict' },
    });
    expect(loop.status).toBe(400);
    const clash = await call(env.app, 'POST', '/api/v1/presets', {
      token: env.admin.token,
      body: { id: 'mock-gpt', name: 'x', base_model_id: 'mock-small' },
    });
    expect(clash.status).toBe(409);
    await call(env.app, 'PATCH', '/api/v1/presets/helper', { token: env.admin.token, body: { is_active: false } });
    expect((await chat(u.token, 'helper-strict')).status).toBe(404);
    expect(ids((await call(env.app, 'GET', '/api/v1/models', { token: u.token })).body)).toEqual(['mock-gpt']);
    await call(env.app, 'PATCH', '/api/v1/presets/helper', { token: env.admin.token, body: { is_active: true } });
  });

  it('creating presets needs the workspace-models permission and use of the base model', async () => {
    const u = await makeUser(env.app, { role: 'user' });
    const body = { id: 'mine', name: 'Mine', base_model_id: 'mock-gpt', system_prompt: 'secret sauce' };
    const no = await call(env.app, 'POST', '/api/v1/presets', { token: u.token, body });
    expect(no.status).toBe(403);
    expect(no.body.error.code).toBe('permission_required');

    const g = await call(env.app, 'POST', '/api/v1/groups', {
      token: env.admin.token,
      body: { name: 'builders', permissions: { workspace: { models: true } } },
    });
    await call(env.app, 'POST', `/api/v1/groups/${g.body.id}/members`, {
      token: env.admin.token,
      body: { user_ids: [u.user.id] },
    });
    // Not granted the base model: it "does not exist" for them.
    const noBase = await call(env.app, 'POST', '/api/v1/presets', { token: u.token, body });
    expect(noBase.status).toBe(400);
    await grantModel(env, 'mock-gpt', { user: u.user.id });
    await new Promise((r) => setTimeout(r, env.app.config.SESSION_CACHE_TTL_MS + 50));
    const yes = await call(env.app, 'POST', '/api/v1/presets', { token: u.token, body });
    expect(yes.status).toBe(201);
    expect(yes.body).toMatchObject({ owner_id: u.user.id, can_write: true, system_prompt: 'secret sauce' });
    // The owner uses it without a grant of its own; others do not even see it.
    expect((await chat(u.token, 'mine')).status).toBe(200);
    const other = await makeUser(env.app, { role: 'user' });
    await grantModel(env, 'mock-gpt', { user: other.user.id });
    expect((await call(env.app, 'GET', '/api/v1/presets/mine', { token: other.token })).status).toBe(404);
    expect((await chat(other.token, 'mine')).status).toBe(404);
    expect((await call(env.app, 'DELETE', '/api/v1/presets/mine', { token: other.token })).status).toBe(404);
    // A preset cannot be built on a model its author may not use (mock-small), even via another preset.
    const sneaky = await call(env.app, 'POST', '/api/v1/presets', {
      token: u.token,
      body: { id: 'sneaky', name: 'S', base_model_id: 'mock-small' },
    });
    expect(sneaky.status).toBe(400);
    expect((await call(env.app, 'DELETE', '/api/v1/presets/mine', { token: u.token })).status).toBe(200);
    const audit = await env.app.ctx.db
      .selectFrom('audit_events')
      .select('action')
      .where('resource_id', '=', 'mine')
      .execute();
    expect(audit.map((a) => a.action).sort()).toEqual(['preset.created', 'preset.deleted']);
  });

  it("an API key's model allowlist narrows listing and dispatch, on every model of the chain", async () => {
    const k = await userWithKey(env, { allowedModels: ['mock-gpt', 'helper'] });
    for (const m of ['mock-gpt', 'mock-small', 'helper']) await grantModel(env, m, { user: k.id });
    expect(ids((await call(env.app, 'GET', '/api/v1/models', { token: k.key })).body)).toEqual(['helper', 'mock-gpt']);
    expect(ids((await call(env.app, 'GET', '/api/v1/models', { token: k.token })).body)).toEqual([
      'helper',
      'mock-gpt',
      'mock-small',
    ]);
    const outside = await chat(k.key, 'mock-small');
    expect(outside.status).toBe(403);
    expect(outside.body.error.code).toBe('api_key_model_forbidden');
    // A model the user may not use at all stays "not found", whatever the key lists.
    expect((await chat(k.key, 'llama-mock:latest')).status).toBe(404);
    expect((await chat(k.key, 'helper')).status).toBe(200);
    const narrow = await userWithKey(env, { allowedModels: ['helper'] });
    await grantModel(env, 'helper', { user: narrow.id });
    await grantModel(env, 'mock-gpt', { user: narrow.id });
    const r = await chat(narrow.key, 'helper');
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ code: 'api_key_model_forbidden' });
    expect(r.body.error.message).toMatch(/built on/);
  });
});

describeMatrix('BYPASS_MODEL_ACCESS_CONTROL', matrix().slice(0, 1), (b) => {
  let env: GatewayEnv;
  beforeAll(async () => {
    env = await gatewayEnv(b, {
      listen: false,
      env: { BYPASS_MODEL_ACCESS_CONTROL: 'true', USER_PERMISSIONS_FEATURES_API_KEYS: 'true' },
    });
  });
  afterAll(async () => env?.close());

  it('every user sees and uses every model; pending users and key allowlists still apply', async () => {
    const u = await makeUser(env.app, { role: 'user' });
    expect(ids((await call(env.app, 'GET', '/api/v1/models', { token: u.token })).body)).toEqual([
      'llama-mock:latest',
      'mock-gpt',
      'mock-small',
    ]);
    expect(
      (await call(env.app, 'POST', '/api/v1/chat/completions', { token: u.token, body: ask('mock-small') })).status,
    ).toBe(200);
    const p = await makeUser(env.app, { role: 'pending' });
    expect(
      (await call(env.app, 'POST', '/api/v1/chat/completions', { token: p.token, body: ask('mock-small') })).status,
    ).toBe(403);
    const k = await userWithKey(env, { allowedModels: ['mock-gpt'] });
    expect(ids((await call(env.app, 'GET', '/api/v1/models', { token: k.key })).body)).toEqual(['mock-gpt']);
    expect(
      (await call(env.app, 'POST', '/api/v1/chat/completions', { token: k.key, body: ask('mock-small') })).status,
    ).toBe(403);
  });
});
