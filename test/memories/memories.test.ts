import { randomUUID } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { memoryContext } from '../../server/modules/memories/service.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';

describeMatrix('memories', matrix(), (b) => {
  const apps: TestApp[] = [];
  const make = async (env: Record<string, string> = {}) => {
    const a = await createTestApp(b, { env });
    apps.push(a);
    return a;
  };
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('add, list, search, edit, delete — only ever the caller’s own', async () => {
    const app = await make();
    await signup(app);
    const a = await makeUser(app);
    const bUser = await makeUser(app);
    const m1 = await call(app, 'POST', '/api/v1/memories', { token: a.token, body: { content: 'Likes green tea' } });
    expect(m1.status).toBe(201);
    expect(m1.body).toMatchObject({ content: 'Likes green tea', redacted: [] });
    expect(Object.keys(m1.body)).not.toContain('user_id');
    await call(app, 'POST', '/api/v1/memories', { token: a.token, body: { content: 'Works at 50% capacity' } });
    const bm = await call(app, 'POST', '/api/v1/memories', {
      token: bUser.token,
      body: { content: 'Bob likes green tea too' },
    });

    const list = await call(app, 'GET', '/api/v1/memories', { token: a.token });
    expect(list.body.total).toBe(2);
    expect(list.body.items[0].content).toBe('Works at 50% capacity');
    expect(
      (await call(app, 'GET', '/api/v1/memories', { token: a.token, query: { q: 'GREEN' } })).body.items.map(
        (m: { id: string }) => m.id,
      ),
    ).toEqual([m1.body.id]);
    expect((await call(app, 'GET', '/api/v1/memories', { token: a.token, query: { q: '%' } })).body.total).toBe(1);

    const edited = await call(app, 'PATCH', `/api/v1/memories/${m1.body.id}`, {
      token: a.token,
      body: { content: 'Likes oolong tea' },
    });
    expect(edited.body.content).toBe('Likes oolong tea');
    expect((await call(app, 'GET', `/api/v1/memories/${m1.body.id}`, { token: a.token })).body.content).toBe(
      'Likes oolong tea',
    );

    // Isolation: Bob's id in every route is 404 for Alice, and nothing of Bob's changes.
    for (const [method, body] of [
      ['GET', undefined],
      ['PATCH', { content: 'pwned' }],
      ['DELETE', undefined],
    ] as const) {
      const r = await call(app, method, `/api/v1/memories/${bm.body.id}`, { token: a.token, body });
      expect(r.status, method).toBe(404);
    }
    expect((await call(app, 'GET', `/api/v1/memories/${bm.body.id}`, { token: bUser.token })).body.content).toBe(
      'Bob likes green tea too',
    );

    // No route takes a user id: bodies and queries that carry one are refused.
    const smuggle = [
      ['POST', '/api/v1/memories', { content: 'x', user_id: bUser.user.id }, undefined],
      ['PATCH', `/api/v1/memories/${m1.body.id}`, { content: 'x', user_id: bUser.user.id }, undefined],
      ['GET', '/api/v1/memories', undefined, { user_id: bUser.user.id }],
      ['PUT', '/api/v1/memories/settings', { inject_into_chats: true, user_id: bUser.user.id }, undefined],
    ] as const;
    for (const [method, url, body, query] of smuggle) {
      const r = await call(app, method, url, { token: a.token, body, query });
      expect(r.status, `${method} ${url}`).toBe(400);
    }
    expect((await call(app, 'GET', '/api/v1/memories', { token: bUser.token })).body.total).toBe(1);

    // Delete all removes only the caller's.
    const all = await call(app, 'DELETE', '/api/v1/memories', { token: a.token });
    expect(all.body.count).toBe(2);
    expect((await call(app, 'GET', '/api/v1/memories', { token: bUser.token })).body.total).toBe(1);
    expect((await call(app, 'GET', '/api/v1/memories')).status).toBe(401);
  });

  it('MEMORY_PII_REDACTION=true redacts before storing (create and edit); off by default', async () => {
    const text =
      'Card 4111 1111 1111 1111, SSN 123-45-6789, mail jo@example.org, call +44 20 7946 0958; order 12345678 on 2024-01-15';
    const off = await make();
    await signup(off);
    const u0 = await makeUser(off);
    const plain = await call(off, 'POST', '/api/v1/memories', { token: u0.token, body: { content: text } });
    expect(plain.body.content).toBe(text);

    const app = await make({ MEMORY_PII_REDACTION: 'true' });
    await signup(app);
    const u = await makeUser(app);
    const r = await call(app, 'POST', '/api/v1/memories', { token: u.token, body: { content: text } });
    expect(r.status).toBe(201);
    const expected =
      'Card [REDACTED_CC], SSN [REDACTED_SSN], mail [REDACTED_EMAIL], call [REDACTED_PHONE]; order 12345678 on 2024-01-15';
    expect(r.body.content).toBe(expected);
    expect([...r.body.redacted].sort()).toEqual(['credit_card', 'email', 'phone', 'ssn']);
    // The original never reached the database.
    const row = await app.ctx.db
      .selectFrom('memories')
      .select('content')
      .where('id', '=', r.body.id)
      .executeTakeFirstOrThrow();
    expect(row.content).toBe(expected);
    const e = await call(app, 'PATCH', `/api/v1/memories/${r.body.id}`, {
      token: u.token,
      body: { content: 'now at bob@example.com' },
    });
    expect(e.body.content).toBe('now at [REDACTED_EMAIL]');
  });

  it('the memories permission and the user setting decide injection into chat context', async () => {
    const app = await make({ USER_PERMISSIONS_FEATURES_MEMORIES: 'false' });
    await signup(app);
    const u = await makeUser(app);
    const admin = await makeUser(app, { role: 'admin' });
    const denied = await call(app, 'POST', '/api/v1/memories', { token: u.token, body: { content: 'x' } });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('permission_required');
    expect((await call(app, 'GET', '/api/v1/memories/settings', { token: u.token })).body).toEqual({
      inject_into_chats: false,
      permitted: false,
    });
    expect(
      (await call(app, 'POST', '/api/v1/memories', { token: admin.token, body: { content: 'admin memory' } })).status,
    ).toBe(201);

    // A group can grant `features.memories`.
    const now = Date.now();
    const g = randomUUID();
    await app.ctx.db
      .insertInto('groups')
      .values({
        id: g,
        name: 'm',
        name_key: `m-${g}`,
        description: '',
        permissions: '{"features.memories":true}',
        source: 'local',
        created_by: null,
        created_at: now,
        updated_at: now,
      })
      .execute();
    await app.ctx.db
      .insertInto('group_members')
      .values({ group_id: g, user_id: u.user.id, source: 'local', created_at: now })
      .execute();
    expect(
      (await call(app, 'POST', '/api/v1/memories', { token: u.token, body: { content: 'Prefers short answers' } }))
        .status,
    ).toBe(201);

    // Injection: off until the user turns it on; then the user's own memories only.
    expect(await memoryContext(app.ctx, app.ctx.db, u.user)).toBeNull();
    const on = await call(app, 'PUT', '/api/v1/memories/settings', {
      token: u.token,
      body: { inject_into_chats: true },
    });
    expect(on.body).toEqual({ inject_into_chats: true, permitted: true });
    const ctxText = await memoryContext(app.ctx, app.ctx.db, u.user);
    expect(ctxText).toContain('Prefers short answers');
    expect(ctxText).not.toContain('admin memory');
    // Losing the permission stops injection even with the setting on.
    await app.ctx.db.deleteFrom('group_members').where('user_id', '=', u.user.id).execute();
    expect(await memoryContext(app.ctx, app.ctx.db, u.user)).toBeNull();
  });
});
