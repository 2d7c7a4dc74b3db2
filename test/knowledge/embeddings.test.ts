import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, describeMatrix, makeUser, matrix, type TestApp } from '../harness.js';
import { upload } from '../files/multipart.js';
import { gatewayEnv, UPSTREAM_KEY, type GatewayEnv } from '../gateway/helpers.js';

/**
 * Knowledge retrieval by embeddings (RAG_EMBEDDING_MODEL). The mock upstream answers every text
 * with the same vector, so every embedded passage has cosine similarity 1 with any query: a query
 * sharing no word with a passage finds it through embeddings only.
 */

type U = { token: string; user: { id: string } };
const KNOWLEDGE_ENV = { USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS: 'true' };

async function newKb(app: TestApp, u: U, name: string): Promise<string> {
  const r = await call(app, 'POST', '/api/v1/knowledge', { token: u.token, body: { name } });
  expect(r.status, r.text).toBe(201);
  return r.body.id;
}

async function addFile(app: TestApp, u: U, kb: string, filename: string, content: string): Promise<string> {
  const f = await upload(app, u.token, [{ filename, content }]);
  expect(f.status, JSON.stringify(f.body)).toBe(201);
  const r = await call(app, 'POST', `/api/v1/knowledge/${kb}/files`, { token: u.token, body: { file_id: f.body.id } });
  expect(r.status, r.text).toBe(201);
  return r.body.id;
}

async function query(app: TestApp, u: U, q: string, ids?: string[]) {
  return call(app, 'POST', '/api/v1/retrieval/query', {
    token: u.token,
    body: { query: q, ...(ids ? { knowledge_ids: ids } : {}) },
  });
}

function embeddingCalls(env: GatewayEnv) {
  return env.openai.requests.filter((r) => r.path === '/v1/embeddings');
}

async function storedVectors(app: TestApp, documentId: string): Promise<(string | null)[]> {
  const rows = await app.ctx.db
    .selectFrom('knowledge_chunks')
    .select('embedding')
    .where('document_id', '=', documentId)
    .execute();
  return rows.map((r) => r.embedding);
}

/** The vectors once the embedding worker has stored them all (it runs right after an ingest). */
async function embeddedVectors(app: TestApp, documentId: string, timeoutMs = 10_000): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await storedVectors(app, documentId);
    if (v.length > 0 && v.every((x) => x !== null)) return v as string[];
    if (Date.now() > until) throw new Error(`document ${documentId} not embedded within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ALICE_TEXT = 'The zeppelin hangar inspection happens every spring.';
const BOB_TEXT = 'Bob keeps the vault combination in the marmalade jar.';
const UNRELATED_QUERY = 'quokka trampoline';

describeMatrix('knowledge retrieval by embeddings', matrix(), (b) => {
  let env: GatewayEnv;
  let alice: U;
  let bob: U;
  let aliceKb: string;
  let bobKb: string;
  let aliceDoc: string;

  beforeAll(async () => {
    env = await gatewayEnv(b, { listen: false, env: { ...KNOWLEDGE_ENV, RAG_EMBEDDING_MODEL: 'mock-small' } });
    alice = await makeUser(env.app);
    bob = await makeUser(env.app);
    aliceKb = await newKb(env.app, alice, 'alice kb');
    bobKb = await newKb(env.app, bob, 'bob kb');
  });
  afterAll(async () => {
    await env?.close();
  });

  it('embeds the chunks right after ingest through the connection and stores the vectors', async () => {
    const before = embeddingCalls(env).length;
    aliceDoc = await addFile(env.app, alice, aliceKb, 'hangar.txt', ALICE_TEXT);
    const vectors = await embeddedVectors(env.app, aliceDoc);
    const calls = embeddingCalls(env).slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(calls[0]!.body.model).toBe('mock-small');
    expect(calls[0]!.body.input).toEqual([ALICE_TEXT]);
    expect(vectors).toHaveLength(1);
    expect(JSON.parse(vectors[0]!)).toEqual([0.1, 0.2, 0.3]);
  });

  it('finds by embeddings a passage full-text search alone would not find', async () => {
    const before = embeddingCalls(env).length;
    const r = await query(env.app, alice, UNRELATED_QUERY, [aliceKb]);
    expect(r.status, r.text).toBe(200);
    expect(r.body.items.map((p: { text: string }) => p.text)).toEqual([ALICE_TEXT]);
    expect(r.body.items[0].document_id).toBe(aliceDoc);
    // the query itself was embedded
    const calls = embeddingCalls(env).slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.body.input).toEqual([UNRELATED_QUERY]);
  });

  it('never returns a passage from a knowledge base the caller cannot read', async () => {
    const bobDoc = await addFile(env.app, bob, bobKb, 'vault.txt', BOB_TEXT);
    expect(JSON.parse((await embeddedVectors(env.app, bobDoc))[0]!)).toEqual([0.1, 0.2, 0.3]);
    // Bob's passage has the same vector as every query: only the access rule keeps it out.
    const own = await query(env.app, bob, UNRELATED_QUERY);
    expect(own.body.items.map((p: { text: string }) => p.text)).toEqual([BOB_TEXT]);
    for (const q of [UNRELATED_QUERY, 'vault combination marmalade', 'zeppelin vault']) {
      const r = await query(env.app, alice, q);
      expect(r.status, r.text).toBe(200);
      const texts = r.body.items.map((p: { text: string }) => p.text);
      expect(texts).not.toContain(BOB_TEXT);
      expect(r.body.items.every((p: { knowledge_id: string }) => p.knowledge_id === aliceKb)).toBe(true);
    }
    const named = await query(env.app, alice, UNRELATED_QUERY, [bobKb]);
    expect(named.status).toBe(404);
    expect(named.text).not.toContain('marmalade');
  });
});

describeMatrix('knowledge retrieval without RAG_EMBEDDING_MODEL', matrix(), (b) => {
  let env: GatewayEnv;
  let alice: U;

  beforeAll(async () => {
    env = await gatewayEnv(b, { listen: false, env: KNOWLEDGE_ENV });
    alice = await makeUser(env.app);
  });
  afterAll(async () => {
    await env?.close();
  });

  it('makes no embeddings call and retrieves by full text only', async () => {
    const kb = await newKb(env.app, alice, 'kb');
    const doc = await addFile(env.app, alice, kb, 'hangar.txt', ALICE_TEXT);
    expect(await storedVectors(env.app, doc)).toEqual([null]);
    const hit = await query(env.app, alice, 'zeppelin', [kb]);
    expect(hit.body.items.map((p: { text: string }) => p.text)).toEqual([ALICE_TEXT]);
    const miss = await query(env.app, alice, UNRELATED_QUERY, [kb]);
    expect(miss.status).toBe(200);
    expect(miss.body.items).toEqual([]);
    expect(embeddingCalls(env)).toHaveLength(0);
  });
});

describeMatrix('knowledge retrieval when the embeddings upstream fails', matrix(), (b) => {
  let env: GatewayEnv;
  let alice: U;

  beforeAll(async () => {
    env = await gatewayEnv(b, { listen: false, env: { ...KNOWLEDGE_ENV, RAG_EMBEDDING_MODEL: 'mock-small' } });
    alice = await makeUser(env.app);
  });
  afterAll(async () => {
    await env?.close();
  });

  it('keeps the document searchable by full text', async () => {
    const kb = await newKb(env.app, alice, 'kb');
    // The model is known (discovered), then the upstream goes away: every embeddings call fails.
    const models = await call(env.app, 'GET', '/api/models', { token: env.admin.token });
    expect(models.status, models.text).toBe(200);
    expect(JSON.stringify(models.body)).toContain('mock-small');
    await env.openai.close();
    const doc = await addFile(env.app, alice, kb, 'hangar.txt', ALICE_TEXT);
    expect(await storedVectors(env.app, doc)).toEqual([null]);
    const hit = await query(env.app, alice, 'zeppelin hangar', [kb]);
    expect(hit.status, hit.text).toBe(200);
    expect(hit.body.items.map((p: { text: string }) => p.text)).toEqual([ALICE_TEXT]);
    expect(hit.body.items[0].document_id).toBe(doc);
  });
});
