import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';

describeMatrix('GET /api/v1/audit (admin viewer)', matrix(), (b) => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof signup>>;
  let user: Awaited<ReturnType<typeof makeUser>>;
  let viewer: Awaited<ReturnType<typeof makeUser>>;
  let tMid = 0;
  beforeAll(async () => {
    app = await createTestApp(b);
    admin = await signup(app);
    user = await makeUser(app);
    viewer = await makeUser(app);
    for (let i = 0; i < 5; i++)
      await call(app, 'PATCH', `/api/v1/users/${user.user.id}`, { token: admin.token, body: { name: `name ${i}` } });
    await new Promise((r) => setTimeout(r, 5));
    tMid = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    await call(app, 'GET', '/api/v1/auths/', { token: 'garbage' });
    await call(app, 'PATCH', `/api/v1/users/${user.user.id}`, { token: admin.token, body: { role: 'admin' } });
    await app.ctx.audit.flush();
  });
  afterAll(async () => app?.close());

  const get = (q = '', token = admin.token) => call(app, 'GET', `/api/v1/audit${q}`, { token });

  it('is for admins only', async () => {
    expect((await get('', viewer.token)).status).toBe(403);
    expect((await call(app, 'GET', '/api/v1/audit')).status).toBe(401);
    expect((await call(app, 'GET', '/api/v1/audit/export', { token: viewer.token })).status).toBe(403);
    await app.ctx.audit.flush();
  });

  it('lists newest first with the presented fields only', async () => {
    const r = await get();
    expect(r.status).toBe(200);
    const first = r.body.items[0];
    expect(Object.keys(first).sort()).toEqual(
      [
        'seq',
        'created_at',
        'action',
        'result',
        'actor_id',
        'actor_email',
        'subject_id',
        'resource_type',
        'resource_id',
        'ip',
        'request_id',
        'before',
        'after',
        'details',
        'prev_hash',
        'hash',
      ].sort(),
    );
    expect(first.action).toBe('session.revoked_all');
    expect(r.body.items[1]).toMatchObject({
      action: 'user.role_changed',
      actor_id: admin.user.id,
      actor_email: admin.user.email,
      resource_type: 'user',
      resource_id: user.user.id,
      before: { role: 'user' },
      after: { role: 'admin' },
      result: 'success',
      ip: '127.0.0.1',
    });
    const seqs = r.body.items.map((i: { seq: number }) => i.seq);
    expect([...seqs].sort((a, b) => b - a)).toEqual(seqs);
  });

  it('pages with an opaque cursor without gaps or repeats', async () => {
    const all = (await get('?limit=200')).body.items.map((i: { seq: number }) => i.seq);
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const r = await get(`?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...r.body.items.map((i: { seq: number }) => i.seq));
      cursor = r.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(all);
    expect((await get('?cursor=bm90LWEtY3Vyc29y')).body.error.code).toBe('validation_failed');
    expect((await get('?limit=1000')).status).toBe(400);
    expect((await get('?bogus=1')).status).toBe(400);
  });

  it('filters by actor, action (exact and prefix), resource, result and time range', async () => {
    const byActor = (await get(`?actor=${admin.user.id}&limit=200`)).body.items;
    expect(byActor.length).toBeGreaterThan(0);
    expect(byActor.every((i: { actor_id: string }) => i.actor_id === admin.user.id)).toBe(true);

    const updated = (await get('?action=user.updated')).body.items;
    expect(updated).toHaveLength(5);
    const prefix = (await get('?action=user.*&limit=200')).body.items;
    expect(prefix.every((i: { action: string }) => i.action.startsWith('user.'))).toBe(true);
    expect(prefix.map((i: { action: string }) => i.action)).toContain('user.role_changed');
    // `_` is not a wildcard
    expect((await get('?action=user_*')).body.items).toHaveLength(0);

    const res = (await get(`?resource_type=user&resource_id=${user.user.id}&limit=200`)).body.items;
    expect(res).toHaveLength(7);
    const failures = (await get('?result=failure')).body.items;
    expect(failures.length).toBe(1);
    expect(failures[0]).toMatchObject({ action: 'auth.failure', details: { method: 'token' } });

    const before = (await get(`?to=${tMid}&action=user.updated`)).body.items;
    expect(before).toHaveLength(5);
    const after = (await get(`?from=${new Date(tMid).toISOString()}&limit=200`)).body.items;
    expect(after.map((i: { action: string }) => i.action).sort()).toEqual([
      'auth.failure',
      'session.revoked_all',
      'user.role_changed',
    ]);
    expect((await get('?from=yesterday')).status).toBe(400);
  });

  it('exports JSON Lines, oldest first, and records the export', async () => {
    const r = await call(app, 'GET', '/api/v1/audit/export?action=user.*', { token: admin.token });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(r.headers['content-disposition']).toMatch(/attachment; filename="hridaai-audit-.*\.jsonl"/);
    const lines = r.text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(5);
    expect(lines.every((l) => l.action.startsWith('user.') && /^[0-9a-f]{64}$/.test(l.hash))).toBe(true);
    const seqs = lines.map((l) => l.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    const ev = (await get('?action=audit.exported')).body.items[0];
    expect(ev).toMatchObject({ actor_id: admin.user.id, details: { filters: { action: 'user.*' } } });
  });

  it('has no route that could change or delete an entry', async () => {
    const routes = app.app.printRoutes({ commonPrefix: false });
    const auditLines = routes.split('\n').filter((l) => /audit/.test(l));
    expect(auditLines.length).toBeGreaterThan(0);
    for (const l of auditLines) {
      const methods = /\(([^)]*)\)/.exec(l)?.[1]?.split(/,\s*/) ?? [];
      for (const m of methods) expect(['GET', 'HEAD'], l).toContain(m);
    }
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE'])
      for (const u of ['/api/v1/audit', '/api/v1/audit/1', '/api/v1/audit/export']) {
        const r = await call(app, m, u, { token: admin.token, body: {} });
        expect([404, 405], `${m} ${u}`).toContain(r.status);
      }
  });
});
