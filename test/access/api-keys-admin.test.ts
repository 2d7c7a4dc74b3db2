import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, createTestApp, describeMatrix, matrix, sleep, type TestApp } from '../harness.js';
import { createGroup, createKey, expectError, user, world, type World } from './helpers.js';

type Key = { key: string; id: string };
type Item = { id: string; created_at: number; owner: { id: string; email: string; name: string } };

/** Every key a caching instance would keep serving is 60 s: a missed invalidation shows. */
const ENV = { SESSION_CACHE_TTL_MS: '60000' };

describeMatrix('API keys: admin management', matrix(), (b) => {
  let w: World;
  let u1: Awaited<ReturnType<typeof user>>;
  let u2: Awaited<ReturnType<typeof user>>;
  let u3: Awaited<ReturnType<typeof user>>;
  const keys: Record<string, Key[]> = {};

  const admin = (method: string, url: string, app: TestApp = w.app) => call(app, method, url, { token: w.admin.token });
  const whoAmI = (k: Key, app: TestApp = w.app) => call(app, 'GET', '/api/v1/auths/', { token: k.key });

  /** Every page of the admin list for a query, following next_cursor. */
  async function allPages(query: string, limit: number): Promise<{ items: Item[]; pages: number }> {
    const items: Item[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await admin(
        'GET',
        `/api/v1/admin/api-keys?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(r.status, r.text).toBe(200);
      expect(r.body.items.length).toBeLessThanOrEqual(limit);
      items.push(...(r.body.items as Item[]));
      cursor = r.body.next_cursor as string | null;
      pages++;
      expect(pages).toBeLessThan(100);
    } while (cursor);
    return { items, pages };
  }

  beforeAll(async () => {
    w = await world(b, ENV);
    u1 = await user(w);
    u2 = await user(w);
    u3 = await user(w);
    await createGroup(w, 'key-holders', {
      members: [u1.id, u2.id, u3.id],
      permissions: { features: { api_keys: true } },
    });
    keys[w.admin.id] = [await createKey(w, w.admin.token, { name: 'admin-ci' })];
    keys[u1.id] = [
      await createKey(w, u1.token, { name: 'u1-a', allowed_models: ['m1'] }),
      await createKey(w, u1.token, { name: 'u1-b', allowed_endpoints: ['/api/v1/models', '/api/v1/auths'] }),
    ];
    keys[u2.id] = [await createKey(w, u2.token, { name: 'u2-a' })];
    keys[u3.id] = [];
    for (let i = 0; i < 5; i++) keys[u3.id]!.push(await createKey(w, u3.token, { name: `u3-${i}` }));
  });
  afterAll(async () => w?.app.close());

  it('lists the keys of every user with their owner, and never a hash', async () => {
    const r = await admin('GET', '/api/v1/admin/api-keys?limit=200');
    expect(r.status, r.text).toBe(200);
    const items = r.body.items as Item[];
    for (const [owner, list] of Object.entries(keys))
      for (const k of list) {
        const item = items.find((i) => i.id === k.id);
        expect(item, k.id).toBeDefined();
        expect(item!.owner.id).toBe(owner);
      }
    const u1a = items.find((i) => i.id === keys[u1.id]![0]!.id)!;
    expect(u1a).toMatchObject({
      name: 'u1-a',
      hint: keys[u1.id]![0]!.key.slice(-4),
      allowed_models: ['m1'],
      allowed_endpoints: null,
      expires_at: null,
      owner: { id: u1.id, email: u1.email, name: 'Someone' },
    });
    expect(Object.keys(u1a).sort()).toEqual(
      [
        'allowed_endpoints',
        'allowed_models',
        'created_at',
        'expires_at',
        'hint',
        'id',
        'last_used_at',
        'name',
        'owner',
        'prefix',
        'rotated_at',
        'updated_at',
      ].sort(),
    );
    expect(r.body.next_cursor).toBeNull();

    // The raw text: no hash field, no hash value, no pepper id, no secret.
    const rows = await w.app.ctx.db.selectFrom('api_keys').select(['hash', 'pepper_kid']).execute();
    expect(rows.length).toBeGreaterThanOrEqual(9);
    const one = await admin('GET', `/api/v1/users/${u1.id}/api-keys`);
    expect(one.status, one.text).toBe(200);
    for (const text of [r.text, one.text]) {
      expect(text).not.toMatch(/hash/i);
      expect(text).not.toContain('pepper');
      for (const row of rows) expect(text).not.toContain(row.hash);
      for (const k of Object.values(keys).flat()) expect(text).not.toContain(k.key.slice(19));
    }
  });

  it("one user's keys: GET /api/v1/users/:id/api-keys; unknown user → 404", async () => {
    const r = await admin('GET', `/api/v1/users/${u1.id}/api-keys`);
    expect(r.status, r.text).toBe(200);
    expect((r.body.items as Item[]).map((i) => i.id).sort()).toEqual(keys[u1.id]!.map((k) => k.id).sort());
    expect((r.body.items as Item[]).every((i) => i.owner.id === u1.id)).toBe(true);
    const none = await user(w);
    expect((await admin('GET', `/api/v1/users/${none.id}/api-keys`)).body).toEqual({ items: [] });
    expectError(await admin('GET', '/api/v1/users/00000000-0000-4000-8000-000000000000/api-keys'), 404, 'not_found');
  });

  it('filters by user and by text', async () => {
    const byUser = await admin('GET', `/api/v1/admin/api-keys?user_id=${u1.id}`);
    expect(byUser.status, byUser.text).toBe(200);
    expect((byUser.body.items as Item[]).map((i) => i.id).sort()).toEqual(keys[u1.id]!.map((k) => k.id).sort());

    const byEmail = await admin('GET', `/api/v1/admin/api-keys?q=${encodeURIComponent(u2.email.toUpperCase())}`);
    expect((byEmail.body.items as Item[]).map((i) => i.id)).toEqual(keys[u2.id]!.map((k) => k.id));

    const byName = await admin('GET', `/api/v1/admin/api-keys?q=u1-b`);
    expect((byName.body.items as Item[]).map((i) => i.id)).toEqual([keys[u1.id]![1]!.id]);

    // LIKE wildcards are literal
    expect((await admin('GET', `/api/v1/admin/api-keys?q=${encodeURIComponent('u_-%')}`)).body.items).toEqual([]);
    expect((await admin('GET', '/api/v1/admin/api-keys?user_id=nobody')).body.items).toEqual([]);
    expectError(await admin('GET', '/api/v1/admin/api-keys?limit=0'), 400, 'validation_failed');
    expectError(await admin('GET', '/api/v1/admin/api-keys?owner=x'), 400, 'validation_failed');
  });

  it('pages with a cursor across equal created_at values, in a stable order', async () => {
    // Five keys of u3 and one of u2 created in the same millisecond.
    const same = [...keys[u3.id]!, keys[u2.id]![0]!].map((k) => k.id);
    const t = 1_700_000_000_000;
    await w.app.ctx.db.updateTable('api_keys').set({ created_at: t }).where('id', 'in', same).execute();

    const mine = await allPages(`&user_id=${u3.id}`, 2);
    expect(mine.pages).toBe(3);
    expect(mine.items.map((i) => i.id)).toEqual(keys[u3.id]!.map((k) => k.id).sort());

    const everything = await allPages('', 2);
    const expected = (
      await w.app.ctx.db
        .selectFrom('api_keys')
        .select(['id', 'created_at'])
        .orderBy('created_at')
        .orderBy('id')
        .execute()
    ).map((x) => x.id);
    expect(everything.items.map((i) => i.id)).toEqual(expected);
    expect(new Set(everything.items.map((i) => i.id)).size).toBe(expected.length);
    expect(everything.items.filter((i) => i.created_at === t).map((i) => i.id)).toEqual([...same].sort());

    for (const bad of ['nonsense', Buffer.from('12:../x').toString('base64url'), 'x'.repeat(300)])
      expectError(
        await admin('GET', `/api/v1/admin/api-keys?cursor=${encodeURIComponent(bad)}`),
        400,
        'validation_failed',
      );
  });

  it('non-admins get 403 admin_required on all three routes', async () => {
    const k = keys[u2.id]![0]!;
    const userKey = keys[u1.id]![0]!;
    for (const token of [u1.token, userKey.key]) {
      expectError(await call(w.app, 'GET', '/api/v1/admin/api-keys', { token }), 403, 'admin_required');
      expectError(await call(w.app, 'GET', `/api/v1/users/${u2.id}/api-keys`, { token }), 403, 'admin_required');
      expectError(await call(w.app, 'GET', `/api/v1/users/${u1.id}/api-keys`, { token }), 403, 'admin_required');
      expectError(await call(w.app, 'DELETE', `/api/v1/admin/api-keys/${k.id}`, { token }), 403, 'admin_required');
      expectError(
        await call(w.app, 'DELETE', `/api/v1/admin/api-keys/${userKey.id}`, { token }),
        403,
        'admin_required',
      );
    }
    expectError(await call(w.app, 'GET', '/api/v1/admin/api-keys'), 401, 'unauthenticated');
    expect((await whoAmI(k)).status).toBe(200);
    expect((await whoAmI(userKey)).status).toBe(200);
  });

  it("a user's own routes never show or touch another user's keys", async () => {
    const theirs = keys[u2.id]![0]!;
    const list = await call(w.app, 'GET', '/api/v1/api-keys', { token: u1.token });
    expect(list.status).toBe(200);
    expect((list.body.items as Item[]).map((i) => i.id).sort()).toEqual(keys[u1.id]!.map((k) => k.id).sort());
    for (const other of [...keys[u2.id]!, ...keys[u3.id]!, ...keys[w.admin.id]!])
      expect(list.text).not.toContain(other.id);
    expect(list.text).not.toContain('owner');
    expectError(await call(w.app, 'DELETE', `/api/v1/api-keys/${theirs.id}`, { token: u1.token }), 404, 'not_found');
    expectError(
      await call(w.app, 'POST', `/api/v1/api-keys/${theirs.id}/rotate`, { token: u1.token }),
      404,
      'not_found',
    );
    expect((await whoAmI(theirs)).body.id).toBe(u2.id);
  });

  it('revoking a key stops it on the very next request, audited with the admin and the owner', async () => {
    const [victim, survivor] = keys[u1.id]!;
    expect((await whoAmI(victim!)).status).toBe(200); // now in the verify cache
    expect((await whoAmI(survivor!)).status).toBe(200);

    const r = await admin('DELETE', `/api/v1/admin/api-keys/${victim!.id}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ status: 'revoked' });
    expectError(await whoAmI(victim!), 401, 'api_key_invalid');
    expect((await whoAmI(survivor!)).body.id).toBe(u1.id);
    expect(
      await w.app.ctx.db.selectFrom('api_keys').select('id').where('id', '=', victim!.id).executeTakeFirst(),
    ).toBeUndefined();
    const left = await admin('GET', `/api/v1/users/${u1.id}/api-keys`);
    expect((left.body.items as Item[]).map((i) => i.id)).toEqual([survivor!.id]);

    const ev = await w.app.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'api_key.revoked')
      .where('resource_id', '=', victim!.id)
      .execute();
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ actor_id: w.admin.id, resource_type: 'api_key', result: 'success' });
    expect(JSON.parse(ev[0]!.details!)).toMatchObject({ owner_id: u1.id });
    expect(JSON.parse(ev[0]!.before!)).toMatchObject({ id: victim!.id, name: 'u1-a' });
    expect(JSON.stringify(ev[0])).not.toContain(victim!.key.slice(19));
    const trail = await admin('GET', '/api/v1/audit?action=api_key.revoked');
    expect(trail.body.items.map((e: { resource_id: string }) => e.resource_id)).toContain(victim!.id);

    // Gone: a second revoke and an unknown id are 404, nothing is audited for them.
    expectError(await admin('DELETE', `/api/v1/admin/api-keys/${victim!.id}`), 404, 'not_found');
    expectError(await admin('DELETE', '/api/v1/admin/api-keys/0123456789abcdef'), 404, 'not_found');
    const count = await w.app.ctx.db
      .selectFrom('audit_events')
      .select('seq')
      .where('action', '=', 'api_key.revoked')
      .execute();
    expect(count).toHaveLength(1);
  });

  it('an admin can revoke their own key and another admin’s key through the same route', async () => {
    const other = await user(w, 'admin');
    const k = await createKey(w, other.token, { name: 'other-admin' });
    expect((await whoAmI(k)).status).toBe(200);
    expect((await admin('DELETE', `/api/v1/admin/api-keys/${k.id}`)).status).toBe(200);
    expectError(await whoAmI(k), 401, 'api_key_invalid');
  });

  it('works with ENABLE_API_KEYS=false: keys can still be reviewed and revoked', async () => {
    const off = await createTestApp(b, { shareWith: w.app, env: { ...ENV, ENABLE_API_KEYS: 'false' } });
    try {
      const k = await createKey(w, u2.token, { name: 'u2-off' });
      const r = await admin('GET', `/api/v1/users/${u2.id}/api-keys`, off);
      expect(r.status, r.text).toBe(200);
      expect((r.body.items as Item[]).map((i) => i.id)).toContain(k.id);
      expect((await admin('GET', `/api/v1/admin/api-keys?q=${k.id}`, off)).body.items).toHaveLength(1);
      expect((await admin('DELETE', `/api/v1/admin/api-keys/${k.id}`, off)).status).toBe(200);
      expectError(await whoAmI(k), 401, 'api_key_invalid');
    } finally {
      await off.close();
    }
  });

  if (b.redis)
    it('with Redis, a revocation stops the key on a second instance that had it cached', async () => {
      const second = await createTestApp(b, { shareWith: w.app, env: ENV });
      try {
        const k = await createKey(w, u2.token, { name: 'u2-shared' });
        const control = await createKey(w, u2.token, { name: 'u2-control' });
        expect((await whoAmI(k, second)).status).toBe(200);
        expect((await whoAmI(control, second)).status).toBe(200);
        // Control: a row removed behind the service's back stays cached on the second instance,
        // so only the broadcast below can make the revoked key fail there.
        await w.app.ctx.db.deleteFrom('api_keys').where('id', '=', control.id).execute();

        expect((await admin('DELETE', `/api/v1/admin/api-keys/${k.id}`)).status).toBe(200);
        expectError(await whoAmI(k), 401, 'api_key_invalid');
        // Pub/sub delivery to the other instance is asynchronous: wait for it (at most 2 s).
        let status = 0;
        for (let i = 0; i < 40 && status !== 401; i++) {
          status = (await whoAmI(k, second)).status;
          if (status !== 401) await sleep(50);
        }
        expect(status).toBe(401);
        expectError(await whoAmI(k, second), 401, 'api_key_invalid');
        expect((await whoAmI(control, second)).status).toBe(200);
      } finally {
        await second.close();
      }
    });
});
