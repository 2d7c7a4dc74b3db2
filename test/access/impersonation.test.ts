import { decodeJwt } from 'jose';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { call, describeMatrix, makeUser, matrix } from '../harness.js';
import { createGroup, createKey, expectError, user, world, type World } from './helpers.js';

const MIN = 60_000;

describeMatrix('impersonation', matrix(), (b) => {
  let w: World;
  beforeAll(async () => {
    w = await world(b);
  });
  afterAll(async () => w?.app.close());
  afterEach(() => {
    vi.useRealTimers();
  });

  const start = (token: string, id: string, body: unknown = { reason: 'support ticket 1234' }, headers = {}) =>
    call(w.app, 'POST', `/api/v1/users/${id}/impersonate`, { token, body, headers });

  it('an admin acts as a user: the token carries both ids, limited to 30 minutes', async () => {
    const u = await user(w);
    const before = Date.now();
    const r = await start(w.admin.token, u.id);
    expect(r.status, r.text).toBe(201);
    expect(r.body).toMatchObject({ token_type: 'Bearer', impersonated_by: w.admin.id, user: { id: u.id } });
    expect(r.body.expires_at).toBeGreaterThanOrEqual(before + 30 * MIN);
    expect(r.body.expires_at).toBeLessThanOrEqual(Date.now() + 30 * MIN);
    const claims = decodeJwt(r.body.token);
    expect(claims.sub).toBe(u.id);
    expect(claims.act).toBe(w.admin.id);
    expect(claims.exp! - claims.iat!).toBe(30 * 60);

    const me = await call(w.app, 'GET', '/api/v1/auths/', { token: r.body.token });
    expect(me.body).toMatchObject({ id: u.id, impersonated_by: w.admin.id, auth_kind: 'session' });
    const perms = await call(w.app, 'GET', '/api/v1/users/me/permissions', { token: r.body.token });
    expect(perms.body).toMatchObject({ user_id: u.id, role: 'user' });

    // the user's permissions, not the admin's
    expectError(await call(w.app, 'GET', '/api/v1/users', { token: r.body.token }), 403, 'admin_required');
    expectError(await start(r.body.token, (await user(w)).id), 403, 'admin_required');

    const row = await w.app.ctx.db
      .selectFrom('impersonations')
      .selectAll()
      .where('user_id', '=', u.id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ admin_id: w.admin.id, reason: 'support ticket 1234', ended_at: null });
    const s = await w.app.ctx.db
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', row.session_id)
      .executeTakeFirstOrThrow();
    expect(s).toMatchObject({ user_id: u.id, actor_id: w.admin.id, kind: 'impersonation' });
  });

  it('records both ids in the audit trail, for the start and for actions taken meanwhile', async () => {
    const u = await user(w);
    await createGroup(w, `imp-keys-${u.id}`, { members: [u.id], permissions: { features: { api_keys: true } } });
    const k = await createKey(w, u.token);
    const r = await start(w.admin.token, u.id);
    const del = await call(w.app, 'DELETE', `/api/v1/api-keys/${k.id}`, { token: r.body.token });
    expect(del.status, del.text).toBe(200);
    const ev = async (action: string) =>
      w.app.ctx.db
        .selectFrom('audit_events')
        .select(['actor_id', 'subject_id', 'resource_id', 'details'])
        .where('action', '=', action)
        .where('subject_id', '=', u.id)
        .execute();
    expect(await ev('impersonation.started')).toEqual([
      expect.objectContaining({ actor_id: w.admin.id, subject_id: u.id, resource_id: u.id }),
    ]);
    expect((await ev('impersonation.started'))[0]!.details).toContain('support ticket 1234');
    expect(await ev('api_key.deleted')).toEqual([
      expect.objectContaining({ actor_id: w.admin.id, subject_id: u.id, resource_id: k.id }),
    ]);
  });

  it('refuses: admins (others and self), deactivated users, non-admins, API keys, no reason', async () => {
    const other = await makeUser(w.app, { role: 'admin' });
    expectError(await start(w.admin.token, other.user.id), 403, 'cannot_impersonate');
    expectError(await start(w.admin.token, w.admin.id), 403, 'cannot_impersonate');
    const off = await makeUser(w.app, { active: false });
    expectError(await start(w.admin.token, off.user.id), 403, 'cannot_impersonate');
    const u = await user(w);
    const v = await user(w);
    expectError(await start(u.token, v.id), 403, 'admin_required');
    const key = await createKey(w, w.admin.token);
    expectError(await start(key.key, u.id), 403, 'session_required');
    expectError(await start(w.admin.token, u.id, {}), 400, 'validation_failed');
    expectError(await start(w.admin.token, u.id, { reason: '  ' }), 400, 'validation_failed');
    expectError(await start(w.admin.token, u.id, { reason: 'ok go', role: 'admin' }), 400, 'validation_failed');
    expectError(await start(w.admin.token, '00000000-0000-0000-0000-000000000000'), 404, 'not_found');
  });

  it('expires after 30 minutes', async () => {
    const u = await user(w);
    const r = await start(w.admin.token, u.id);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 29 * MIN);
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: r.body.token })).status).toBe(200);
    vi.setSystemTime(Date.now() + 2 * MIN);
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: r.body.token }), 401, 'token_expired');
    // the admin's own session is unaffected by the limit
    vi.useRealTimers();
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: w.admin.token })).status).toBe(200);
  });

  it('ending it revokes the impersonation token and, for a browser, restores the admin cookie', async () => {
    const u = await user(w);
    // Bearer client: it still has its own token.
    const r = await start(w.admin.token, u.id);
    const end = await call(w.app, 'POST', '/api/v1/auths/impersonation/end', { token: r.body.token });
    expect(end.status, end.text).toBe(200);
    expect(end.body).toEqual({ status: 'ended', restored: false, admin_id: w.admin.id });
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: r.body.token }), 401, 'session_revoked');
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: w.admin.token })).status).toBe(200);
    const row = await w.app.ctx.db
      .selectFrom('impersonations')
      .select(['ended_at'])
      .where('session_id', '=', decodeJwt(r.body.token).sid as string)
      .executeTakeFirstOrThrow();
    expect(row.ended_at).not.toBeNull();

    // Browser: the admin cookie is parked on a path only the end route sees, then put back.
    const c = await call(w.app, 'POST', `/api/v1/users/${u.id}/impersonate`, {
      cookie: w.admin.token,
      body: { reason: 'browser support' },
    });
    expect(c.status, c.text).toBe(201);
    expect(c.cookies.token).toBe(c.body.token);
    expect(c.cookies.hridaai_admin_token).toBe(w.admin.token);
    const parked = ([] as string[])
      .concat(c.headers['set-cookie'] as string[])
      .find((x) => x.startsWith('hridaai_admin_token='))!;
    expect(parked).toMatch(/Path=\/api\/v1\/auths\/impersonation/);
    expect(parked).toMatch(/HttpOnly/);
    const e = await call(w.app, 'POST', '/api/v1/auths/impersonation/end', {
      headers: { cookie: `token=${c.body.token}; hridaai_admin_token=${w.admin.token}` },
    });
    expect(e.status, e.text).toBe(200);
    expect(e.body.restored).toBe(true);
    expect(e.cookies.token).toBe(w.admin.token);
    // A forged parked cookie (another user's token) is not restored.
    const c2 = await start(w.admin.token, u.id);
    const e2 = await call(w.app, 'POST', '/api/v1/auths/impersonation/end', {
      headers: { cookie: `token=${c2.body.token}; hridaai_admin_token=${u.token}` },
    });
    expect(e2.body.restored).toBe(false);
    expect(e2.cookies.token).toBe('');
  });

  it('ending a normal session is refused', async () => {
    expectError(
      await call(w.app, 'POST', '/api/v1/auths/impersonation/end', { token: w.admin.token }),
      409,
      'not_impersonating',
    );
  });

  it('stops at once when the impersonating admin is demoted or deactivated', async () => {
    const second = await makeUser(w.app, { role: 'admin' });
    const u = await user(w);
    const r = await start(second.token, u.id);
    expect(r.status).toBe(201);
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: r.body.token })).status).toBe(200);
    expect(
      (await call(w.app, 'PATCH', `/api/v1/users/${second.user.id}`, { token: w.admin.token, body: { role: 'user' } }))
        .status,
    ).toBe(200);
    expectError(await call(w.app, 'GET', '/api/v1/auths/', { token: r.body.token }), 401, 'session_revoked');
  });
});
