import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { createTestApp, describeMatrix, makeUser, matrix, sleep, type TestApp } from '../harness.js';
import { call, gatewayEnv, grantModel, setLimits, userWithKey, type GatewayEnv } from './helpers.js';

const chat = (model = 'mock-gpt', extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

async function makeGroup(env: GatewayEnv, userIds: string[]): Promise<string> {
  const g = await call(env.app, 'POST', '/api/v1/groups', {
    token: env.admin.token,
    body: { name: `g-${Math.random().toString(36).slice(2)}` },
  });
  if (g.status !== 201) throw new Error(g.text);
  const m = await call(env.app, 'POST', `/api/v1/groups/${g.body.id}/members`, {
    token: env.admin.token,
    body: { user_ids: userIds },
  });
  if (m.status !== 200 && m.status !== 201) throw new Error(m.text);
  return g.body.id;
}

describeMatrix('gateway limits and budgets', matrix({ full: true }), (b) => {
  let env: GatewayEnv;
  let second: TestApp | null = null;

  beforeAll(async () => {
    env = await gatewayEnv(b, {
      listen: false,
      env: { USER_PERMISSIONS_FEATURES_API_KEYS: 'true', GATEWAY_DEFAULT_MAX_TOKENS: '200' },
    });
  });
  afterAll(async () => {
    await second?.close();
    await env?.close();
  });
  beforeEach(() => env.openai.reset());

  async function freshUser() {
    const u = await makeUser(env.app, { role: 'user' });
    await grantModel(env, 'mock-gpt', { user: u.user.id });
    return u;
  }

  it('limit 100/min, 1000 concurrent requests: exactly 100 succeed (429 with Retry-After and x-ratelimit-*)', async () => {
    const u = await freshUser();
    await setLimits(env, 'user', u.user.id, { requests_per_minute: 100, concurrent_requests: 0 });
    const apps = [env.app];
    if (b.redis) {
      // Two instances sharing one Redis share the limit.
      second = await createTestApp(b, { shareWith: env.app, env: env.app.env });
      apps.push(second);
    }
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        call(apps[i % apps.length]!, 'POST', '/api/v1/chat/completions', { token: u.token, body: chat() }),
      ),
    );
    const ok = results.filter((r) => r.status === 200);
    const limited = results.filter((r) => r.status === 429);
    expect(ok).toHaveLength(100);
    expect(limited).toHaveLength(900);
    expect(env.openai.requests.filter((r) => r.path === '/v1/chat/completions')).toHaveLength(100);
    const one = limited[0]!;
    expect(one.body.error).toMatchObject({ code: 'rate_limited', type: 'rate_limit_error' });
    expect(Number(one.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(one.headers['retry-after'])).toBeLessThanOrEqual(61);
    expect(one.headers['x-ratelimit-limit-requests']).toBe('100');
    expect(one.headers['x-ratelimit-remaining-requests']).toBe('0');
    expect(one.headers['x-ratelimit-reset-requests']).toMatch(/^(\d+m)?\d+s$/);
  });

  it('concurrent requests per user: slots are taken atomically and freed when a stream ends', async () => {
    const u = await freshUser();
    await setLimits(env, 'user', u.user.id, { concurrent_requests: 2 });
    env.openai.set({ chunks: 5, chunkDelayMs: 60 });
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        call(env.app, 'POST', '/api/v1/chat/completions', { token: u.token, body: chat('mock-gpt', { stream: true }) }),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(2);
    const refused = results.filter((r) => r.status === 429);
    expect(refused).toHaveLength(4);
    expect(refused[0]!.body.error.code).toBe('concurrency_limited');
    env.openai.set({ chunks: 1, chunkDelayMs: 0 });
    const after = await call(env.app, 'POST', '/api/v1/chat/completions', { token: u.token, body: chat() });
    expect(after.status).toBe(200);
  });

  it('budgets are reserved before dispatch: concurrent streams cannot overspend', async () => {
    const u = await freshUser();
    // Each request reserves its prompt estimate (5) + max_tokens (300) = 305: three fit in 1000.
    await setLimits(env, 'user', u.user.id, { tokens_per_day: 1000, concurrent_requests: 0 });
    env.openai.set({ chunks: 3, chunkDelayMs: 50 });
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        call(env.app, 'POST', '/api/v1/chat/completions', {
          token: u.token,
          body: chat('mock-gpt', { stream: true, max_tokens: 300 }),
        }),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
    const refused = results.filter((r) => r.status === 429);
    expect(refused[0]!.body.error).toMatchObject({ code: 'budget_exceeded', type: 'rate_limit_error' });
    // Settled with the real usage (1 prompt + 3 completion each): room again.
    await sleep(50);
    const again = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: u.token,
      body: chat('mock-gpt', { max_tokens: 300 }),
    });
    expect(again.status).toBe(200);
    // Without max_tokens, the default reservation is sent upstream so it cannot be exceeded.
    await call(env.app, 'POST', '/api/v1/chat/completions', { token: u.token, body: chat() });
    expect(env.openai.requests.at(-1)!.body.max_tokens).toBe(200);
  });

  it('budgets survive a restart: a new instance seeds them from the usage ledger', async () => {
    const u = await freshUser();
    // Reservation 5 + 5 = 10; real usage 1 + 3 = 4 per request.
    await setLimits(env, 'user', u.user.id, { tokens_per_day: 50, concurrent_requests: 0 });
    for (let i = 0; i < 10; i++) {
      const r = await call(env.app, 'POST', '/api/v1/chat/completions', {
        token: u.token,
        body: chat('mock-gpt', { max_tokens: 5 }),
      });
      expect(r.status).toBe(200);
    }
    await sleep(50); // settlement and the ledger are written after the response
    const restarted = await createTestApp(b, { shareWith: env.app, env: env.app.env });
    try {
      let ok = 0;
      for (let i = 0; i < 5; i++) {
        const r = await call(restarted, 'POST', '/api/v1/chat/completions', {
          token: u.token,
          body: chat('mock-gpt', { max_tokens: 5 }),
        });
        if (r.status === 200) ok++;
        else expect(r.body.error.code).toBe('budget_exceeded');
      }
      expect(ok).toBe(1); // 40 used + 10 reserved = 50; then 44 + 10 > 50
    } finally {
      await restarted.close();
    }
  });

  it('group defaults apply to members without their own row; a group budget is a shared pool', async () => {
    const a = await freshUser();
    const c = await freshUser();
    const g = await makeGroup(env, [a.user.id, c.user.id]);
    await setLimits(env, 'group', g, { requests_per_minute: 3, concurrent_requests: 0, tokens_per_day: 40 });
    const codes: number[] = [];
    for (let i = 0; i < 4; i++)
      codes.push(
        (
          await call(env.app, 'POST', '/api/v1/chat/completions', {
            token: a.token,
            body: chat('mock-gpt', { max_tokens: 5 }),
          })
        ).status,
      );
    expect(codes).toEqual([200, 200, 200, 429]);
    // c has its own 3 per minute, but the group's 40 tokens per day are shared: 3 × 4 used, 28 left.
    await sleep(50);
    const more: number[] = [];
    for (let i = 0; i < 3; i++)
      more.push(
        (
          await call(env.app, 'POST', '/api/v1/chat/completions', {
            token: c.token,
            body: chat('mock-gpt', { max_tokens: 5 }),
          })
        ).status,
      );
    expect(more).toEqual([200, 200, 200]);
    await sleep(50);
    // 24 used; the next reservation (10) fits, the one after does not.
    await setLimits(env, 'user', c.user.id, { requests_per_minute: 100, concurrent_requests: 0 });
    const last: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(env.app, 'POST', '/api/v1/chat/completions', {
        token: c.token,
        body: chat('mock-gpt', { max_tokens: 5 }),
      });
      last.push(r.status);
      await sleep(20);
    }
    expect(last).toEqual([200, 200, 429]);
  });

  it('per-key limits apply to the key; model limits apply to everyone using the model', async () => {
    const k = await userWithKey(env);
    await grantModel(env, 'mock-gpt', { user: k.id });
    await setLimits(env, 'key', k.keyId, { requests_per_minute: 2 });
    const viaKey: number[] = [];
    for (let i = 0; i < 3; i++)
      viaKey.push((await call(env.app, 'POST', '/api/v1/chat/completions', { token: k.key, body: chat() })).status);
    expect(viaKey).toEqual([200, 200, 429]);
    // The same user's session is not bound by the key's limit.
    expect((await call(env.app, 'POST', '/api/v1/chat/completions', { token: k.token, body: chat() })).status).toBe(
      200,
    );

    await setLimits(env, 'model', 'mock-small', { requests_per_minute: 1 });
    const x = await freshUser();
    const y = await freshUser();
    for (const u of [x, y]) await grantModel(env, 'mock-small', { user: u.user.id });
    expect(
      (await call(env.app, 'POST', '/api/v1/chat/completions', { token: x.token, body: chat('mock-small') })).status,
    ).toBe(200);
    const r = await call(env.app, 'POST', '/api/v1/chat/completions', { token: y.token, body: chat('mock-small') });
    expect(r.status).toBe(429);
    expect(r.body.error.message).toContain('the model mock-small');
  });

  it('when Redis does not answer, gateway requests are refused (503), never let through', async () => {
    if (!b.redis) return;
    const u = await freshUser();
    const other = await createTestApp(b, { shareWith: env.app, env: env.app.env });
    try {
      const ok = await call(other, 'POST', '/api/v1/chat/completions', { token: u.token, body: chat() });
      expect(ok.status).toBe(200);
      other.ctx.redis!.cmd.disconnect();
      const before = env.openai.requests.length;
      const r = await call(other, 'POST', '/api/v1/chat/completions', { token: u.token, body: chat() });
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('service_unavailable');
      expect(env.openai.requests.length).toBe(before);
    } finally {
      await other.close();
    }
  });

  it('limit rows are admin-only, validated and audited changes', async () => {
    const u = await freshUser();
    const denied = await call(env.app, 'PUT', '/api/v1/gateway/limits', {
      token: u.token,
      body: { scope: 'user', subject_id: u.user.id, requests_per_minute: 100000 },
    });
    expect(denied.status).toBe(403);
    const missing = await call(env.app, 'PUT', '/api/v1/gateway/limits', {
      token: env.admin.token,
      body: { scope: 'user', subject_id: 'no-such-user', requests_per_minute: 1 },
    });
    expect(missing.status).toBe(404);
    const neg = await call(env.app, 'PUT', '/api/v1/gateway/limits', {
      token: env.admin.token,
      body: { scope: 'user', subject_id: u.user.id, requests_per_minute: -1 },
    });
    expect(neg.status).toBe(400);
    const mine = await call(env.app, 'GET', '/api/v1/gateway/limits/me', { token: u.token });
    expect(mine.status).toBe(200);
    expect(mine.body.items).toContainEqual({ applies_to: 'user', kind: 'requests', limit: 600 });
  });
});
