import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { hashEntry, verifyChain } from '../../server/platform/audit/chain.js';
import { DAY_MS } from '../../server/platform/audit/retention.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';
import { pipeline, trail } from './helpers.js';

const PASSWORD = 'Tr0ub4dor&3-trail-pw';

/** Drops the append-only triggers, as someone with direct database access could. */
async function dropGuards(app: TestApp) {
  if (app.ctx.dbKind === 'postgresql') {
    await sql`drop trigger audit_events_guard on audit_events`.execute(app.ctx.db);
    await sql`drop trigger audit_events_no_truncate on audit_events`.execute(app.ctx.db);
  } else {
    await sql`drop trigger audit_events_no_update`.execute(app.ctx.db);
    await sql`drop trigger audit_events_no_delete`.execute(app.ctx.db);
  }
}

describeMatrix('audit trail: domain and authentication events', matrix(), (b) => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof signup>>;
  beforeAll(async () => {
    app = await createTestApp(b);
    admin = await signup(app, undefined, PASSWORD);
  });
  afterAll(async () => app?.close());

  async function last(action: string) {
    await app.ctx.audit.flush();
    const rows = await trail(app, action);
    return rows[rows.length - 1];
  }

  it('sign-up records user.created and auth.signup in the same transaction as the account', async () => {
    const created = (await trail(app, 'user.created')).find((r) => r.resource_id === admin.user.id)!;
    expect(created).toMatchObject({ actor_id: admin.user.id, resource_type: 'user', result: 'success' });
    expect(JSON.parse(created.after!)).toEqual({ email: admin.user.email, name: 'Test', role: 'admin' });
    const su = (await trail(app, 'auth.signup'))[0]!;
    expect(su).toMatchObject({
      actor_id: admin.user.id,
      subject_id: admin.user.id,
      ip: '127.0.0.1',
      result: 'success',
    });
    expect(su.request_id).toBe(created.request_id);
    expect(JSON.parse(su.details!)).toMatchObject({ method: 'password', email: admin.user.email });
  });

  it('sign-in success and failure, sign-out and failed tokens are recorded', async () => {
    const ok = await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email: admin.user.email, password: PASSWORD },
      headers: { 'user-agent': 'trail-test' },
    });
    expect(ok.status).toBe(200);
    const si = (await last('auth.signin'))!;
    expect(si).toMatchObject({ actor_id: admin.user.id, result: 'success', request_id: ok.headers['x-request-id'] });
    expect(JSON.parse(si.details!)).toMatchObject({ method: 'password', user_agent: 'trail-test' });

    const bad = await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email: admin.user.email, password: 'nope' },
    });
    expect(bad.status).toBe(401);
    const f = (await last('auth.failure'))!;
    expect(f).toMatchObject({ actor_id: null, subject_id: admin.user.id, result: 'failure' });
    expect(JSON.parse(f.details!)).toMatchObject({ method: 'password', reason: 'invalid_credentials' });
    expect(f.details).not.toContain('nope');

    const unknown = await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email: 'nobody@example.com', password: 'x' },
    });
    expect(unknown.status).toBe(401);
    expect(JSON.parse((await last('auth.failure'))!.details!)).toMatchObject({ email: 'nobody@example.com' });

    for (const token of ['garbage', ok.body.token + 'x']) {
      const r = await call(app, 'GET', '/api/v1/auths/', { token });
      expect(r.status).toBe(401);
      const t = (await last('auth.failure'))!;
      expect(t.request_id).toBe(r.headers['x-request-id']);
      expect(JSON.parse(t.details!)).toMatchObject({ method: 'token', reason: r.body.error.code });
    }

    const out = await call(app, 'POST', '/api/v1/auths/signout', { token: ok.body.token });
    expect(out.status).toBe(200);
    expect((await last('auth.signout'))!).toMatchObject({
      actor_id: admin.user.id,
      request_id: out.headers['x-request-id'],
    });
    const revoked = await call(app, 'GET', '/api/v1/auths/', { token: ok.body.token });
    expect(revoked.status).toBe(401);
    expect(JSON.parse((await last('auth.failure'))!.details!)).toMatchObject({ reason: 'session_revoked' });
  });

  it('user role change, approval, (de)activation, rename and deletion carry actor, before and after', async () => {
    const { user } = await makeUser(app, { role: 'pending' });
    const patch = (body: object) => call(app, 'PATCH', `/api/v1/users/${user.id}`, { token: admin.token, body });
    expect((await patch({ role: 'user' })).status).toBe(200);
    const approved = (await last('user.approved'))!;
    expect(approved).toMatchObject({ actor_id: admin.user.id, subject_id: admin.user.id, resource_id: user.id });
    expect(JSON.parse(approved.before!)).toEqual({ role: 'pending' });
    expect(JSON.parse(approved.after!)).toEqual({ role: 'user' });
    const revokedAll = (await last('session.revoked_all'))!;
    expect(JSON.parse(revokedAll.details!)).toEqual({ reason: 'role_changed', count: 1 });
    expect(revokedAll.request_id).toBe(approved.request_id);

    await patch({ role: 'admin' });
    expect(JSON.parse((await last('user.role_changed'))!.after!)).toEqual({ role: 'admin' });
    await patch({ active: false });
    expect(JSON.parse((await last('user.deactivated'))!.after!)).toEqual({ active: false });
    await patch({ active: true, name: 'New Name' });
    expect(JSON.parse((await last('user.activated'))!.after!)).toEqual({ active: true });
    expect(JSON.parse((await last('user.updated'))!.after!)).toEqual({ name: 'New Name' });

    const del = await call(app, 'DELETE', `/api/v1/users/${user.id}`, { token: admin.token });
    expect(del.status).toBe(200);
    const d = (await last('user.deleted'))!;
    expect(JSON.parse(d.before!)).toMatchObject({ email: user.email, role: 'admin', active: true });
  });

  it('session revocations by the user and by an admin are recorded', async () => {
    const u = await makeUser(app, { password: PASSWORD });
    const second = await app.ctx.sessions.create(app.ctx.db, {
      userId: u.user.id,
      kind: 'password',
      ip: null,
      userAgent: null,
    });
    const mine = await call(app, 'DELETE', `/api/v1/auths/sessions/${second.session.id}`, { token: u.token });
    expect(mine.status).toBe(200);
    expect((await last('session.revoked'))!).toMatchObject({ actor_id: u.user.id, resource_id: second.session.id });
    // someone else's session: 404 and nothing recorded
    const before = (await trail(app)).length;
    const other = await call(app, 'DELETE', `/api/v1/auths/sessions/${second.session.id}`, { token: admin.token });
    expect(other.status).toBe(404);
    const third = await app.ctx.sessions.create(app.ctx.db, {
      userId: u.user.id,
      kind: 'password',
      ip: null,
      userAgent: null,
    });
    const one = await call(app, 'DELETE', `/api/v1/users/${u.user.id}/sessions/${third.session.id}`, {
      token: admin.token,
    });
    expect(one.status).toBe(200);
    const all = await call(app, 'DELETE', `/api/v1/users/${u.user.id}/sessions`, { token: admin.token });
    expect(all.body.count).toBe(1);
    await app.ctx.audit.flush();
    const rows = (await trail(app)).slice(before);
    expect(rows.map((r) => r.action)).toEqual(['session.revoked', 'session.revoked_all']);
    expect(JSON.parse(rows[1]!.details!)).toEqual({ reason: 'revoked_by_admin', count: 1 });
  });

  it('password change records the change; a wrong current password is a failed authentication', async () => {
    const u = await makeUser(app, { password: PASSWORD });
    const wrong = await call(app, 'POST', '/api/v1/auths/update/password', {
      token: u.token,
      body: { password: 'wrong', new_password: 'another-long-pw' },
    });
    expect(wrong.status).toBe(401);
    expect((await last('auth.failure'))!).toMatchObject({
      subject_id: u.user.id,
      request_id: wrong.headers['x-request-id'],
    });
    const ok = await call(app, 'POST', '/api/v1/auths/update/password', {
      token: u.token,
      body: { password: PASSWORD, new_password: 'another-long-pw' },
    });
    expect(ok.status).toBe(200);
    const ev = (await last('user.password_changed'))!;
    expect(ev).toMatchObject({ actor_id: u.user.id, resource_id: u.user.id });
    const all = JSON.stringify(await trail(app));
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain('another-long-pw');
  });

  it('impersonation: the admin is the actor, the user the subject', async () => {
    const u = await makeUser(app);
    const { token } = await app.ctx.sessions.create(app.ctx.db, {
      userId: u.user.id,
      actorId: admin.user.id,
      kind: 'impersonation',
      ip: null,
      userAgent: null,
    });
    const r = await call(app, 'POST', '/api/v1/auths/update/profile', { token, body: { name: 'As Them' } });
    expect(r.status, r.text).toBe(200);
    expect((await last('user.updated'))!).toMatchObject({
      actor_id: admin.user.id,
      subject_id: u.user.id,
      resource_id: u.user.id,
    });
  });

  it('a failed mutation leaves no event; a committed one exactly one', async () => {
    const count = async () => (await trail(app)).length;
    // the last admin cannot be demoted: 409, nothing recorded
    const n0 = await count();
    const r = await call(app, 'PATCH', `/api/v1/users/${admin.user.id}`, {
      token: admin.token,
      body: { role: 'user' },
    });
    expect(r.status).toBe(409);
    expect(await count()).toBe(n0);
    // an event recorded inside a transaction that then fails disappears with the change
    const u = await makeUser(app);
    await expect(
      app.ctx.db.transaction().execute(async (trx) => {
        await trx.updateTable('users').set({ name: 'rolled back' }).where('id', '=', u.user.id).execute();
        await app.ctx.audit.record(trx, {
          action: 'user.updated',
          actorId: admin.user.id,
          resourceType: 'user',
          resourceId: u.user.id,
          after: { name: 'rolled back' },
        });
        throw new Error('boom after the audit event');
      }),
    ).rejects.toThrow('boom');
    expect(await count()).toBe(n0);
    const head = await app.ctx.db.selectFrom('audit_chain').selectAll().executeTakeFirstOrThrow();
    expect(Number(head.seq)).toBe(Number((await trail(app)).at(-1)!.seq));
    // committed: exactly one
    await call(app, 'PATCH', `/api/v1/users/${u.user.id}`, { token: admin.token, body: { name: 'committed' } });
    expect(await count()).toBe(n0 + 1);
    expect((await verifyChain(app.ctx.db)).ok).toBe(true);
  });

  it('masks secrets in before/after/details', async () => {
    await app.ctx.audit.record(app.ctx.db, {
      action: 'connection.updated',
      actorId: admin.user.id,
      resourceType: 'connection',
      resourceId: 'c1',
      before: { url: 'http://127.0.0.1:1', api_key: 'old-secret-value' },
      after: { url: 'http://127.0.0.1:2', api_key: 'new-secret-value', headers: [{ authorization: 'Bearer x' }] },
      details: { client_secret: 'cs', note: 'sk-ABCDEFGHIJKLMNOPQRSTUV' },
    });
    const row = (await last('connection.updated'))!;
    expect(JSON.parse(row.before!)).toEqual({ url: 'http://127.0.0.1:1', api_key: '[REDACTED]' });
    expect(JSON.parse(row.after!)).toEqual({
      url: 'http://127.0.0.1:2',
      api_key: '[REDACTED]',
      headers: [{ authorization: '[REDACTED]' }],
    });
    expect(JSON.parse(row.details!)).toEqual({ client_secret: '[REDACTED]', note: '[REDACTED]' });
  });

  it('concurrent appends never fork the chain', async () => {
    const users = await Promise.all(Array.from({ length: 12 }, () => makeUser(app)));
    const before = await trail(app);
    await Promise.all(
      users.flatMap((u, i) => [
        call(app, 'PATCH', `/api/v1/users/${u.user.id}`, { token: admin.token, body: { name: `n${i}` } }),
        call(app, 'GET', '/api/v1/auths/', { token: `bad-${i}` }),
        app.ctx.audit.record(app.ctx.db, {
          action: 'test.direct',
          actorId: null,
          resourceType: 'test',
          resourceId: String(i),
        }),
      ]),
    );
    await app.ctx.audit.flush();
    const after = await trail(app);
    expect(after.length - before.length).toBe(36);
    const seqs = after.map((r) => Number(r.seq));
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
    const report = await verifyChain(app.ctx.db);
    expect(report).toMatchObject({ ok: true, break: null, entries: after.length });
  });
});

describeMatrix('audit trail: tamper evidence', matrix(), (b) => {
  let app: TestApp;
  afterEach(async () => app?.close());

  async function seed(n: number) {
    app = await createTestApp(b);
    for (let i = 0; i < n; i++)
      await app.ctx.audit.record(app.ctx.db, {
        action: 'test.event',
        actorId: 'u1',
        resourceType: 'test',
        resourceId: String(i),
        after: { i },
      });
    const r = await verifyChain(app.ctx.db);
    expect(r).toMatchObject({ ok: true, entries: n, firstSeq: 1, lastSeq: n });
  }

  it('the database refuses to update or delete entries', async () => {
    await seed(3);
    await expect(
      app.ctx.db.updateTable('audit_events').set({ after: '{"i":99}' }).where('seq', '=', 2).execute(),
    ).rejects.toThrow(/append-only/);
    await expect(app.ctx.db.deleteFrom('audit_events').where('seq', '=', 2).execute()).rejects.toThrow(/append-only/);
    if (b.db === 'postgresql')
      await expect(sql`truncate audit_events`.execute(app.ctx.db)).rejects.toThrow(/append-only/);
    expect((await verifyChain(app.ctx.db)).ok).toBe(true);
  });

  it('a modified entry is detected at that entry', async () => {
    await seed(5);
    await dropGuards(app);
    await app.ctx.db.updateTable('audit_events').set({ after: '{"i":99}' }).where('seq', '=', 3).execute();
    expect(await verifyChain(app.ctx.db)).toMatchObject({
      ok: false,
      entries: 2,
      break: { seq: 3, reason: expect.stringContaining('entry modified') },
    });
  });

  it('a modified entry whose hash was recomputed breaks the link to the next one', async () => {
    await seed(5);
    await dropGuards(app);
    const row = await app.ctx.db.selectFrom('audit_events').selectAll().where('seq', '=', 3).executeTakeFirstOrThrow();
    const forged = { ...row, actor_id: 'someone-else' };
    const { seq: _s, prev_hash: _p, hash: _h, ...fields } = forged;
    const hash = hashEntry(3, row.prev_hash, { ...fields, created_at: Number(fields.created_at) });
    await app.ctx.db.updateTable('audit_events').set({ actor_id: 'someone-else', hash }).where('seq', '=', 3).execute();
    expect((await verifyChain(app.ctx.db)).break).toMatchObject({
      seq: 4,
      reason: expect.stringContaining('prev_hash'),
    });
  });

  it('a deleted entry, in the middle or at the end, is detected', async () => {
    await seed(5);
    await dropGuards(app);
    await app.ctx.db.deleteFrom('audit_events').where('seq', '=', 2).execute();
    expect((await verifyChain(app.ctx.db)).break).toMatchObject({ seq: 2, reason: expect.stringContaining('missing') });
  });

  it('truncating the end of the chain is detected against the head', async () => {
    await seed(5);
    await dropGuards(app);
    await app.ctx.db.deleteFrom('audit_events').where('seq', '>=', 4).execute();
    expect((await verifyChain(app.ctx.db)).break).toMatchObject({ seq: 4, reason: expect.stringContaining('missing') });
  });
});

describeMatrix('audit trail: retention by sealed segments', matrix(), (b) => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp(b, { env: { AUDIT_RETENTION_DAYS: '30' } });
  });
  afterAll(async () => {
    vi.useRealTimers();
    await app?.close();
  });

  it('prunes whole old segments, keeps checkpoints, still verifies, and records the pruning', async () => {
    const now = Date.now();
    const today = Math.floor(now / DAY_MS) * DAY_MS;
    const at = async (t: number, n: number, tag: string) => {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(t);
      for (let i = 0; i < n; i++)
        await app.ctx.audit.record(app.ctx.db, {
          action: 'test.old',
          actorId: null,
          resourceType: tag,
          resourceId: String(i),
        });
      vi.useRealTimers();
    };
    await at(today - 40 * DAY_MS + 3600_000, 3, 'd40');
    await at(today - 39 * DAY_MS + 3600_000, 2, 'd39');
    await at(today - 10 * DAY_MS + 3600_000, 4, 'd10');
    await at(now, 1, 'today');

    const r1 = await pipeline(app).maintain(now);
    expect(r1.sealed.map((s) => [s.first_seq, s.last_seq])).toEqual([
      [1, 3],
      [4, 5],
      [6, 9],
    ]);
    expect(r1.pruned).toEqual([
      { first_seq: 1, last_seq: 3, rows: 3 },
      { first_seq: 4, last_seq: 5, rows: 2 },
    ]);
    const rows = await trail(app);
    expect(rows.map((r) => r.resource_type)).toEqual([
      'd10',
      'd10',
      'd10',
      'd10',
      'today',
      'audit_segment',
      'audit_segment',
    ]);
    const pruned = rows.filter((r) => r.action === 'audit.pruned').map((r) => JSON.parse(r.details!));
    expect(pruned[0]).toMatchObject({ first_seq: 1, last_seq: 3, rows: 3, retention_days: 30 });
    const report = await verifyChain(app.ctx.db);
    expect(report).toMatchObject({ ok: true, entries: 7, firstSeq: 6, prunedThrough: { seq: 5 }, checkpoints: 3 });

    // idempotent; a later run prunes the 10-day-old segment once it is old enough
    const r2 = await pipeline(app).maintain(now);
    expect(r2).toEqual({ sealed: [], pruned: [] });
    const r3 = await pipeline(app).maintain(now + 25 * DAY_MS);
    expect(r3.pruned).toEqual([{ first_seq: 6, last_seq: 9, rows: 4 }]);
    expect((await verifyChain(app.ctx.db)).ok).toBe(true);

    // entries of a sealed segment that is not pruned cannot be deleted
    const sealedRow = await app.ctx.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('pruned_at', 'is', null)
      .executeTakeFirst();
    if (sealedRow)
      await expect(
        app.ctx.db.deleteFrom('audit_events').where('seq', '=', Number(sealedRow.last_seq)).execute(),
      ).rejects.toThrow(/append-only/);
  });
});

describe('audit trail: hash', () => {
  it('covers every column', () => {
    const f = {
      created_at: 1,
      action: 'a',
      actor_id: 'b',
      subject_id: 'c',
      resource_type: 'd',
      resource_id: 'e',
      result: 'success',
      ip: '127.0.0.1',
      request_id: 'r',
      before: '{}',
      after: '{"x":1}',
      details: null,
    };
    const h = hashEntry(1, '0'.repeat(64), f);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    for (const k of Object.keys(f) as (keyof typeof f)[]) {
      const changed = { ...f, [k]: k === 'created_at' ? 2 : 'changed' };
      expect(hashEntry(1, '0'.repeat(64), changed), k).not.toBe(h);
    }
    expect(hashEntry(2, '0'.repeat(64), f)).not.toBe(h);
    expect(hashEntry(1, '1'.repeat(64), f)).not.toBe(h);
  });
});
