import { afterEach, expect, it } from 'vitest';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';

describeMatrix('chats: admin access and export', matrix(), (b) => {
  const apps: TestApp[] = [];
  const make = async (env: Record<string, string> = {}) => {
    const a = await createTestApp(b, { env });
    apps.push(a);
    return a;
  };
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  const audits = async (app: TestApp, action: string) => {
    await app.ctx.audit.flush();
    return app.ctx.db.selectFrom('audit_events').selectAll().where('action', '=', action).orderBy('seq').execute();
  };

  async function setup(env: Record<string, string> = {}) {
    const app = await make(env);
    const admin = await signup(app, undefined, 'admin password 1');
    const user = await makeUser(app);
    const chat = (
      await call(app, 'POST', '/api/v1/chats', {
        token: user.token,
        body: { title: 'Private', messages: [{ role: 'user', content: 'my private words' }] },
      })
    ).body;
    return { app, admin, user, chat };
  }

  it('ENABLE_ADMIN_CHAT_ACCESS=true (default): admins list and read, never change; every read is audited', async () => {
    const { app, admin, user, chat } = await setup();
    const list = await call(app, 'GET', `/api/v1/users/${user.user.id}/chats`, { token: admin.token });
    expect(list.status).toBe(200);
    expect(list.body.items.map((c: { id: string }) => c.id)).toEqual([chat.id]);
    const read = await call(app, 'GET', `/api/v1/chats/${chat.id}`, { token: admin.token });
    expect(read.status).toBe(200);
    expect(read.body.user_id).toBe(user.user.id);
    expect(read.body.messages[0].content).toBe('my private words');
    expect(read.body.share_id).toBeNull();

    const reads = await audits(app, 'chat.admin_read');
    expect(reads).toHaveLength(1);
    expect(reads[0]).toMatchObject({ actor_id: admin.user.id, resource_type: 'chat', resource_id: chat.id });
    expect(JSON.parse(reads[0]!.details!).owner_id).toBe(user.user.id);
    // The audit entry holds ids, never the conversation.
    expect(JSON.stringify(reads[0]).includes('my private words')).toBe(false);
    expect(await audits(app, 'chat.admin_list')).toHaveLength(1);

    // Read-only: changing, deleting, appending or sharing another user's chat is 404 for admins too.
    for (const [method, url, body] of [
      ['PATCH', `/api/v1/chats/${chat.id}`, { title: 'x' }],
      ['DELETE', `/api/v1/chats/${chat.id}`, undefined],
      ['POST', `/api/v1/chats/${chat.id}/messages`, { messages: [{ role: 'user', content: 'x' }] }],
      ['POST', `/api/v1/chats/${chat.id}/share`, undefined],
    ] as const) {
      const r = await call(app, method, url, { token: admin.token, body });
      expect(r.status, `${method} ${url}`).toBe(404);
    }
    expect((await call(app, 'GET', `/api/v1/chats/${chat.id}`, { token: user.token })).body.title).toBe('Private');
    expect((await call(app, 'GET', '/api/v1/users/no-such-user/chats', { token: admin.token })).status).toBe(404);
    // A folder id in the query must be that user's folder.
    const adminFolder = (await call(app, 'POST', '/api/v1/folders', { token: admin.token, body: { name: 'mine' } }))
      .body;
    const mixed = await call(app, 'GET', `/api/v1/users/${user.user.id}/chats?folder_id=${adminFolder.id}`, {
      token: admin.token,
    });
    expect(mixed.status).toBe(404);
  });

  it('ENABLE_ADMIN_CHAT_ACCESS=false: admins get 404 like anyone else', async () => {
    const { app, admin, user, chat } = await setup({ ENABLE_ADMIN_CHAT_ACCESS: 'false' });
    const read = await call(app, 'GET', `/api/v1/chats/${chat.id}`, { token: admin.token });
    expect(read.status).toBe(404);
    expect(read.text.includes('my private words')).toBe(false);
    expect((await call(app, 'GET', `/api/v1/users/${user.user.id}/chats`, { token: admin.token })).status).toBe(404);
    expect(await audits(app, 'chat.admin_read')).toHaveLength(0);
    // The admin's own chats are unaffected.
    const own = await call(app, 'POST', '/api/v1/chats', { token: admin.token, body: { title: 'mine' } });
    expect((await call(app, 'GET', `/api/v1/chats/${own.body.id}`, { token: admin.token })).status).toBe(200);
  });

  it('ENABLE_ADMIN_EXPORT=true: every chat as streamed JSON Lines, without hashes or secrets; audited', async () => {
    const { app, admin, user, chat } = await setup();
    const other = await makeUser(app, { password: 'other password' });
    for (let i = 0; i < 130; i++)
      await app.ctx.db
        .insertInto('chats')
        .values({
          id: `bulk-${String(i).padStart(3, '0')}`,
          user_id: other.user.id,
          folder_id: null,
          title: `bulk ${i}`,
          pinned: 0,
          archived: 0,
          created_at: 1000 + (i % 7),
          updated_at: 1000,
        })
        .execute();
    const r = await call(app, 'GET', '/api/v1/chats/export', { token: admin.token });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const lines = r.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; user: { id: string; email: string }; messages: unknown[] });
    expect(lines).toHaveLength(131);
    expect(new Set(lines.map((l) => l.id)).size).toBe(131);
    const mine = lines.find((l) => l.id === chat.id)!;
    expect(mine.user).toEqual({ id: user.user.id, email: user.user.email, name: user.user.name });
    expect(mine.messages).toHaveLength(1);
    expect(r.text.includes('password_hash')).toBe(false);
    expect(r.text.includes(other.user.password_hash!)).toBe(false);
    expect(/\$2[aby]\$/.test(r.text)).toBe(false);
    expect(await audits(app, 'chat.admin_export')).toHaveLength(1);
    // Admin only.
    const no = await call(app, 'GET', '/api/v1/chats/export', { token: user.token });
    expect(no.status).toBe(403);
  });

  it('ENABLE_ADMIN_EXPORT=false: 403 admin_export_disabled', async () => {
    const { app, admin } = await setup({ ENABLE_ADMIN_EXPORT: 'false' });
    const r = await call(app, 'GET', '/api/v1/chats/export', { token: admin.token });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('admin_export_disabled');
    expect(await audits(app, 'chat.admin_export')).toHaveLength(0);
  });
});
