import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { describeMatrix, makeUser, matrix } from '../harness.js';
import { upload } from '../files/multipart.js';
import { call, gatewayEnv, grantModel, sseData, type GatewayEnv } from '../gateway/helpers.js';

type U = { token: string; user: { id: string } };

describeMatrix('knowledge attached to chat completions', matrix(), (b) => {
  let env: GatewayEnv;
  let alice: U;
  let bob: U;
  let aliceKb: string;
  let aliceKbFile: string;
  let aliceFile: string;
  let bobFile: string;

  const chats = () => env.openai.requests.filter((r) => r.path === '/v1/chat/completions');
  const ask = (u: U, body: Record<string, unknown>) =>
    call(env.app, 'POST', '/api/v1/chat/completions', { token: u.token, body });
  const question = (text: string, extra: Record<string, unknown> = {}) => ({
    model: 'mock-gpt',
    messages: [{ role: 'user', content: text }],
    ...extra,
  });
  const systemText = (rec: { body: { messages: { role: string; content: string }[] } }) =>
    rec.body.messages
      .filter((m) => m.role === 'system')
      .map((m) => m.content)
      .join('\n');

  async function uploadText(u: U, name: string, text: string): Promise<string> {
    const f = await upload(env.app, u.token, [{ filename: name, content: text }]);
    expect(f.status, JSON.stringify(f.body)).toBe(201);
    return f.body.id;
  }

  beforeAll(async () => {
    env = await gatewayEnv(b, {
      listen: false,
      env: {
        USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS: 'true',
        USER_PERMISSIONS_WORKSPACE_MODELS_ACCESS: 'true',
        USER_PERMISSIONS_FEATURES_API_KEYS: 'true',
      },
    });
    alice = await makeUser(env.app);
    bob = await makeUser(env.app);
    await grantModel(env, 'mock-gpt', { user: alice.user.id });
    await grantModel(env, 'mock-gpt', { user: bob.user.id });
    const kb = await call(env.app, 'POST', '/api/v1/knowledge', { token: alice.token, body: { name: 'Islands' } });
    expect(kb.status, kb.text).toBe(201);
    aliceKb = kb.body.id;
    aliceKbFile = await uploadText(alice, 'islands.txt', 'The quokka lives on Rottnest island near Perth.');
    const added = await call(env.app, 'POST', `/api/v1/knowledge/${aliceKb}/files`, {
      token: alice.token,
      body: { file_id: aliceKbFile },
    });
    expect(added.status, added.text).toBe(201);
    aliceFile = await uploadText(alice, 'fish.md', '# Fish\n\nThe zebrafish regenerates its fins within weeks.');
    bobFile = await uploadText(bob, 'bob.txt', 'The axolotl regrows whole limbs.');
  });
  afterAll(async () => env?.close());
  beforeEach(() => env.openai.reset());

  it("another user's or an unknown file or knowledge id is 404 and nothing is dispatched", async () => {
    const cases = [
      { type: 'file', id: aliceFile },
      { type: 'file', id: aliceKbFile },
      { type: 'knowledge', id: aliceKb },
      { type: 'file', id: 'no-such-file' },
      { type: 'knowledge', id: 'no-such-kb' },
      // a knowledge id passed as a file and the other way round is not a shortcut
      { type: 'file', id: aliceKb },
      { type: 'knowledge', id: aliceFile },
    ];
    for (const stream of [false, true])
      for (const f of cases) {
        // one readable attachment first: every id is authorised, not just the first
        const r = await ask(bob, question('quokka zebrafish', { stream, files: [{ type: 'file', id: bobFile }, f] }));
        expect(r.status, `${JSON.stringify(f)} ${r.text}`).toBe(404);
        expect(r.body.error).toMatchObject({ type: 'not_found_error', code: 'not_found' });
        expect(r.text).not.toMatch(/quokka|zebrafish|Rottnest/);
      }
    expect(chats()).toHaveLength(0);
    // malformed attachments are refused before dispatch too
    for (const files of [[{ type: 'url', id: 'x' }], [{ type: 'file' }], [{ type: 'file', id: bobFile, extra: 1 }]]) {
      const r = await ask(bob, question('axolotl', { files }));
      expect(r.status, JSON.stringify(files)).toBe(400);
    }
    expect(chats()).toHaveLength(0);
  });

  it('non-streaming: passages become a numbered system message and the response carries citations', async () => {
    const r = await ask(
      alice,
      question('What does the zebrafish regenerate?', { files: [{ type: 'file', id: aliceFile }] }),
    );
    expect(r.status, r.text).toBe(200);
    expect(r.body.choices[0].message.content).toBe('tok0 tok1 tok2 ');
    expect(r.body.citations).toHaveLength(1);
    expect(r.body.citations[0]).toMatchObject({
      index: 1,
      title: 'fish.md',
      source_type: 'file',
      file_id: aliceFile,
      knowledge_id: null,
    });
    expect(r.body.citations[0].text).toContain('zebrafish regenerates');
    const sent = chats();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.body.files).toBeUndefined();
    expect(sent[0]!.body.messages[0].role).toBe('system');
    expect(systemText(sent[0]!)).toContain('[1] fish.md');
    expect(systemText(sent[0]!)).toContain('zebrafish regenerates its fins');
    expect(sent[0]!.body.messages.at(-1)).toEqual({ role: 'user', content: 'What does the zebrafish regenerate?' });

    // without attachments the response has no citations member
    const plain = await ask(alice, question('hello'));
    expect(plain.status).toBe(200);
    expect(plain.body.citations).toBeUndefined();
  });

  it('streaming: one hridaai.citations event before the first chunk', async () => {
    const r = await ask(
      alice,
      question('Where does the quokka live?', {
        stream: true,
        files: [
          { type: 'knowledge', id: aliceKb },
          { type: 'file', id: aliceFile },
        ],
      }),
    );
    expect(r.status, r.text).toBe(200);
    const events = sseData(r.text);
    const first = JSON.parse(events[0]!);
    expect(first.object).toBe('hridaai.citations');
    expect(first.citations).toHaveLength(1);
    expect(first.citations[0]).toMatchObject({
      index: 1,
      title: 'islands.txt',
      knowledge_id: aliceKb,
      file_id: aliceKbFile,
    });
    expect(first.citations[0].text).toContain('Rottnest');
    expect(events.filter((e) => e.includes('hridaai.citations'))).toHaveLength(1);
    expect(JSON.parse(events[1]!).object).toBe('chat.completion.chunk');
    expect(events.at(-1)).toBe('[DONE]');
    expect(systemText(chats()[0]!)).toContain('Rottnest');
    expect(chats()[0]!.body.files).toBeUndefined();
  });

  it('retrieval follows grants: grant → passage appears, revoke → gone', async () => {
    expect((await ask(bob, question('quokka', { files: [{ type: 'knowledge', id: aliceKb }] }))).status).toBe(404);
    const g = await call(env.app, 'POST', `/api/v1/access/knowledge/${aliceKb}/grants`, {
      token: alice.token,
      body: { principal_type: 'user', principal_id: bob.user.id, permission: 'read' },
    });
    expect(g.status, g.text).toBeLessThan(300);
    const granted = await ask(bob, question('quokka', { files: [{ type: 'knowledge', id: aliceKb }] }));
    expect(granted.status, granted.text).toBe(200);
    expect(granted.body.citations.map((c: { text: string }) => c.text).join(' ')).toContain('Rottnest');
    // the base's file is readable through the base while the grant lasts
    const viaFile = await ask(bob, question('quokka', { files: [{ type: 'file', id: aliceKbFile }] }));
    expect(viaFile.status, viaFile.text).toBe(200);
    expect(viaFile.body.citations[0].text).toContain('Rottnest');
    expect(systemText(chats().at(-1)!)).toContain('Rottnest');

    const grantId = g.body.id ?? g.body.grant?.id;
    const rv = await call(env.app, 'DELETE', `/api/v1/access/knowledge/${aliceKb}/grants/${grantId}`, {
      token: alice.token,
    });
    expect(rv.status, rv.text).toBeLessThan(300);
    const before = chats().length;
    for (const f of [
      { type: 'knowledge', id: aliceKb },
      { type: 'file', id: aliceKbFile },
    ]) {
      const r = await ask(bob, question('quokka', { files: [f] }));
      expect(r.status).toBe(404);
      expect(r.text).not.toContain('Rottnest');
    }
    expect(chats()).toHaveLength(before);
  });

  it("API keys: the key's allowed_endpoints still apply; attachments are authorised for the key's owner", async () => {
    const key = async (allowed: string[]) => {
      const r = await call(env.app, 'POST', '/api/v1/api-keys', {
        token: alice.token,
        body: { name: `k-${allowed.join()}`, allowed_endpoints: allowed },
      });
      expect(r.status, r.text).toBe(201);
      return r.body.key as string;
    };
    const modelsOnly = await key(['/api/v1/models']);
    const chatKey = await key(['/api/v1/chat/completions']);
    const body = question('zebrafish', { files: [{ type: 'file', id: aliceFile }] });
    const refused = await call(env.app, 'POST', '/api/v1/chat/completions', { token: modelsOnly, body });
    expect(refused.status, refused.text).toBe(403);
    expect(chats()).toHaveLength(0);
    const ok = await call(env.app, 'POST', '/api/v1/chat/completions', { token: chatKey, body });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.citations[0].file_id).toBe(aliceFile);
    const other = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: chatKey,
      body: question('axolotl', { files: [{ type: 'file', id: bobFile }] }),
    });
    expect(other.status).toBe(404);
    expect(chats()).toHaveLength(1);
  });

  it("a preset's knowledge is retrieved only where the caller may read it", async () => {
    // the author must be able to read every attachment
    const stolen = await call(env.app, 'POST', '/api/v1/presets', {
      token: bob.token,
      body: { id: 'bob-steals', name: 'Steal', base_model_id: 'mock-gpt', knowledge_ids: [aliceKb] },
    });
    expect(stolen.status, stolen.text).toBe(404);
    const stolenFile = await call(env.app, 'POST', '/api/v1/presets', {
      token: bob.token,
      body: { id: 'bob-steals', name: 'Steal', base_model_id: 'mock-gpt', file_ids: [aliceFile] },
    });
    expect(stolenFile.status).toBe(404);

    const p = await call(env.app, 'POST', '/api/v1/presets', {
      token: alice.token,
      body: {
        id: 'island-guide',
        name: 'Island guide',
        base_model_id: 'mock-gpt',
        knowledge_ids: [aliceKb],
        file_ids: [aliceFile],
      },
    });
    expect(p.status, p.text).toBe(201);
    expect(p.body).toMatchObject({ knowledge_ids: [aliceKb], file_ids: [aliceFile] });
    const patchBad = await call(env.app, 'PATCH', '/api/v1/presets/island-guide', {
      token: alice.token,
      body: { file_ids: [aliceFile, bobFile] },
    });
    expect(patchBad.status).toBe(404);

    // the author gets both passages
    const own = await ask(alice, question('quokka zebrafish', { model: 'island-guide' }));
    expect(own.status, own.text).toBe(200);
    const ownTexts = own.body.citations.map((c: { text: string }) => c.text).join(' ');
    expect(ownTexts).toContain('Rottnest');
    expect(ownTexts).toContain('zebrafish');

    // shared to bob: he may use the preset, but its knowledge is not his to read
    await grantModel(env, 'island-guide', { user: bob.user.id });
    const listed = await call(env.app, 'GET', '/api/v1/presets/island-guide', { token: bob.token });
    expect(listed.status).toBe(200);
    expect(listed.body.knowledge_ids).toBeUndefined();
    env.openai.reset();
    for (const stream of [false, true]) {
      const r = await ask(bob, question('quokka zebrafish', { model: 'island-guide', stream }));
      expect(r.status, r.text).toBe(200);
      expect(r.text).not.toMatch(/Rottnest|zebrafish regenerates|islands\.txt|fish\.md/);
      if (!stream) expect(r.body.citations).toEqual([]);
      else expect(JSON.parse(sseData(r.text)[0]!)).toEqual({ object: 'hridaai.citations', citations: [] });
    }
    expect(chats()).toHaveLength(2);
    for (const rec of chats())
      expect(JSON.stringify(rec.body)).not.toMatch(/Rottnest|zebrafish regenerates|quokka lives/i);

    // with a read grant on the base (not the file) bob gets that passage only
    const g = await call(env.app, 'POST', `/api/v1/access/knowledge/${aliceKb}/grants`, {
      token: alice.token,
      body: { principal_type: 'user', principal_id: bob.user.id, permission: 'read' },
    });
    expect(g.status).toBeLessThan(300);
    const some = await ask(bob, question('quokka zebrafish', { model: 'island-guide' }));
    expect(some.status).toBe(200);
    const someTexts = some.body.citations.map((c: { text: string }) => c.text).join(' ');
    expect(someTexts).toContain('Rottnest');
    expect(someTexts).not.toContain('zebrafish');
    const grantId = g.body.id ?? g.body.grant?.id;
    await call(env.app, 'DELETE', `/api/v1/access/knowledge/${aliceKb}/grants/${grantId}`, { token: alice.token });
  });
});
