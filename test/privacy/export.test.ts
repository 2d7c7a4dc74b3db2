import { afterEach, expect, it } from 'vitest';
import { ERASURE_PLAN } from '../../server/modules/privacy/plan.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';
import { listColumns } from './schema.js';
import { seedUser } from './seed.js';

describeMatrix('personal data export', matrix(), (b) => {
  const apps: TestApp[] = [];
  const make = async (env: Record<string, string> = {}) => {
    const a = await createTestApp(b, { env });
    apps.push(a);
    return a;
  };
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('holds everything about the caller (every table represented), no secret, nobody else’s data', async () => {
    const app = await make();
    await signup(app);
    const other = await makeUser(app);
    // The other user's own data must not leak into the export.
    const otherChat = await call(app, 'POST', '/api/v1/chats', {
      token: other.token,
      body: { title: 'other secret chat', messages: [{ role: 'user', content: 'only mine' }] },
    });
    expect(otherChat.status).toBe(201);
    const u = await seedUser(app, other.user);

    const r = await call(app, 'GET', '/api/v1/users/me/export', { token: u.token });
    expect(r.status, r.text).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.headers['content-disposition']).toMatch(/attachment/);
    const doc = r.body as Record<string, unknown>;
    expect(doc.format).toBe('hridaai.user-export');

    // Every section named by the erasure plan is present and holds the seeded rows.
    const sections = [...new Set(ERASURE_PLAN.map((e) => e.export).filter((s): s is string => !!s)), 'account'];
    for (const s of sections) {
      const v = doc[s];
      const filled = Array.isArray(v) ? v.length > 0 : v !== null && v !== undefined;
      expect(filled, `export section "${s}"`).toBe(true);
    }
    // Every table that stores the user's own rows (plan: delete/anonymise/keep with an export) has a section.
    const tables = new Set((await listColumns(app)).map((c) => c.table));
    for (const e of ERASURE_PLAN)
      if (tables.has(e.table) && (e.action === 'delete' || e.action === 'anonymise') && e.table !== 'login_attempts')
        expect(e.export, `${e.table}.${e.column} has no export section`).toBeTruthy();

    const account = doc.account as { id: string; email: string };
    expect(account.id).toBe(u.id);
    expect(account.email).toBe(u.email);
    const chats = doc.chats as { id: string; messages: { content: unknown; model: string | null; usage: unknown }[] }[];
    expect(chats.map((c) => c.id)).toEqual([u.chatId]);
    expect(chats[0]!.messages.map((m) => m.content)).toEqual(['What is the capital of France?', 'Paris.']);
    expect(chats[0]!.messages[1]!.usage).toEqual({ prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 });
    expect((doc.share_links as { share_id: string }[])[0]!.share_id).toBe(u.shareId);
    expect((doc.memories as { id: string }[]).map((m) => m.id)).toEqual([u.memoryId]);
    expect((doc.files as { id: string }[]).map((f) => f.id)).toEqual([u.fileId]);
    expect((doc.api_keys as { id: string }[]).map((k) => k.id)).toEqual([u.apiKeyId]);
    expect((doc.usage as unknown[]).length).toBe(2);
    expect((doc.sessions as { sso?: unknown }[]).some((s) => s.sso)).toBe(true);
    expect((doc.connections as { base_url: string }[])[0]!.base_url).toBe('http://127.0.0.1:9/v1');

    // No secret, hash or sealed value appears anywhere in the document.
    for (const s of u.secrets) expect(r.text.includes(s), `secret ${s.slice(0, 12)}… leaked`).toBe(false);
    for (const k of [
      'password_hash',
      'code_hash',
      'totp_secret_enc',
      'api_key_enc',
      'headers_enc',
      '"hash"',
      'pepper_kid',
    ])
      expect(r.text.includes(k), k).toBe(false);
    expect(r.text.includes('user:pw@')).toBe(false);
    // Nobody else's data.
    expect(r.text.includes('other secret chat')).toBe(false);
    expect(r.text.includes(otherChat.body.id)).toBe(false);

    await app.ctx.audit.flush();
    const ev = await app.ctx.db
      .selectFrom('audit_events')
      .select('action')
      .where('action', '=', 'privacy.export')
      .where('resource_id', '=', u.id)
      .execute();
    expect(ev).toHaveLength(1);
  });

  it('takes no user id: the caller decides; a pending account may export; API keys and anonymous callers may not', async () => {
    const app = await make();
    await signup(app);
    const a = await makeUser(app);
    const bUser = await makeUser(app);
    await call(app, 'POST', '/api/v1/memories', { token: bUser.token, body: { content: 'b memory' } });
    const r = await call(app, 'GET', '/api/v1/users/me/export', { token: a.token, query: { user_id: bUser.user.id } });
    expect(r.status).toBe(200);
    expect(r.body.account.id).toBe(a.user.id);
    expect(r.text.includes('b memory')).toBe(false);
    expect((await call(app, 'GET', '/api/v1/users/me/export')).status).toBe(401);
    const admin = await makeUser(app, { role: 'admin' });
    const key = await call(app, 'POST', '/api/v1/api-keys', { token: admin.token, body: { name: 'k' } });
    expect(key.status, key.text).toBe(201);
    const viaKey = await call(app, 'GET', '/api/v1/users/me/export', { token: key.body.key });
    expect(viaKey.status).toBe(403);
    expect(viaKey.body.error.code).toBe('session_required');
    expect((await call(app, 'DELETE', '/api/v1/users/me', { token: key.body.key, body: {} })).status).toBe(403);
    const pending = await makeUser(app, { role: 'pending' });
    const p = await call(app, 'GET', '/api/v1/users/me/export', { token: pending.token });
    expect(p.status).toBe(200);
    expect(p.body.account.role).toBe('pending');
  });
});
