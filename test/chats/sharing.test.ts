import { afterEach, expect, it } from 'vitest';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';

describeMatrix('chats: share links', matrix(), (b) => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  const auditCount = async (app: TestApp, action: string, chatId: string) => {
    await app.ctx.audit.flush();
    return (
      await app.ctx.db
        .selectFrom('audit_events')
        .select('seq')
        .where('action', '=', action)
        .where('resource_id', '=', chatId)
        .execute()
    ).length;
  };

  it('lifecycle: unguessable id, read-only snapshot for signed-in users, refresh, revoke (ENABLE_COMMUNITY_SHARING=true)', async () => {
    const app = await createTestApp(b);
    apps.push(app);
    await signup(app);
    const owner = await makeUser(app);
    const viewer = await makeUser(app);
    const chat = (
      await call(app, 'POST', '/api/v1/chats', {
        token: owner.token,
        body: { title: 'Shared', messages: [{ role: 'user', content: 'v1' }] },
      })
    ).body;

    const s = await call(app, 'POST', `/api/v1/chats/${chat.id}/share`, { token: owner.token });
    expect(s.status, s.text).toBe(201);
    const shareId = s.body.share_id as string;
    expect(shareId).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect((await call(app, 'GET', `/api/v1/chats/${chat.id}`, { token: owner.token })).body.share_id).toBe(shareId);
    expect(await auditCount(app, 'chat.share_created', chat.id)).toBe(1);

    const view = await call(app, 'GET', `/api/v1/chats/shared/${shareId}`, { token: viewer.token });
    expect(view.status).toBe(200);
    expect(view.body.title).toBe('Shared');
    expect(view.body.messages.map((m: { content: string }) => m.content)).toEqual(['v1']);
    // The snapshot names no owner and no ids that could be used elsewhere.
    expect(view.text.includes(owner.user.id)).toBe(false);
    expect(view.text.includes(chat.id)).toBe(false);
    expect(view.text.includes(owner.user.email)).toBe(false);
    // Signed-in users only.
    expect((await call(app, 'GET', `/api/v1/chats/shared/${shareId}`)).status).toBe(401);
    // Guesses and malformed ids are just not found.
    for (const guess of ['A'.repeat(32), shareId.slice(0, 31), `${shareId}x`, chat.id])
      expect(
        (await call(app, 'GET', `/api/v1/chats/shared/${encodeURIComponent(guess)}`, { token: viewer.token })).status,
      ).toBe(404);

    // Read-only snapshot: later changes do not show until the owner refreshes (same id).
    await call(app, 'POST', `/api/v1/chats/${chat.id}/messages`, {
      token: owner.token,
      body: { messages: [{ role: 'assistant', content: 'v2' }] },
    });
    expect(
      (await call(app, 'GET', `/api/v1/chats/shared/${shareId}`, { token: viewer.token })).body.messages,
    ).toHaveLength(1);
    const again = await call(app, 'POST', `/api/v1/chats/${chat.id}/share`, { token: owner.token });
    expect(again.status).toBe(200);
    expect(again.body.share_id).toBe(shareId);
    expect(
      (await call(app, 'GET', `/api/v1/chats/shared/${shareId}`, { token: viewer.token })).body.messages,
    ).toHaveLength(2);
    // The viewer can neither change nor revoke it.
    expect((await call(app, 'DELETE', `/api/v1/chats/${chat.id}/share`, { token: viewer.token })).status).toBe(404);
    expect((await call(app, 'POST', `/api/v1/chats/shared/${shareId}`, { token: viewer.token })).status).toBe(404);

    // Revoked by its owner: gone; a new link gets a new id.
    const del = await call(app, 'DELETE', `/api/v1/chats/${chat.id}/share`, { token: owner.token });
    expect(del.status).toBe(200);
    expect(await auditCount(app, 'chat.share_revoked', chat.id)).toBe(1);
    expect((await call(app, 'GET', `/api/v1/chats/shared/${shareId}`, { token: viewer.token })).status).toBe(404);
    expect((await call(app, 'DELETE', `/api/v1/chats/${chat.id}/share`, { token: owner.token })).status).toBe(404);
    const fresh = await call(app, 'POST', `/api/v1/chats/${chat.id}/share`, { token: owner.token });
    expect(fresh.status).toBe(201);
    expect(fresh.body.share_id).not.toBe(shareId);
    // Deleting the chat deletes its link.
    await call(app, 'DELETE', `/api/v1/chats/${chat.id}`, { token: owner.token });
    expect(
      (await call(app, 'GET', `/api/v1/chats/shared/${fresh.body.share_id}`, { token: viewer.token })).status,
    ).toBe(404);
  });

  it('ENABLE_COMMUNITY_SHARING=false: creating is refused and existing links stop resolving', async () => {
    const on = await createTestApp(b);
    apps.push(on);
    await signup(on);
    const owner = await makeUser(on);
    const viewer = await makeUser(on);
    const chat = (await call(on, 'POST', '/api/v1/chats', { token: owner.token, body: { title: 'x' } })).body;
    const shareId = (await call(on, 'POST', `/api/v1/chats/${chat.id}/share`, { token: owner.token })).body.share_id;
    expect((await call(on, 'GET', `/api/v1/chats/shared/${shareId}`, { token: viewer.token })).status).toBe(200);

    // The same database served with sharing off.
    const off = await createTestApp(b, { shareWith: on, env: { ENABLE_COMMUNITY_SHARING: 'false' } });
    apps.push(off);
    const r = await call(off, 'GET', `/api/v1/chats/shared/${shareId}`, { token: viewer.token });
    expect(r.status).toBe(404);
    const c = await call(off, 'POST', `/api/v1/chats/${chat.id}/share`, { token: owner.token });
    expect(c.status).toBe(403);
    expect(c.body.error.code).toBe('sharing_disabled');
    // The owner can still revoke; turning sharing back on does not resurrect a revoked link.
    expect((await call(off, 'DELETE', `/api/v1/chats/${chat.id}/share`, { token: owner.token })).status).toBe(200);
    expect((await call(on, 'GET', `/api/v1/chats/shared/${shareId}`, { token: viewer.token })).status).toBe(404);
  });
});
