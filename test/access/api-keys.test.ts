import { createHash, createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resourceType, registerResourceType } from '../../server/modules/access/index.js';
import { normaliseRequestPath, pathAllowed } from '../../server/modules/api-keys/restrictions.js';
import { call, createTestApp, describeMatrix, matrix, sleep, type TestApp } from '../harness.js';
import { createGroup, createKey, expectError, rawGet, user, world, type World } from './helpers.js';

if (!resourceType('model')) registerResourceType({ type: 'model', workspacePermission: 'workspace.models' });

const KEY_RE = /^sk-[0-9a-f]{16}[A-Za-z0-9_-]{43}$/;

describe('endpoint path normalisation (unit)', () => {
  it('refuses path tricks and normalises the rest', () => {
    expect(normaliseRequestPath('/api/v1/models')).toBe('/api/v1/models');
    expect(normaliseRequestPath('/api/v1/models/')).toBe('/api/v1/models');
    expect(normaliseRequestPath('/API/V1/Models?x=/api/v1/users')).toBe('/api/v1/models');
    expect(normaliseRequestPath('/api/v1/%75sers')).toBe('/api/v1/users');
    for (const bad of [
      '/api/v1/models/../users',
      '/api/v1/models/./x',
      '/api/v1/models/%2e%2e/users',
      '/api/v1/models%2F..%2Fusers',
      '/api/v1/models%2fx',
      '/api/v1//users',
      '/api/v1/models\\..\\users',
      '/api/v1/models%5c..',
      '/api/v1/models;/../users',
      '/api/v1/models%00',
      '/api/v1/%E0%A4%A',
      'api/v1/models',
    ])
      expect(normaliseRequestPath(bad), bad).toBeNull();
  });

  it('matches an entry exactly or as a prefix followed by /', () => {
    const list = ['/api/v1/models', '/api/chat/completions'];
    expect(pathAllowed('/api/v1/models', list)).toBe(true);
    expect(pathAllowed('/api/v1/models/gpt', list)).toBe(true);
    expect(pathAllowed('/api/v1/modelsx', list)).toBe(false);
    expect(pathAllowed('/api/v1', list)).toBe(false);
    expect(pathAllowed('/api/chat/completions', list)).toBe(true);
    expect(pathAllowed('/anything', [])).toBe(false);
  });
});

describeMatrix('API keys', matrix(), (b) => {
  let w: World;
  beforeAll(async () => {
    w = await world(b);
  });
  afterAll(async () => w?.app.close());

  it('creates a key shown once, stored only as a peppered HMAC', async () => {
    const k = await createKey(w, w.admin.token, { name: 'ci' });
    expect(k.key).toMatch(KEY_RE);
    expect(k.id).toBe(k.key.slice(3, 19));
    const me = await call(w.app, 'GET', '/api/v1/auths/', { token: k.key });
    expect(me.status, me.text).toBe(200);
    expect(me.body).toMatchObject({ id: w.admin.id, auth_kind: 'api-key', impersonated_by: null });

    const row = await w.app.ctx.db.selectFrom('api_keys').selectAll().where('id', '=', k.id).executeTakeFirstOrThrow();
    const secret = k.key.slice(19);
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(row.hash).not.toBe(createHash('sha256').update(k.key).digest('hex'));
    const pepper = w.app.ctx.keyring.current.derive('api-key-pepper');
    expect(row.hash).toBe(createHmac('sha256', pepper).update(k.key).digest('hex'));

    await sleep(50); // last use is written off the request path
    const list = await call(w.app, 'GET', '/api/v1/api-keys', { token: w.admin.token });
    expect(list.status).toBe(200);
    expect(list.body.items.find((i: { id: string }) => i.id === k.id).last_used_at).toBeGreaterThan(0);
    expect(list.text).not.toContain(secret);
    expect(list.text).not.toContain(row.hash);
    const item = list.body.items.find((i: { id: string }) => i.id === k.id);
    expect(Object.keys(item).sort()).toEqual(
      [
        'allowed_endpoints',
        'allowed_models',
        'created_at',
        'expires_at',
        'hint',
        'id',
        'last_used_at',
        'name',
        'prefix',
        'rotated_at',
        'updated_at',
      ].sort(),
    );
  });

  it('a key has its owner’s permissions: admin routes accept an admin key, refuse a user key', async () => {
    const admKey = await createKey(w, w.admin.token);
    expect((await call(w.app, 'GET', '/api/v1/users', { token: admKey.key })).status).toBe(200);
    // A user with the api-keys permission through a group
    const u = await user(w);
    await createGroup(w, `keys-${u.id}`, { members: [u.id], permissions: { features: { api_keys: true } } });
    const uk = await createKey(w, u.token);
    expectError(await call(w.app, 'GET', '/api/v1/users', { token: uk.key }), 403, 'admin_required');
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: uk.key })).body.id).toBe(u.id);
  });

  it('routes that need a session refuse keys; keys are not accepted from a cookie', async () => {
    const k = await createKey(w, w.admin.token);
    expectError(
      await call(w.app, 'POST', '/api/v1/api-keys', { token: k.key, body: { name: 'x' } }),
      403,
      'session_required',
    );
    expectError(await call(w.app, 'GET', '/api/v1/api-keys', { token: k.key }), 403, 'session_required');
    expectError(await call(w.app, 'GET', '/api/v1/auths/sessions', { token: k.key }), 403, 'session_required');
    expectError(
      await call(w.app, 'POST', `/api/v1/api-keys/${k.id}/rotate`, { token: k.key }),
      403,
      'session_required',
    );
    expectError(await call(w.app, 'DELETE', `/api/v1/api-keys/${k.id}`, { token: k.key }), 403, 'session_required');
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { cookie: k.key }), 401, 'api_key_invalid');
  });

  it('users need the api-keys permission (default off)', async () => {
    const u = await user(w);
    expectError(
      await call(w.app, 'POST', '/api/v1/api-keys', { token: u.token, body: { name: 'x' } }),
      403,
      'permission_required',
    );
    const p = await call(w.app, 'GET', '/api/v1/users/me/permissions', { token: u.token });
    expect(p.body.permissions.features.api_keys).toBe(false);
  });

  it('refuses invalid keys: wrong secret, unknown id, malformed — also when repeated', async () => {
    const k = await createKey(w, w.admin.token);
    const wrongSecret = k.key.slice(0, 19) + (k.key[19] === 'A' ? 'B' : 'A') + k.key.slice(20);
    const unknownId = 'sk-0123456789abcdef' + k.key.slice(19);
    for (const bad of [
      wrongSecret,
      unknownId,
      'sk-abc',
      'sk-' + 'x'.repeat(59),
      k.key + 'x',
      'sk-' + k.key.slice(3).toUpperCase(),
    ])
      for (let i = 0; i < 2; i++)
        expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: bad }), 401, 'api_key_invalid');
    // Not a key at all (prefix case differs): treated as a session token and refused.
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: k.key.toUpperCase() })).status).toBe(401);
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: k.key })).status).toBe(200);
  });

  it('mass assignment: user_id, role, owner in the body are refused', async () => {
    const u = await user(w);
    for (const extra of [{ user_id: u.id }, { role: 'admin' }, { owner: u.id }, { id: 'sk-own' }, { key: 'sk-x' }])
      expectError(
        await call(w.app, 'POST', '/api/v1/api-keys', { token: w.admin.token, body: { name: 'x', ...extra } }),
        400,
        'validation_failed',
      );
    expectError(
      await call(w.app, 'POST', '/api/v1/api-keys', {
        token: w.admin.token,
        body: { name: 'x', expires_at: Date.now() - 1000 },
      }),
      400,
      'validation_failed',
    );
    expectError(
      await call(w.app, 'POST', '/api/v1/api-keys', {
        token: w.admin.token,
        body: { name: 'x', allowed_endpoints: ['/api/v1/../users'] },
      }),
      400,
      'validation_failed',
    );
  });

  it('delete revokes at once; another user’s key id is 404 and keeps working', async () => {
    const k = await createKey(w, w.admin.token);
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: k.key })).status).toBe(200); // cached now
    const u = await user(w);
    expectError(await call(w.app, 'DELETE', `/api/v1/api-keys/${k.id}`, { token: u.token }), 404, 'not_found');
    expectError(await call(w.app, 'POST', `/api/v1/api-keys/${k.id}/rotate`, { token: u.token }), 404, 'not_found');
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: k.key })).status).toBe(200);
    expect((await call(w.app, 'DELETE', `/api/v1/api-keys/${k.id}`, { token: w.admin.token })).status).toBe(200);
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: k.key }), 401, 'api_key_invalid');
    expectError(await call(w.app, 'DELETE', `/api/v1/api-keys/${k.id}`, { token: w.admin.token }), 404, 'not_found');
  });

  it('rotate: the new key works, the old one stops at once', async () => {
    const k = await createKey(w, w.admin.token, { name: 'rot' });
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: k.key })).status).toBe(200);
    const r = await call(w.app, 'POST', `/api/v1/api-keys/${k.id}/rotate`, { token: w.admin.token });
    expect(r.status, r.text).toBe(200);
    expect(r.body.key).toMatch(KEY_RE);
    expect(r.body.key).not.toBe(k.key);
    expect(r.body.id).toBe(k.id);
    expect(r.body.name).toBe('rot');
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: k.key }), 401, 'api_key_invalid');
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: r.body.key })).status).toBe(200);
  });

  it('expiry is enforced', async () => {
    const k = await createKey(w, w.admin.token, { expires_at: Date.now() + 1200 });
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: k.key })).status).toBe(200);
    await sleep(1300);
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: k.key }), 401, 'api_key_expired');
  });

  it('owner deactivated, made pending, demoted or deleted: keys stop at once', async () => {
    const u = await user(w);
    await createGroup(w, `keys2-${u.id}`, { members: [u.id], permissions: { features: { api_keys: true } } });
    const k = await createKey(w, u.token);
    const ok = async () => expect((await call(w.app, 'GET', '/api/v1/auths/', { token: k.key })).status).toBe(200);
    const patch = (body: unknown) => call(w.app, 'PATCH', `/api/v1/users/${u.id}`, { token: w.admin.token, body });
    await ok();
    await ok();
    expect((await patch({ active: false })).status).toBe(200);
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: k.key }), 403, 'account_inactive');
    expect((await patch({ active: true })).status).toBe(200);
    await ok();
    expect((await patch({ role: 'pending' })).status).toBe(200);
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: k.key }), 403, 'account_pending');
    expect((await patch({ role: 'admin' })).status).toBe(200);
    expect((await call(w.app, 'GET', '/api/v1/users', { token: k.key })).status).toBe(200);
    expect((await patch({ role: 'user' })).status).toBe(200);
    expectError(await call(w.app, 'GET', '/api/v1/users', { token: k.key }), 403, 'admin_required');
    expect((await call(w.app, 'DELETE', `/api/v1/users/${u.id}`, { token: w.admin.token })).status).toBe(200);
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: k.key }), 401, 'api_key_invalid');
  });

  it('losing the api-keys permission (removed from the group) stops the keys at once', async () => {
    const u = await user(w);
    const g = await createGroup(w, `keys3-${u.id}`, { members: [u.id], permissions: { features: { api_keys: true } } });
    const k = await createKey(w, u.token);
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: k.key })).status).toBe(200);
    expect((await call(w.app, 'DELETE', `/api/v1/groups/${g}/members/${u.id}`, { token: w.admin.token })).status).toBe(
      200,
    );
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: k.key }), 403, 'permission_required');
  });

  it('a key’s model allowlist narrows what it may use', async () => {
    const k = await createKey(w, w.admin.token, { allowed_models: ['m-allowed'] });
    const open = await createKey(w, w.admin.token);
    // admin + bypass: every model readable, except outside the key's allowlist
    expect((await call(w.app, 'GET', '/api/v1/access/model/m-allowed', { token: k.key })).status).toBe(200);
    expectError(await call(w.app, 'GET', '/api/v1/access/model/m-other', { token: k.key }), 404, 'not_found');
    expect((await call(w.app, 'GET', '/api/v1/access/model/m-other', { token: open.key })).status).toBe(200);
    expect((await call(w.app, 'GET', '/api/v1/access/model/m-other', { token: w.admin.token })).status).toBe(200);
  });

  it('per-key endpoint allowlist (without the server-wide restriction)', async () => {
    const k = await createKey(w, w.admin.token, { allowed_endpoints: ['/api/v1/users/me/', '/API/v1/Auths'] });
    const list = await call(w.app, 'GET', '/api/v1/api-keys', { token: w.admin.token });
    expect(list.body.items.find((i: { id: string }) => i.id === k.id).allowed_endpoints).toEqual([
      '/api/v1/users/me',
      '/api/v1/auths',
    ]);
    expect((await call(w.app, 'GET', '/api/v1/users/me/permissions', { token: k.key })).status).toBe(200);
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: k.key })).status).toBe(200);
    expectError(await call(w.app, 'GET', '/api/v1/users', { token: k.key }), 403, 'api_key_endpoint_forbidden');
    expectError(await call(w.app, 'GET', '/api/v1/%75sers', { token: k.key }), 403, 'api_key_endpoint_forbidden');
    expectError(await call(w.app, 'GET', '/api/v1/users/', { token: k.key }), 403, 'api_key_endpoint_forbidden');
    expectError(await call(w.app, 'GET', '/api/v1/groups', { token: k.key }), 403, 'api_key_endpoint_forbidden');
  });

  it('per-key allowlist: a `..` segment that a naive prefix check would pass is refused', async () => {
    // `/api/v1/users/../sessions` starts with `/api/v1/users/` and routes to /api/v1/users/:id/sessions.
    const k = await createKey(w, w.admin.token, { allowed_endpoints: ['/api/v1/users'] });
    const r = await rawGet(w.app, '/api/v1/users/../sessions', k.key);
    expect(r.status, r.body).toBe(403);
    expect(JSON.parse(r.body).error.code).toBe('api_key_endpoint_forbidden');
    const dot = await rawGet(w.app, '/api/v1/users/./sessions', k.key);
    expect(dot.status, dot.body).toBe(403);
    expect((await rawGet(w.app, `/api/v1/users/${w.admin.id}/sessions`, k.key)).status).toBe(200);
  });

  it('impersonating admins cannot mint keys for the user', async () => {
    const u = await user(w);
    const imp = await call(w.app, 'POST', `/api/v1/users/${u.id}/impersonate`, {
      token: w.admin.token,
      body: { reason: 'support ticket 42' },
    });
    expect(imp.status, imp.text).toBe(201);
    expectError(
      await call(w.app, 'POST', '/api/v1/api-keys', { token: imp.body.token, body: { name: 'x' } }),
      403,
      'forbidden',
    );
  });

  if (b.redis)
    it('with Redis, a deactivation on one instance stops the key on another at once', async () => {
      const second = await createTestApp(b, { shareWith: w.app });
      try {
        const u = await user(w);
        await createGroup(w, `keys4-${u.id}`, { members: [u.id], permissions: { features: { api_keys: true } } });
        const k = await createKey(w, u.token);
        expect((await call(second, 'GET', '/api/v1/auths/', { token: k.key })).status).toBe(200);
        const r = await call(w.app, 'PATCH', `/api/v1/users/${u.id}`, {
          token: w.admin.token,
          body: { active: false },
        });
        expect(r.status).toBe(200);
        await sleep(100); // pub/sub delivery
        expectError(await call(second, 'GET', '/api/v1/auths/', { token: k.key }), 403, 'account_inactive');
        const k2 = await createKey(w, w.admin.token);
        expect((await call(second, 'GET', '/api/v1/auths/', { token: k2.key })).status).toBe(200);
        expect((await call(w.app, 'DELETE', `/api/v1/api-keys/${k2.id}`, { token: w.admin.token })).status).toBe(200);
        await sleep(100);
        expectError(await call(second, 'GET', '/api/v1/auths/', { token: k2.key }), 401, 'api_key_invalid');
      } finally {
        await second.close();
      }
    });
});

describeMatrix('API keys: server settings', matrix(), (b) => {
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const a of apps.reverse()) await a.close();
  });

  it('ENABLE_API_KEYS=false: nobody can create or use a key', async () => {
    const w = await world(b);
    apps.push(w.app);
    const k = await createKey(w, w.admin.token);
    const off = await createTestApp(b, { shareWith: w.app, env: { ENABLE_API_KEYS: 'false' } });
    apps.push(off);
    expectError(await call(off, 'GET', '/api/v1/auths/', { token: k.key }), 403, 'api_keys_disabled');
    expectError(
      await call(off, 'POST', '/api/v1/api-keys', { token: w.admin.token, body: { name: 'x' } }),
      403,
      'api_keys_disabled',
    );
  });

  it('USER_PERMISSIONS_FEATURES_API_KEYS=true lets every user create keys', async () => {
    const w = await world(b, { USER_PERMISSIONS_FEATURES_API_KEYS: 'true' });
    apps.push(w.app);
    const u = await user(w);
    const k = await createKey(w, u.token);
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: k.key })).body.id).toBe(u.id);
    const p = await user(w, 'pending');
    expectError(
      await call(w.app, 'POST', '/api/v1/api-keys', { token: p.token, body: { name: 'x' } }),
      403,
      'account_pending',
    );
  });

  it('secret-key rotation: keys made under the previous key keep working and are re-hashed', async () => {
    const w = await world(b);
    apps.push(w.app);
    const k = await createKey(w, w.admin.token);
    const oldSecret = w.app.shared.secret;
    const rotated = await createTestApp(b, {
      shareWith: w.app,
      env: { HRIDAAI_SECRET_KEY: 'a-brand-new-secret-key-0123456789', HRIDAAI_SECRET_KEY_PREVIOUS: oldSecret },
    });
    apps.push(rotated);
    expect((await call(rotated, 'GET', '/api/v1/auths/', { token: k.key })).status).toBe(200);
    const row = await rotated.ctx.db
      .selectFrom('api_keys')
      .selectAll()
      .where('id', '=', k.id)
      .executeTakeFirstOrThrow();
    expect(row.pepper_kid).toBe(rotated.ctx.keyring.current.kid);
    const forgotten = await createTestApp(b, {
      shareWith: w.app,
      env: { HRIDAAI_SECRET_KEY: 'yet-another-secret-key-0123456789' },
    });
    apps.push(forgotten);
    expectError(await call(forgotten, 'GET', '/api/v1/auths/', { token: k.key }), 401, 'api_key_invalid');
  });

  it('server-wide endpoint restrictions apply to every key, with path tricks refused', async () => {
    const w = await world(b, {
      ENABLE_API_KEYS_ENDPOINT_RESTRICTIONS: 'true',
      API_KEYS_ALLOWED_ENDPOINTS: '/api/v1/auths, /api/v1/users/me/',
    });
    apps.push(w.app);
    const k = await createKey(w, w.admin.token);
    const ok = async (url: string) => expect((await call(w.app, 'GET', url, { token: k.key })).status, url).toBe(200);
    const no = async (url: string) =>
      expectError(await call(w.app, 'GET', url, { token: k.key }), 403, 'api_key_endpoint_forbidden');
    await ok('/api/v1/auths/');
    await ok('/api/v1/users/me/permissions');
    await ok('/api/v1/users/me/permissions?x=/api/v1/users');
    // Never 200: a trick either matches no route (404) or is refused before the handler (403).
    const blocked = async (url: string) => {
      const r = await call(w.app, 'GET', url, { token: k.key });
      expect([403, 404], `${url} → ${r.status}`).toContain(r.status);
      expect(r.text).not.toContain(w.admin.id);
    };
    for (const t of [
      '/api/v1/auths%2F..%2Fusers',
      '/api/v1/auths%2f..%2fusers',
      '/api/v1//users',
      '/api/v1/auths/;/../../users',
    ])
      await blocked(t);
    await no('/api/v1/users');
    await no('/api/v1/users/');
    // A case variant never reaches the users route (routes are case-sensitive; the check is not).
    const upper = await call(w.app, 'GET', '/API/V1/USERS', { token: k.key });
    expect(upper.body?.items).toBeUndefined();
    expect(upper.text).not.toContain(w.admin.id);
    await no('/api/v1/%75sers');
    await no('/api/v1/users/meuser'); // /api/v1/users/me is allowed, /api/v1/users/meuser is not
    await no('/api/v1/users/me%2Fpermissions');
    await no('/api/v1/permissions/matrix');
    // Sessions are not affected by key restrictions.
    expect((await call(w.app, 'GET', '/api/v1/users', { token: w.admin.token })).status).toBe(200);

    // A per-key list narrows further (intersection).
    const narrow = await createKey(w, w.admin.token, {
      allowed_endpoints: ['/api/v1/users/me/permissions', '/api/v1/users'],
    });
    expect((await call(w.app, 'GET', '/api/v1/users/me/permissions', { token: narrow.key })).status).toBe(200);
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: narrow.key }), 403, 'api_key_endpoint_forbidden');
    expectError(await call(w.app, 'GET', '/api/v1/users', { token: narrow.key }), 403, 'api_key_endpoint_forbidden');

    // Over a real socket, `..` reaches the server unresolved: still never served.
    expect((await rawGet(w.app, '/api/v1/auths/', k.key)).status).toBe(200);
    for (const p of [
      '/api/v1/auths/../users',
      '/api/v1/users/me/../../users',
      '/api/v1/auths/./../users',
      '/api/v1/auths/%2e%2e/users',
    ]) {
      const r = await rawGet(w.app, p, k.key);
      expect([403, 404], `${p} → ${r.status}`).toContain(r.status);
      expect(r.body).not.toContain(w.admin.id);
    }
  });

  it('restrictions on with an empty list refuse every key request', async () => {
    const w = await world(b, { ENABLE_API_KEYS_ENDPOINT_RESTRICTIONS: 'true' });
    apps.push(w.app);
    const k = await createKey(w, w.admin.token);
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: k.key }), 403, 'api_key_endpoint_forbidden');
  });
});

describe('failure auditing during a flood (unit)', () => {
  it('writes the first failures of a window one by one, then one summary', async () => {
    const { FailureAudit, FAILURES_PER_WINDOW, FAILURE_WINDOW_MS } =
      await import('../../server/modules/api-keys/service.js');
    const written: { reason?: string; ip?: string | null }[] = [];
    const fa = new FailureAudit({ audit: { auth: (e: never) => written.push(e), record: async () => {} } as never });
    const t0 = 1_000_000;
    for (let i = 0; i < FAILURES_PER_WINDOW + 50; i++)
      fa.report(
        { action: 'auth.failure', result: 'failure', method: 'api_key', reason: 'api_key_invalid', ip: '10.0.0.1' },
        t0 + i,
      );
    fa.report(
      { action: 'auth.failure', result: 'failure', method: 'api_key', reason: 'api_key_invalid', ip: '10.0.0.2' },
      t0 + 5,
    );
    expect(written).toHaveLength(FAILURES_PER_WINDOW + 1);
    fa.flush(t0 + FAILURE_WINDOW_MS + 1);
    expect(written).toHaveLength(FAILURES_PER_WINDOW + 2);
    expect(written.at(-1)!.reason).toContain('50 more');
    expect(written.at(-1)!.ip).toBe('10.0.0.1');
  });
});
