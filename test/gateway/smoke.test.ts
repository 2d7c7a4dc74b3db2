import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeMatrix, SQLITE } from '../harness.js';
import { call, gatewayEnv, sseData, type GatewayEnv } from './helpers.js';

describeMatrix('gateway smoke', [SQLITE], (b) => {
  let env: GatewayEnv;
  beforeAll(async () => {
    env = await gatewayEnv(b, { listen: false });
  });
  afterAll(async () => env?.close());

  it('lists and completes', async () => {
    const m = await call(env.app, 'GET', '/api/v1/models', { token: env.admin.token });
    expect(m.status).toBe(200);
    console.log(m.body);
    const r = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: env.admin.token,
      body: { model: 'mock-gpt', messages: [{ role: 'user', content: 'hello there' }] },
    });
    console.log(r.status, r.text, r.headers);
    const s = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: env.admin.token,
      body: { model: 'llama-mock:latest', stream: true, messages: [{ role: 'user', content: 'hello there' }] },
    });
    console.log(s.status, sseData(s.text), s.headers);
    const u = await call(env.app, 'GET', '/api/v1/usage?group_by=model', { token: env.admin.token });
    console.log(JSON.stringify(u.body));
  });
});
