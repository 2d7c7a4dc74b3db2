import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ToolCallAssembler } from '../../server/modules/chats/gateway-link.js';
import { upload } from '../files/multipart.js';
import { describeMatrix, matrix, sleep } from '../harness.js';
import { call, gatewayEnv, grantModel, sseData, userWithKey, type GatewayEnv } from '../gateway/helpers.js';

/**
 * A chat linked to a completion (`chat_id`) keeps the reply's tool calls (streamed fragments
 * assembled by index, or the non-streamed `message.tool_calls`) and the citations HridaAI attached;
 * the chat routes and both exports return them.
 */
interface Stored {
  id: string;
  role: string;
  content: unknown;
  tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[];
  citations?: { index: number; title: string; file_id: string | null; text: string }[];
}

const CALLS = [
  { id: 'call_weather', name: 'get_weather', arguments: '{"city":"Perth","unit":"celsius"}' },
  { id: 'call_time', name: 'get_time', arguments: '{"zone":"Australia/Perth"}' },
];
const expectedCalls = CALLS.map((c) => ({
  id: c.id,
  type: 'function',
  function: { name: c.name, arguments: c.arguments },
}));

describeMatrix('chats: tool calls and citations saved with linked replies', matrix(), (b) => {
  let env: GatewayEnv;
  let alice: Awaited<ReturnType<typeof userWithKey>>;
  let bob: Awaited<ReturnType<typeof userWithKey>>;
  let aliceFile: string;

  beforeAll(async () => {
    env = await gatewayEnv(b, { env: { USER_PERMISSIONS_FEATURES_API_KEYS: 'true', ENABLE_ADMIN_EXPORT: 'true' } });
    alice = await userWithKey(env);
    bob = await userWithKey(env);
    await grantModel(env, 'mock-gpt', { user: alice.id });
    await grantModel(env, 'mock-gpt', { user: bob.id });
    const f = await upload(env.app, alice.token, [
      { filename: 'quokka.txt', content: 'The quokka lives on Rottnest island near Perth.' },
    ]);
    expect(f.status, JSON.stringify(f.body)).toBe(201);
    aliceFile = f.body.id;
  });
  afterAll(async () => env?.close());
  beforeEach(() => env.openai.reset());
  const completions = () =>
    env.openai.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/chat/completions'));

  const newChat = async (token: string) => {
    const r = await call(env.app, 'POST', '/api/v1/chats', { token, body: { title: 'extras' } });
    expect(r.status, r.text).toBe(201);
    return r.body.id as string;
  };
  const messagesOf = async (chatId: string, token = alice.token) => {
    const r = await call(env.app, 'GET', `/api/v1/chats/${chatId}`, { token });
    expect(r.status, r.text).toBe(200);
    return r.body.messages as Stored[];
  };
  async function waitForCount(chatId: string, n: number) {
    for (let i = 0; i < 100; i++) {
      const m = await messagesOf(chatId);
      if (m.length >= n) return m;
      await sleep(20);
    }
    throw new Error('the completion was not appended');
  }
  const stream = (token: string, body: Record<string, unknown>) =>
    fetch(`${env.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-gpt', stream: true, ...body }),
    });

  it('streamed tool-call fragments are assembled by index and saved with the reply', async () => {
    env.openai.set({ chunks: 2, toolCalls: CALLS, toolCallPieceSize: 5 });
    const chatId = await newChat(alice.token);
    const res = await stream(alice.key, { chat_id: chatId, messages: [{ role: 'user', content: 'weather?' }] });
    expect(res.status).toBe(200);
    const events = sseData(await res.text());
    // The client got the calls in many fragments, interleaved: the link had to assemble them.
    const fragments = events.filter((e) => e.includes('"tool_calls"'));
    expect(fragments.length).toBeGreaterThan(10);
    expect(fragments.filter((e) => e.includes('"index":1')).length).toBeGreaterThan(3);
    const msgs = await waitForCount(chatId, 2);
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(msgs[1]!.content).toBe('tok0 tok1 ');
    expect(msgs[1]!.tool_calls).toEqual(expectedCalls);
    expect(JSON.parse(msgs[1]!.tool_calls![0]!.function.arguments)).toEqual({ city: 'Perth', unit: 'celsius' });
    expect(msgs[1]!.citations).toBeUndefined();

    // An answer that is only tool calls is stored with null content.
    env.openai.set({ chunks: 0, toolCalls: [CALLS[1]!], toolCallPieceSize: 3 });
    const only = await stream(alice.token, {
      chat_id: chatId,
      messages: [{ role: 'user', content: 'time?' }],
    });
    expect(only.status).toBe(200);
    await only.text();
    const after = await waitForCount(chatId, 4);
    expect(after[3]).toMatchObject({ role: 'assistant', content: null, tool_calls: [expectedCalls[1]] });
  });

  it('non-streamed message.tool_calls are saved with the reply', async () => {
    env.openai.set({ chunks: 0, toolCalls: CALLS });
    const chatId = await newChat(alice.token);
    const r = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: alice.key,
      body: { model: 'mock-gpt', chat_id: chatId, messages: [{ role: 'user', content: 'weather?' }] },
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.choices[0].message.tool_calls).toHaveLength(2);
    const msgs = await waitForCount(chatId, 2);
    expect(msgs[1]).toMatchObject({ role: 'assistant', content: null, tool_calls: expectedCalls });
  });

  it('citations are saved with the reply and returned when the chat is read again (and in both exports)', async () => {
    const chatId = await newChat(alice.token);
    const ask = 'Where does the quokka live?';
    const r = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: alice.key,
      body: {
        model: 'mock-gpt',
        chat_id: chatId,
        files: [{ type: 'file', id: aliceFile }],
        messages: [{ role: 'user', content: ask }],
      },
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.citations).toHaveLength(1);
    const msgs = await waitForCount(chatId, 2);
    expect(msgs[1]!.citations).toEqual(r.body.citations);
    expect(msgs[1]!.citations![0]).toMatchObject({ index: 1, title: 'quokka.txt', file_id: aliceFile });
    expect(msgs[1]!.citations![0]!.text).toContain('Rottnest');
    expect(msgs[0]!.citations).toBeUndefined();

    // Streaming: the hridaai.citations event is not part of the relayed chunks; it is saved all the same.
    const res = await stream(alice.token, {
      chat_id: chatId,
      files: [{ type: 'file', id: aliceFile }],
      messages: [{ role: 'user', content: 'And the quokka island?' }],
    });
    expect(res.status).toBe(200);
    const sent = sseData(await res.text()).map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
    const event = sent.find((d) => d?.object === 'hridaai.citations');
    expect(event.citations).toHaveLength(1);
    const after = await waitForCount(chatId, 4);
    expect(after[3]!.content).toBe('tok0 tok1 tok2 ');
    expect(after[3]!.citations).toEqual(event.citations);

    // The personal-data export and the admin export carry the same fields.
    const mine = await call(env.app, 'GET', '/api/v1/users/me/export', { token: alice.token });
    expect(mine.status, mine.text).toBe(200);
    const exported = (mine.body.chats as { id: string; messages: Stored[] }[]).find((c) => c.id === chatId)!;
    expect(exported.messages[1]!.citations).toEqual(r.body.citations);
    expect(exported.messages[3]!.citations).toEqual(event.citations);
    const all = await call(env.app, 'GET', '/api/v1/chats/export', { token: env.admin.token });
    expect(all.status).toBe(200);
    const line = all.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; messages: Stored[] })
      .find((c) => c.id === chatId)!;
    expect(line.messages[3]!.citations).toEqual(event.citations);
  });

  it('another user’s chat_id is 404 before dispatch: no tool calls or citations are saved anywhere', async () => {
    env.openai.set({ toolCalls: CALLS });
    const chatId = await newChat(alice.token);
    for (const streamIt of [false, true]) {
      const r = await call(env.app, 'POST', '/api/v1/chat/completions', {
        token: bob.key,
        body: {
          model: 'mock-gpt',
          stream: streamIt,
          chat_id: chatId,
          messages: [{ role: 'user', content: 'injected' }],
        },
      });
      expect(r.status, r.text).toBe(404);
    }
    expect(completions()).toHaveLength(0);
    await sleep(100);
    expect(await messagesOf(chatId)).toEqual([]);
  });

  it('the chat routes accept citations on a message (validated) and return them; not in another user’s chat', async () => {
    const chatId = await newChat(alice.token);
    const citation = {
      index: 1,
      title: 'notes.md',
      source_type: 'file',
      url: null,
      file_id: 'f1',
      knowledge_id: null,
      text: 'A passage',
    };
    const ok = await call(env.app, 'POST', `/api/v1/chats/${chatId}/messages`, {
      token: alice.token,
      body: { messages: [{ role: 'assistant', content: 'See [1].', citations: [citation] }] },
    });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body.items[0].citations).toEqual([citation]);
    expect((await messagesOf(chatId))[0]!.citations).toEqual([citation]);

    for (const bad of [
      [{ ...citation, extra: 1 }],
      [{ ...citation, source_type: 'mail' }],
      [{ ...citation, text: 'x'.repeat(20_001) }],
      Array.from({ length: 65 }, () => citation),
      'not a list',
    ]) {
      const r = await call(env.app, 'POST', `/api/v1/chats/${chatId}/messages`, {
        token: alice.token,
        body: { messages: [{ role: 'assistant', content: 'x', citations: bad }] },
      });
      expect(r.status, r.text).toBe(400);
    }
    const foreign = await call(env.app, 'POST', `/api/v1/chats/${chatId}/messages`, {
      token: bob.token,
      body: { messages: [{ role: 'assistant', content: 'x', citations: [citation] }] },
    });
    expect(foreign.status).toBe(404);
    expect(await messagesOf(chatId)).toHaveLength(1);
    expect((await call(env.app, 'GET', `/api/v1/chats/${chatId}`, { token: bob.token })).status).toBe(404);
  });
});

describe('ToolCallAssembler', () => {
  it('assembles interleaved fragments by index, in index order', () => {
    const a = new ToolCallAssembler();
    a.add([{ index: 1, id: 'b', type: 'function', function: { name: 'two', arguments: '' } }]);
    a.add([{ index: 0, id: 'a', type: 'function', function: { name: 'one', arguments: '{"x"' } }]);
    a.add([{ index: 1, function: { arguments: '{}' } }]);
    a.add([{ index: 0, function: { arguments: ':1}' } }]);
    expect(a.result()).toEqual([
      { id: 'a', type: 'function', function: { name: 'one', arguments: '{"x":1}' } },
      { id: 'b', type: 'function', function: { name: 'two', arguments: '{}' } },
    ]);
  });

  it('concatenates a split name but not a repeated one; fragments without index follow their id', () => {
    const a = new ToolCallAssembler();
    a.add([{ index: 0, id: 'a', function: { name: 'get_', arguments: '' } }]);
    a.add([{ index: 0, function: { name: 'weather' } }]);
    a.add([{ index: 0, id: 'a', function: { name: 'get_weather', arguments: '{}' } }]);
    a.add([{ id: 'b', function: { name: 'other', arguments: '[' } }]);
    a.add([{ function: { arguments: ']' } }]);
    expect(a.result()).toEqual([
      { id: 'a', type: 'function', function: { name: 'get_weather', arguments: '{}' } },
      { id: 'b', type: 'function', function: { name: 'other', arguments: '[]' } },
    ]);
  });

  it('ignores malformed fragments and out-of-range indexes; nothing assembled is undefined', () => {
    const a = new ToolCallAssembler();
    a.add('nope');
    a.add([null, 7, { index: -1, id: 'x' }, { index: 500, id: 'y' }, { index: 0, function: 'str' }]);
    expect(a.result()).toEqual([{ id: '', type: 'function', function: { name: '', arguments: '' } }]);
    expect(new ToolCallAssembler().result()).toBeUndefined();
  });
});
