import { afterEach, expect, it } from 'vitest';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';

/**
 * "Another user's id → 404" for every route that carries a chat, message or folder id — in the
 * path, the query or the body — and proof that nothing of the owner's changed.
 */
describeMatrix('chats: ownership negatives', matrix(), (b) => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('every chat, message and folder id of another user answers 404 and changes nothing', async () => {
    const app = await createTestApp(b);
    apps.push(app);
    await signup(app);
    const alice = await makeUser(app);
    const bob = await makeUser(app);
    const A = alice.token;
    const B = bob.token;

    const aFolder = (await call(app, 'POST', '/api/v1/folders', { token: A, body: { name: 'Alice folder' } })).body;
    const aChat = (
      await call(app, 'POST', '/api/v1/chats', {
        token: A,
        body: { title: 'Alice chat', folder_id: aFolder.id, messages: [{ role: 'user', content: 'alice secret' }] },
      })
    ).body;
    const aMsg = aChat.messages[0].id as string;
    await call(app, 'POST', `/api/v1/chats/${aChat.id}/share`, { token: A });
    const bChat = (
      await call(app, 'POST', '/api/v1/chats', { token: B, body: { messages: [{ role: 'user', content: 'bob' }] } })
    ).body;
    const bMsg = bChat.messages[0].id as string;
    const bFolder = (await call(app, 'POST', '/api/v1/folders', { token: B, body: { name: 'Bob folder' } })).body;

    const snapshot = async () => ({
      chat: (await call(app, 'GET', `/api/v1/chats/${aChat.id}`, { token: A })).body,
      folders: (await call(app, 'GET', '/api/v1/folders', { token: A })).body,
    });
    const before = await snapshot();

    const attempts: [string, string, unknown?][] = [
      ['GET', `/api/v1/chats/${aChat.id}`],
      ['PATCH', `/api/v1/chats/${aChat.id}`, { title: 'pwned' }],
      ['PATCH', `/api/v1/chats/${aChat.id}`, { folder_id: bFolder.id }],
      ['DELETE', `/api/v1/chats/${aChat.id}`],
      ['POST', `/api/v1/chats/${aChat.id}/messages`, { messages: [{ role: 'user', content: 'injected' }] }],
      ['PATCH', `/api/v1/chats/${aChat.id}/messages/${aMsg}`, { content: 'pwned' }],
      ['DELETE', `/api/v1/chats/${aChat.id}/messages/${aMsg}`],
      // Mixed: Bob's chat with Alice's message, Alice's chat with Bob's message.
      ['PATCH', `/api/v1/chats/${bChat.id}/messages/${aMsg}`, { content: 'pwned' }],
      ['DELETE', `/api/v1/chats/${bChat.id}/messages/${aMsg}`],
      ['PATCH', `/api/v1/chats/${aChat.id}/messages/${bMsg}`, { content: 'pwned' }],
      ['POST', `/api/v1/chats/${aChat.id}/share`],
      ['DELETE', `/api/v1/chats/${aChat.id}/share`],
      ['PATCH', `/api/v1/folders/${aFolder.id}`, { name: 'pwned' }],
      ['DELETE', `/api/v1/folders/${aFolder.id}`],
      // Ids in bodies and queries: moving into, creating in, or listing someone else's folder.
      ['PATCH', `/api/v1/chats/${bChat.id}`, { folder_id: aFolder.id }],
      ['POST', '/api/v1/chats', { title: 'x', folder_id: aFolder.id }],
      ['GET', `/api/v1/chats?folder_id=${aFolder.id}`],
    ];
    for (const [method, url, body] of attempts) {
      const r = await call(app, method, url, { token: B, body });
      expect(r.status, `${method} ${url}`).toBe(404);
      expect(r.body.error.code).toBe('not_found');
      expect(r.text.includes('alice secret')).toBe(false);
    }
    // Nothing changed for Alice; Bob's chat is untouched by the refused moves.
    expect(await snapshot()).toEqual(before);
    const bNow = (await call(app, 'GET', `/api/v1/chats/${bChat.id}`, { token: B })).body;
    expect(bNow.folder_id).toBeNull();
    expect(bNow.messages.map((m: { content: string }) => m.content)).toEqual(['bob']);
    // A refused create left no chat behind.
    expect((await call(app, 'GET', '/api/v1/chats', { token: B })).body.total).toBe(1);
    // Bob's list and search never show Alice's chat.
    expect(
      (await call(app, 'GET', '/api/v1/chats', { token: B, query: { q: 'alice', archived: 'all' } })).body.total,
    ).toBe(0);
    expect(
      (await call(app, 'GET', '/api/v1/folders', { token: B })).body.items.map((f: { id: string }) => f.id),
    ).toEqual([bFolder.id]);
    // A non-admin cannot use the admin routes either.
    expect((await call(app, 'GET', `/api/v1/users/${alice.user.id}/chats`, { token: B })).status).toBe(403);
    expect((await call(app, 'GET', '/api/v1/chats/export', { token: B })).status).toBe(403);
  });
});
