import { afterEach, expect, it } from 'vitest';
import { acquireLease, releaseLease, RETENTION_LEASE, runChatRetention } from '../../server/modules/chats/retention.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';

const DAY = 86_400_000;

describeMatrix('chats: retention', matrix(), (b) => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  async function seed(app: TestApp) {
    await signup(app);
    const u = await makeUser(app);
    const mk = async (title: string) =>
      (
        await call(app, 'POST', '/api/v1/chats', {
          token: u.token,
          body: { title, messages: [{ role: 'user', content: title }] },
        })
      ).body.id as string;
    const ids = {
      recent: await mk('recent'),
      old: await mk('old'),
      oldPinned: await mk('old pinned'),
      oldArchived: await mk('old archived'),
    };
    await call(app, 'PATCH', `/api/v1/chats/${ids.oldPinned}`, { token: u.token, body: { pinned: true } });
    await call(app, 'PATCH', `/api/v1/chats/${ids.oldArchived}`, { token: u.token, body: { archived: true } });
    await call(app, 'POST', `/api/v1/chats/${ids.old}/share`, { token: u.token });
    const longAgo = Date.now() - 31 * DAY;
    await app.ctx.db
      .updateTable('chats')
      .set({ updated_at: longAgo })
      .where('id', 'in', [ids.old, ids.oldPinned, ids.oldArchived])
      .execute();
    return { u, ids };
  }
  const remaining = async (app: TestApp) =>
    (await app.ctx.db.selectFrom('chats').select('title').orderBy('title').execute()).map((r) => r.title);

  it('CHAT_RETENTION_DAYS deletes chats not updated for that long, with messages and links; pinned chats stay', async () => {
    const app = await createTestApp(b, { env: { CHAT_RETENTION_DAYS: '30' } });
    apps.push(app);
    const { ids } = await seed(app);
    const r = await runChatRetention(app.ctx, { holder: 'test' });
    expect(r).toEqual({ ran: true, deleted: 2 });
    expect(await remaining(app)).toEqual(['old pinned', 'recent']);
    for (const t of ['chat_messages', 'chat_shares'] as const)
      expect(
        await app.ctx.db.selectFrom(t).select('id').where('chat_id', 'in', [ids.old, ids.oldArchived]).execute(),
      ).toEqual([]);
    await app.ctx.audit.flush();
    const ev = await app.ctx.db
      .selectFrom('audit_events')
      .select('details')
      .where('action', '=', 'chat.retention_deleted')
      .execute();
    expect(JSON.parse(ev[0]!.details!).count).toBe(2);
    // The lease was released.
    expect(await app.ctx.db.selectFrom('job_leases').select('name').execute()).toEqual([]);
  });

  it('unset (default): nothing is ever deleted', async () => {
    const app = await createTestApp(b);
    apps.push(app);
    await seed(app);
    expect(await runChatRetention(app.ctx, { holder: 'test' })).toEqual({ ran: false, deleted: 0 });
    expect((await remaining(app)).length).toBe(4);
  });

  it('several instances: one runner at a time (lease row); an expired lease is taken over', async () => {
    const a = await createTestApp(b, { env: { CHAT_RETENTION_DAYS: '30' } });
    apps.push(a);
    const second = await createTestApp(b, { shareWith: a, env: { CHAT_RETENTION_DAYS: '30' } });
    apps.push(second);
    await seed(a);
    const now = Date.now();
    // Instance A holds the lease (as if it were running): B skips.
    expect(await acquireLease(a.ctx.db, RETENTION_LEASE, 'instance-a', 60_000, now)).toBe(true);
    expect(await acquireLease(second.ctx.db, RETENTION_LEASE, 'instance-b', 60_000, now)).toBe(false);
    expect(await runChatRetention(second.ctx, { holder: 'instance-b', now })).toEqual({ ran: false, deleted: 0 });
    expect((await remaining(a)).length).toBe(4);
    // Concurrent takers of a free lease: exactly one wins.
    await releaseLease(a.ctx.db, RETENTION_LEASE, 'instance-a');
    const wins = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        acquireLease((i % 2 ? a : second).ctx.db, RETENTION_LEASE, `h${i}`, 60_000, now),
      ),
    );
    expect(wins.filter(Boolean)).toHaveLength(1);
    // A crashed holder's lease expires and B takes over.
    expect(await runChatRetention(second.ctx, { holder: 'instance-b', now: now + 61_000 })).toEqual({
      ran: true,
      deleted: 2,
    });
    expect(await remaining(a)).toEqual(['old pinned', 'recent']);
  });
});
