import { spawnSync } from 'node:child_process';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config/index.js';
import { createTestApp, describeMatrix, makeUser, matrix, type TestApp } from '../harness.js';
import { startOpenAIUpstream } from '../fixtures/upstream.js';
import { call, gatewayEnv, UPSTREAM_KEY, type GatewayEnv } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const HEADER_SECRET = 'org-secret-value-42';

describeMatrix('connections (admin)', matrix(), (b) => {
  let env: GatewayEnv;
  let connId: string;

  beforeAll(async () => {
    env = await gatewayEnv(b, { listen: false, connections: false });
  });
  afterAll(async () => env?.close());
  beforeEach(() => env.openai.reset());

  const create = (body: Record<string, unknown>, token = env.admin.token) =>
    call(env.app, 'POST', '/api/v1/connections', { token, body });

  it('creates a connection: credentials encrypted at rest and masked in every response', async () => {
    const r = await create({
      type: 'openai',
      name: 'main',
      base_url: env.openai.baseUrl + '/',
      api_key: UPSTREAM_KEY,
      headers: { 'X-Org': HEADER_SECRET },
    });
    expect(r.status).toBe(201);
    connId = r.body.id;
    expect(r.body).toMatchObject({
      type: 'openai',
      base_url: env.openai.baseUrl,
      api_key: '********',
      headers: { 'X-Org': '********' },
      prefix_id: null,
      model_ids: [],
      enabled: true,
    });
    for (const res of [
      r,
      await call(env.app, 'GET', '/api/v1/connections', { token: env.admin.token }),
      await call(env.app, 'GET', `/api/v1/connections/${connId}`, { token: env.admin.token }),
    ]) {
      expect(res.text).not.toContain(UPSTREAM_KEY);
      expect(res.text).not.toContain(HEADER_SECRET);
    }
    const row = await env.app.ctx.db
      .selectFrom('model_connections')
      .selectAll()
      .where('id', '=', connId)
      .executeTakeFirstOrThrow();
    expect(row.api_key_enc).toMatch(/^hsb1\./);
    expect(row.api_key_enc).not.toContain(UPSTREAM_KEY);
    expect(row.headers_enc).not.toContain(HEADER_SECRET);
    // The audit trail has the change, with the secrets masked.
    const audit = await env.app.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('resource_id', '=', connId)
      .execute();
    expect(audit.map((a) => a.action)).toContain('connection.created');
    expect(JSON.stringify(audit)).not.toContain(UPSTREAM_KEY);
    expect(JSON.stringify(audit)).not.toContain(HEADER_SECRET);
  });

  it('uses the stored credentials upstream; sending the mask back keeps them; null removes', async () => {
    const models = await call(env.app, 'GET', `/api/v1/connections/${connId}/models?refresh=true`, {
      token: env.admin.token,
    });
    expect(models.body.items.map((m: { id: string }) => m.id)).toEqual(['mock-gpt', 'mock-small']);
    const up = env.openai.requests.find((x) => x.path === '/v1/models')!;
    expect(up.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(up.headers['x-org']).toBe(HEADER_SECRET);

    const p = await call(env.app, 'PATCH', `/api/v1/connections/${connId}`, {
      token: env.admin.token,
      body: { api_key: '********', headers: { 'X-Org': '********', 'X-Extra': 'plain' }, name: 'renamed' },
    });
    expect(p.status).toBe(200);
    expect(p.body.headers).toEqual({ 'X-Org': '********', 'X-Extra': '********' });
    env.openai.reset();
    const t = await call(env.app, 'POST', `/api/v1/connections/${connId}/test`, { token: env.admin.token });
    expect(t.body).toMatchObject({ ok: true, models: 2 });
    const up2 = env.openai.requests.find((x) => x.path === '/v1/models')!;
    expect(up2.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(up2.headers['x-org']).toBe(HEADER_SECRET);
    expect(up2.headers['x-extra']).toBe('plain');

    const bad = await call(env.app, 'PATCH', `/api/v1/connections/${connId}`, {
      token: env.admin.token,
      body: { headers: { 'X-Unknown': '********' } },
    });
    expect(bad.status).toBe(400);

    const removed = await call(env.app, 'PATCH', `/api/v1/connections/${connId}`, {
      token: env.admin.token,
      body: { api_key: null },
    });
    expect(removed.body.api_key).toBeNull();
    const t2 = await call(env.app, 'POST', `/api/v1/connections/${connId}/test`, { token: env.admin.token });
    expect(t2.body.ok).toBe(false);
    expect(t2.body.error).toContain('401');
    await call(env.app, 'PATCH', `/api/v1/connections/${connId}`, {
      token: env.admin.token,
      body: { api_key: UPSTREAM_KEY },
    });
  });

  it('refuses non-admins, invalid URLs, reserved headers and bad prefixes', async () => {
    const u = await makeUser(env.app, { role: 'user' });
    expect((await create({ type: 'openai', name: 'x', base_url: env.openai.baseUrl }, u.token)).status).toBe(403);
    expect((await call(env.app, 'GET', '/api/v1/connections', { token: u.token })).status).toBe(403);
    expect((await call(env.app, 'GET', `/api/v1/connections/${connId}`, { token: u.token })).status).toBe(403);
    for (const body of [
      { type: 'openai', name: 'x', base_url: 'ftp://127.0.0.1/v1' },
      { type: 'openai', name: 'x', base_url: 'http://user:pw@127.0.0.1/v1' },
      { type: 'openai', name: 'x', base_url: 'http://127.0.0.1/v1?x=1' },
      { type: 'openai', name: 'x', base_url: env.openai.baseUrl, headers: { Host: 'evil' } },
      { type: 'openai', name: 'x', base_url: env.openai.baseUrl, headers: { 'X-A': 'a\r\nb' } },
      { type: 'openai', name: 'x', base_url: env.openai.baseUrl, prefix_id: 'a.b' },
      { type: 'other', name: 'x', base_url: env.openai.baseUrl },
      { type: 'openai', name: 'x', base_url: env.openai.baseUrl, api_key: '********' },
    ])
      expect((await create(body)).status, JSON.stringify(body)).toBe(400);
    expect((await call(env.app, 'GET', '/api/v1/connections/nope', { token: env.admin.token })).status).toBe(404);
  });

  it('discovers models with a cache; refresh asks again; prefix and allowlist shape the ids', async () => {
    await call(env.app, 'GET', '/api/models', { token: env.admin.token });
    const first = env.openai.requests.filter((r) => r.path === '/v1/models').length;
    await call(env.app, 'GET', '/api/models', { token: env.admin.token });
    expect(env.openai.requests.filter((r) => r.path === '/v1/models').length).toBe(first);
    await call(env.app, 'GET', '/api/models?refresh=true', { token: env.admin.token });
    expect(env.openai.requests.filter((r) => r.path === '/v1/models').length).toBe(first + 1);

    const other = await startOpenAIUpstream({ models: ['mock-gpt', 'only-here'] });
    try {
      const pre = await create({ type: 'openai', name: 'p', base_url: other.baseUrl, prefix_id: 'p2' });
      const allow = await create({
        type: 'openai',
        name: 'a',
        base_url: other.baseUrl,
        prefix_id: 'al',
        model_ids: ['only-here'],
      });
      const list = await call(env.app, 'GET', '/api/v1/models', { token: env.admin.token });
      const ids = list.body.data.map((m: { id: string }) => m.id);
      expect(ids).toEqual(expect.arrayContaining(['mock-gpt', 'p2.mock-gpt', 'p2.only-here', 'al.only-here']));
      expect(ids).not.toContain('al.mock-gpt');
      expect(other.requests.filter((r) => r.path === '/v1/models')).toHaveLength(1); // the allowlist is not asked
      const c = await call(env.app, 'POST', '/api/v1/chat/completions', {
        token: env.admin.token,
        body: { model: 'p2.only-here', messages: [{ role: 'user', content: 'x' }] },
      });
      expect(c.status).toBe(200);
      expect(other.requests.at(-1)!.body.model).toBe('only-here');
      for (const id of [pre.body.id, allow.body.id])
        expect((await call(env.app, 'DELETE', `/api/v1/connections/${id}`, { token: env.admin.token })).status).toBe(
          200,
        );
      const after = await call(env.app, 'GET', '/api/v1/models', { token: env.admin.token });
      expect(after.body.data.map((m: { id: string }) => m.id)).not.toContain('p2.only-here');
    } finally {
      await other.close();
    }
  });

  it('a secret that does not decrypt is an error, never the ciphertext', async () => {
    const broken = await create({
      type: 'openai',
      name: 'b',
      base_url: env.openai.baseUrl,
      api_key: 'k',
      headers: { 'X-A': 'v' },
      prefix_id: 'brk',
    });
    const row = await env.app.ctx.db
      .selectFrom('model_connections')
      .selectAll()
      .where('id', '=', broken.body.id)
      .executeTakeFirstOrThrow();
    // Move another row's ciphertext here: bound to its row, it must not open.
    const main = await env.app.ctx.db
      .selectFrom('model_connections')
      .selectAll()
      .where('id', '=', connId)
      .executeTakeFirstOrThrow();
    await env.app.ctx.db
      .updateTable('model_connections')
      .set({ headers_enc: main.headers_enc, api_key_enc: main.api_key_enc })
      .where('id', '=', broken.body.id)
      .execute();
    // Using it is an error (never the ciphertext) …
    const t = await call(env.app, 'POST', `/api/v1/connections/${broken.body.id}/test`, { token: env.admin.token });
    expect(t.status).toBe(500);
    expect(t.body.error.code).toBe('secret_unreadable');
    for (const part of [
      main.headers_enc!.split('.')[3]!,
      main.api_key_enc!.split('.')[3]!,
      row.api_key_enc!.split('.')[3]!,
    ])
      expect(t.text).not.toContain(part);
    // … the admin still sees it, flagged, so it can be repaired …
    const g = await call(env.app, 'GET', `/api/v1/connections/${broken.body.id}`, { token: env.admin.token });
    expect(g.status).toBe(200);
    expect(g.body).toMatchObject({ secrets_readable: false, api_key: '********', headers: {} });
    expect(g.text).not.toContain(main.headers_enc!.split('.')[3]!);
    const listed = await call(env.app, 'GET', '/api/v1/connections', { token: env.admin.token });
    expect(listed.status).toBe(200);
    // … the catalog skips it (logged) and keeps serving the other connections …
    await env.app.ctx.db.updateTable('model_connections').set({ updated_at: Date.now() }).execute();
    await call(env.app, 'PATCH', `/api/v1/connections/${connId}`, { token: env.admin.token, body: { name: 'main' } });
    const list = await call(env.app, 'GET', '/api/v1/models', { token: env.admin.token });
    expect(list.status).toBe(200);
    expect(list.text).not.toContain('brk.');
    // … keeping a value that does not open is refused; new values repair it.
    const keep = await call(env.app, 'PATCH', `/api/v1/connections/${broken.body.id}`, {
      token: env.admin.token,
      body: { headers: { 'X-A': '********' } },
    });
    expect(keep.status).toBe(500);
    const fixed = await call(env.app, 'PATCH', `/api/v1/connections/${broken.body.id}`, {
      token: env.admin.token,
      body: { api_key: UPSTREAM_KEY, headers: { 'X-A': 'new' } },
    });
    expect(fixed.body.secrets_readable).toBe(true);
    const models = await call(env.app, 'GET', '/api/v1/models', { token: env.admin.token });
    expect(models.text).toContain('brk.mock-gpt');
    await env.app.ctx.db.deleteFrom('model_connections').where('id', '=', broken.body.id).execute();
  });
});

describeMatrix('secret key rotation (hrida-ai keys rotate)', matrix().slice(0, 2), (b) => {
  let first: TestApp;
  afterAll(async () => first?.close());

  function rotateCli(env: Record<string, string>) {
    return spawnSync(process.execPath, ['--import', 'tsx', 'server/main.ts', 'keys', 'rotate', '--json'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
  }

  /** Another instance on the same data with other keys; signs in and tests the connection. */
  async function testWith(env: Record<string, string>, connId: string) {
    const built = await buildApp(loadConfig(env), { logger: pino({ level: 'silent' }) });
    try {
      const login = await built.app.inject({
        method: 'POST',
        url: '/api/v1/auths/signin',
        payload: { email: 'rot@example.com', password: 'correct horse battery' },
      });
      const t = await built.app.inject({
        method: 'POST',
        url: `/api/v1/connections/${connId}/test`,
        headers: { authorization: `Bearer ${login.json().token as string}` },
      });
      return { status: t.statusCode, body: t.json() as Record<string, unknown> & { error?: { code: string } } };
    } finally {
      await built.close();
    }
  }

  it('keeps working with the previous key, then re-encrypts everything under the new one', async () => {
    const upstream = await startOpenAIUpstream({ apiKey: UPSTREAM_KEY });
    try {
      first = await createTestApp(b);
      const oldSecret = first.env.HRIDAAI_SECRET_KEY!;
      const admin = await call(first, 'POST', '/api/v1/auths/signup', {
        body: { name: 'A', email: 'rot@example.com', password: 'correct horse battery' },
      });
      const c = await call(first, 'POST', '/api/v1/connections', {
        token: admin.body.token,
        body: { type: 'openai', name: 'r', base_url: upstream.baseUrl, api_key: UPSTREAM_KEY, headers: { 'X-H': 'h' } },
      });
      expect(c.status).toBe(201);
      await first.app.close();

      const newSecret = 'a-brand-new-secret-key-for-rotation-0001';
      const onlyNew = { ...first.env, HRIDAAI_SECRET_KEY: newSecret };
      const withPrevious = { ...onlyNew, HRIDAAI_SECRET_KEY_PREVIOUS: oldSecret };

      // Before rotating: the new key alone cannot open the secrets (an error, not the ciphertext) …
      const before = await testWith(onlyNew, c.body.id);
      expect(before.status).toBe(500);
      expect(before.body.error?.code).toBe('secret_unreadable');
      // … with the previous key configured, everything keeps working.
      expect((await testWith(withPrevious, c.body.id)).body).toMatchObject({ ok: true, models: 2 });

      const r = rotateCli(withPrevious);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const report = JSON.parse(r.stdout) as { columns: { column: string; rotated: number; failed: number }[] };
      expect(report.columns.find((x) => x.column === 'api_key_enc')).toMatchObject({ rotated: 1, failed: 0 });
      expect(report.columns.find((x) => x.column === 'headers_enc')).toMatchObject({ rotated: 1, failed: 0 });

      // After: the new key alone opens them, and the upstream gets the right credentials.
      upstream.reset();
      expect((await testWith(onlyNew, c.body.id)).body).toMatchObject({ ok: true, models: 2 });
      expect(upstream.requests.at(-1)!.headers['x-h']).toBe('h');
      // Nothing left to do on a second run; a key that cannot open the values reports them (exit 3).
      expect(
        JSON.parse(rotateCli(withPrevious).stdout).columns.every((x: { rotated: number }) => x.rotated === 0),
      ).toBe(true);
      const wrong = rotateCli({ ...first.env, HRIDAAI_SECRET_KEY: 'yet-another-secret-key-nobody-has-0002' });
      expect(wrong.status).toBe(3);
    } finally {
      await upstream.close();
    }
  });
});
