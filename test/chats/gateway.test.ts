import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { describeMatrix, matrix, sleep } from '../harness.js';
import { call, gatewayEnv, grantModel, sseData, userWithKey, type GatewayEnv } from '../gateway/helpers.js';

/** `chat_id` in a chat-completion request appends to that chat only if the caller owns it. */
describeMatrix('chats: chat_id in chat completions', matrix(), (b) => {
  let env: GatewayEnv;
  let alice: Awaited<ReturnType<typeof userWithKey>>;
  let bob: Awaited<ReturnType<typeof userWithKey>>;

  beforeAll(async () => {
    env = await gatewayEnv(b, { env: { USER_PERMISSIONS_FEATURES_API_KEYS: 'true' } });
    alice = await userWithKey(env);
    bob = await userWithKey(env);
    await grantModel(env, 'mock-gpt', { user: alice.id });
    await grantModel(env, 'mock-gpt', { user: bob.id });
  });
  afterAll(async () => env?.close());
  beforeEach(() => env.openai.reset());
  const completions = () =>
    env.openai.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/chat/completions'));

  const messagesOf = async (chatId: string, token: string) =>
    (await call(env.app, 'GET', `/api/v1/chats/${chatId}`, { token })).body.messages as {
      role: string;
      content: string;
      model: string | null;
      usage: Record<string, number> | null;
    }[];
  async function waitForCount(chatId: string, token: string, n: number) {
    for (let i = 0; i < 100; i++) {
      if ((await messagesOf(chatId, token)).length >= n) return;
      await sleep(20);
    }
    throw new Error('the completion was not appended');
  }

  it('appends the new turn and the reply (model, usage) to the caller’s chat; chat_id never goes upstream', async () => {
    const chat = (await call(env.app, 'POST', '/api/v1/chats', { token: alice.token, body: { title: 'via gateway' } }))
      .body;
    const r = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: alice.key,
      body: { model: 'mock-gpt', chat_id: chat.id, messages: [{ role: 'user', content: 'hello there friend' }] },
    });
    expect(r.status, r.text).toBe(200);
    expect(completions()).toHaveLength(1);
    expect(completions()[0]!.body.chat_id).toBeUndefined();
    await waitForCount(chat.id, alice.token, 2);
    const msgs = await messagesOf(chat.id, alice.token);
    expect(msgs.map((m) => [m.role, m.content])).toEqual([
      ['user', 'hello there friend'],
      ['assistant', 'tok0 tok1 tok2 '],
    ]);
    expect(msgs[1]!.model).toBe('mock-gpt');
    expect(msgs[1]!.usage).toMatchObject({ total_tokens: 6 });

    // Streaming, with the history in the request: only the new turn and the reply are appended.
    const res = await fetch(`${env.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'mock-gpt',
        stream: true,
        chat_id: chat.id,
        messages: [
          { role: 'user', content: 'hello there friend' },
          { role: 'assistant', content: 'tok0 tok1 tok2 ' },
          { role: 'user', content: 'and again' },
        ],
      }),
    });
    expect(res.status).toBe(200);
    expect(sseData(await res.text()).at(-1)).toBe('[DONE]');
    await waitForCount(chat.id, alice.token, 4);
    const after = await messagesOf(chat.id, alice.token);
    expect(after.slice(2).map((m) => [m.role, m.content, m.model])).toEqual([
      ['user', 'and again', null],
      ['assistant', 'tok0 tok1 tok2 ', 'mock-gpt'],
    ]);
  });

  it('another user’s chat_id (or one that does not exist) is 404 before dispatch, and nothing is appended', async () => {
    const chat = (
      await call(env.app, 'POST', '/api/v1/chats', {
        token: alice.token,
        body: { title: 'alice only', messages: [{ role: 'user', content: 'mine' }] },
      })
    ).body;
    for (const [token, chatId] of [
      [bob.key, chat.id],
      [bob.token, chat.id],
      [alice.key, 'no-such-chat'],
    ]) {
      const r = await call(env.app, 'POST', '/api/v1/chat/completions', {
        token,
        body: { model: 'mock-gpt', chat_id: chatId, messages: [{ role: 'user', content: 'injected' }] },
      });
      expect(r.status, r.text).toBe(404);
      expect(r.text.includes('mine')).toBe(false);
    }
    const bad = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: alice.key,
      body: { model: 'mock-gpt', chat_id: 12, messages: [{ role: 'user', content: 'x' }] },
    });
    expect(bad.status).toBe(400);
    // Nothing reached the model, and the chat is as it was.
    expect(completions()).toHaveLength(0);
    await sleep(100);
    expect((await messagesOf(chat.id, alice.token)).map((m) => m.content)).toEqual(['mine']);
    // Without chat_id nothing is stored anywhere.
    const before = (await call(env.app, 'GET', '/api/v1/chats', { token: bob.token })).body.total;
    const plain = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: bob.key,
      body: { model: 'mock-gpt', messages: [{ role: 'user', content: 'no chat' }] },
    });
    expect(plain.status).toBe(200);
    expect((await call(env.app, 'GET', '/api/v1/chats', { token: bob.token })).body.total).toBe(before);
  });
  it('memories are added to chat requests only when the owner turned it on (and never someone else’s)', async () => {
    await call(env.app, 'POST', '/api/v1/memories', {
      token: alice.token,
      body: { content: 'Alice prefers metric units' },
    });
    const chat = (await call(env.app, 'POST', '/api/v1/chats', { token: alice.token, body: {} })).body;
    const ask = (token: string, chatId?: string) =>
      call(env.app, 'POST', '/api/v1/chat/completions', {
        token,
        body: {
          model: 'mock-gpt',
          ...(chatId ? { chat_id: chatId } : {}),
          messages: [{ role: 'user', content: 'hi' }],
        },
      });
    const systemOf = () =>
      completions()
        .at(-1)!
        .body.messages.filter((m: { role: string }) => m.role === 'system');
    expect((await ask(alice.key, chat.id)).status).toBe(200);
    expect(systemOf()).toEqual([]);
    await call(env.app, 'PUT', '/api/v1/memories/settings', { token: alice.token, body: { inject_into_chats: true } });
    expect((await ask(alice.key, chat.id)).status).toBe(200);
    expect(systemOf()).toHaveLength(1);
    expect(systemOf()[0].content).toContain('Alice prefers metric units');
    // Not without a chat, and not for Bob's chats.
    expect((await ask(alice.key)).status).toBe(200);
    expect(systemOf()).toEqual([]);
    const bobChat = (await call(env.app, 'POST', '/api/v1/chats', { token: bob.token, body: {} })).body;
    await call(env.app, 'PUT', '/api/v1/memories/settings', { token: bob.token, body: { inject_into_chats: true } });
    expect((await ask(bob.key, bobChat.id)).status).toBe(200);
    expect(JSON.stringify(completions().at(-1)!.body).includes('metric')).toBe(false);
  });
});
