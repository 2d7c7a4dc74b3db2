import { afterEach, expect, it } from 'vitest';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, sleep, type TestApp } from '../harness.js';

describeMatrix('chats: contract, folders, search', matrix(), (b) => {
  const apps: TestApp[] = [];
  const make = async (env: Record<string, string> = {}) => {
    const a = await createTestApp(b, { env });
    apps.push(a);
    return a;
  };
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('create, read, rename, pin, archive, delete; messages keep model, timestamps and usage', async () => {
    const app = await make();
    await signup(app);
    const { token } = await makeUser(app);
    const created = await call(app, 'POST', '/api/v1/chats', {
      token,
      body: {
        messages: [
          { role: 'system', content: 'Be brief.' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Describe this picture' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,AA' } },
            ],
          },
          {
            role: 'assistant',
            content: 'A cat.',
            model: 'llama3',
            usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
            created_at: 1_700_000_000_000,
          },
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }],
          },
          { role: 'tool', content: '42', tool_call_id: 'c1' },
        ],
      },
    });
    expect(created.status, created.text).toBe(201);
    const chat = created.body;
    expect(chat.title).toBe('Describe this picture');
    expect(chat.pinned).toBe(false);
    expect(chat.archived).toBe(false);
    expect(chat.share_id).toBeNull();
    expect(chat.messages).toHaveLength(5);
    expect(chat.messages[1].content[1].type).toBe('image_url');
    expect(chat.messages[2]).toMatchObject({
      role: 'assistant',
      content: 'A cat.',
      model: 'llama3',
      usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
      created_at: 1_700_000_000_000,
    });
    expect(chat.messages[3].tool_calls[0].id).toBe('c1');
    expect(chat.messages[4].tool_call_id).toBe('c1');
    expect(Object.keys(chat)).not.toContain('user_id');

    const read = await call(app, 'GET', `/api/v1/chats/${chat.id}`, { token });
    expect(read.status).toBe(200);
    expect(read.body.messages.map((m: { id: string }) => m.id)).toEqual(chat.messages.map((m: { id: string }) => m.id));

    const patched = await call(app, 'PATCH', `/api/v1/chats/${chat.id}`, {
      token,
      body: { title: 'Cats', pinned: true, archived: true },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ title: 'Cats', pinned: true, archived: true });
    expect((await call(app, 'PATCH', `/api/v1/chats/${chat.id}`, { token, body: {} })).status).toBe(400);
    expect((await call(app, 'PATCH', `/api/v1/chats/${chat.id}`, { token, body: { user_id: 'x' } })).status).toBe(400);

    const appended = await call(app, 'POST', `/api/v1/chats/${chat.id}/messages`, {
      token,
      body: { messages: [{ role: 'user', content: 'And a dog?' }] },
    });
    expect(appended.status).toBe(201);
    const mid = appended.body.items[0].id;
    const edited = await call(app, 'PATCH', `/api/v1/chats/${chat.id}/messages/${mid}`, {
      token,
      body: { content: 'And a horse?' },
    });
    expect(edited.status).toBe(200);
    expect(edited.body.content).toBe('And a horse?');
    expect((await call(app, 'DELETE', `/api/v1/chats/${chat.id}/messages/${mid}`, { token })).status).toBe(200);
    expect((await call(app, 'GET', `/api/v1/chats/${chat.id}`, { token })).body.messages).toHaveLength(5);

    expect((await call(app, 'DELETE', `/api/v1/chats/${chat.id}`, { token })).status).toBe(200);
    expect((await call(app, 'GET', `/api/v1/chats/${chat.id}`, { token })).status).toBe(404);
    expect(await app.ctx.db.selectFrom('chat_messages').select('id').where('chat_id', '=', chat.id).execute()).toEqual(
      [],
    );
  });

  it('concurrent appends get consecutive positions', async () => {
    const app = await make();
    await signup(app);
    const { token } = await makeUser(app);
    const chat = (await call(app, 'POST', '/api/v1/chats', { token, body: {} })).body;
    const rs = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        call(app, 'POST', `/api/v1/chats/${chat.id}/messages`, {
          token,
          body: {
            messages: [
              { role: 'user', content: `m${i}` },
              { role: 'assistant', content: `r${i}` },
            ],
          },
        }),
      ),
    );
    expect(rs.every((r) => r.status === 201)).toBe(true);
    const seqs = (
      await app.ctx.db.selectFrom('chat_messages').select('seq').where('chat_id', '=', chat.id).orderBy('seq').execute()
    ).map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const msgs = (await call(app, 'GET', `/api/v1/chats/${chat.id}`, { token })).body.messages as { content: string }[];
    for (let i = 0; i < 20; i += 2) expect(msgs[i + 1]!.content).toBe(msgs[i]!.content.replace('m', 'r'));
  });

  it('lists newest first with paging, filters archived/pinned/folder, and searches titles and content', async () => {
    const app = await make();
    await signup(app);
    const { token } = await makeUser(app);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(app, 'POST', '/api/v1/chats', {
        token,
        body: { title: `Chat ${i}`, messages: [{ role: 'user', content: `body ${i}` }] },
      });
      ids.push(r.body.id);
      await sleep(3);
    }
    const p1 = await call(app, 'GET', '/api/v1/chats?limit=2', { token });
    expect(p1.body.total).toBe(5);
    expect(p1.body.items.map((c: { id: string }) => c.id)).toEqual([ids[4], ids[3]]);
    const p3 = await call(app, 'GET', '/api/v1/chats?limit=2&page=3', { token });
    expect(p3.body.items.map((c: { id: string }) => c.id)).toEqual([ids[0]]);
    // Updating a chat moves it to the top.
    await call(app, 'POST', `/api/v1/chats/${ids[1]}/messages`, {
      token,
      body: { messages: [{ role: 'user', content: 'The Quokka_100% answer' }] },
    });
    expect((await call(app, 'GET', '/api/v1/chats?limit=1', { token })).body.items[0].id).toBe(ids[1]);

    // Search: content (case-insensitive, LIKE wildcards are literal) and title.
    const s1 = await call(app, 'GET', '/api/v1/chats', { token, query: { q: 'quokka_100%' } });
    expect(s1.body.items.map((c: { id: string }) => c.id)).toEqual([ids[1]]);
    expect((await call(app, 'GET', '/api/v1/chats', { token, query: { q: 'quokka_1000' } })).body.total).toBe(0);
    expect((await call(app, 'GET', '/api/v1/chats', { token, query: { q: '%' } })).body.total).toBe(1);
    const s2 = await call(app, 'GET', '/api/v1/chats', { token, query: { q: 'chat 3' } });
    expect(s2.body.items.map((c: { id: string }) => c.id)).toEqual([ids[3]]);

    // Archived chats leave the default list; pinned filter; folder filter.
    await call(app, 'PATCH', `/api/v1/chats/${ids[0]}`, { token, body: { archived: true } });
    await call(app, 'PATCH', `/api/v1/chats/${ids[2]}`, { token, body: { pinned: true } });
    expect((await call(app, 'GET', '/api/v1/chats', { token })).body.total).toBe(4);
    expect(
      (await call(app, 'GET', '/api/v1/chats?archived=true', { token })).body.items.map((c: { id: string }) => c.id),
    ).toEqual([ids[0]]);
    expect((await call(app, 'GET', '/api/v1/chats?archived=all', { token })).body.total).toBe(5);
    expect(
      (await call(app, 'GET', '/api/v1/chats?pinned=true', { token })).body.items.map((c: { id: string }) => c.id),
    ).toEqual([ids[2]]);

    const folder = await call(app, 'POST', '/api/v1/folders', { token, body: { name: 'Projects' } });
    expect(folder.status).toBe(201);
    expect(
      (await call(app, 'PATCH', `/api/v1/chats/${ids[3]}`, { token, body: { folder_id: folder.body.id } })).body
        .folder_id,
    ).toBe(folder.body.id);
    const inFolder = await call(app, 'GET', `/api/v1/chats?folder_id=${folder.body.id}`, { token });
    expect(inFolder.body.items.map((c: { id: string }) => c.id)).toEqual([ids[3]]);
    const renamed = await call(app, 'PATCH', `/api/v1/folders/${folder.body.id}`, { token, body: { name: 'Work' } });
    expect(renamed.body.name).toBe('Work');
    expect(
      (await call(app, 'GET', '/api/v1/folders', { token })).body.items.map((f: { name: string }) => f.name),
    ).toEqual(['Work']);
    // Deleting the folder keeps its chats, outside any folder.
    expect((await call(app, 'DELETE', `/api/v1/folders/${folder.body.id}`, { token })).status).toBe(200);
    expect((await call(app, 'GET', `/api/v1/chats/${ids[3]}`, { token })).body.folder_id).toBeNull();
    // Taking a chat out of a folder explicitly.
    const f2 = await call(app, 'POST', '/api/v1/folders', { token, body: { name: 'F2' } });
    const inF2 = await call(app, 'POST', '/api/v1/chats', { token, body: { folder_id: f2.body.id } });
    expect(inF2.body.folder_id).toBe(f2.body.id);
    expect(
      (await call(app, 'PATCH', `/api/v1/chats/${inF2.body.id}`, { token, body: { folder_id: null } })).body.folder_id,
    ).toBeNull();
  });

  it('refuses unknown fields, invalid roles and oversized lists', async () => {
    const app = await make();
    await signup(app);
    const { token } = await makeUser(app);
    for (const body of [
      { user_id: 'someone' },
      { messages: [{ role: 'root', content: 'x' }] },
      { messages: [{ role: 'user', content: 'x', id: 'client-id' }] },
      { messages: Array.from({ length: 1001 }, () => ({ role: 'user', content: 'x' })) },
    ]) {
      const r = await call(app, 'POST', '/api/v1/chats', { token, body });
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(r.body.error.code).toBe('validation_failed');
    }
    expect((await call(app, 'GET', '/api/v1/chats', { token, query: { user_id: 'x' } })).status).toBe(400);
    expect((await call(app, 'GET', '/api/v1/chats')).status).toBe(401);
    const pending = await makeUser(app, { role: 'pending' });
    expect((await call(app, 'GET', '/api/v1/chats', { token: pending.token })).status).toBe(403);
  });
});
