import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, createTestApp, describeMatrix, makeUser, matrix, type TestApp } from '../harness.js';
import { upload } from '../files/multipart.js';
import { gatewayEnv, grantModel, setLimits, type GatewayEnv } from '../gateway/helpers.js';
import { claimBatch, claimTtlMs, embeddingWorker, MAX_ATTEMPTS } from '../../server/modules/knowledge/backfill.js';
import { gatewayServices } from '../../server/modules/gateway/services.js';

/**
 * The embedding worker (RAG_EMBEDDING_MODEL): documents are stored at ingest and embedded in the
 * background — also those added before the model was set, or while the upstream failed, or with
 * another model; the admin status and re-index routes; usage rows for every upstream call; query
 * embeddings and the caller's limits. The mock upstream answers every text with the same vector,
 * so a query sharing no word with a passage finds it through embeddings only.
 */

type U = { token: string; user: { id: string } };
const KNOWLEDGE_ENV = {
  USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS: 'true',
  USER_PERMISSIONS_WORKSPACE_MODELS_ACCESS: 'true',
  USER_PERMISSIONS_FEATURES_API_KEYS: 'true',
  ENABLE_API_KEYS: 'true',
};
const ALICE_TEXT = 'The zeppelin hangar inspection happens every spring.';
const BOB_TEXT = 'Bob keeps the vault combination in the marmalade jar.';
const UNRELATED_QUERY = 'quokka trampoline';
/** About 70 distinct passages of ~1200 characters: more than one batch of 64. */
const LONG_TEXT = Array.from(
  { length: 1400 },
  (_, i) => `Logbook entry ${i} notes a calm sea and steady winds near buoy ${i * 7}.`,
).join(' ');

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

async function query(app: TestApp, auth: { token?: string; key?: string }, q: string, ids?: string[]) {
  return call(app, 'POST', '/api/v1/retrieval/query', {
    ...(auth.key ? { headers: { authorization: `Bearer ${auth.key}` } } : { token: auth.token }),
    body: { query: q, ...(ids ? { knowledge_ids: ids } : {}) },
  });
}

function embeddingCalls(env: GatewayEnv, model?: string) {
  return env.openai.requests.filter(
    (r) => r.path === '/v1/embeddings' && (model === undefined || r.body?.model === model),
  );
}

async function status(app: TestApp, token: string) {
  const r = await call(app, 'GET', '/api/v1/knowledge/embeddings/status', { token });
  expect(r.status, r.text).toBe(200);
  return r.body as {
    model: string | null;
    total: number;
    embedded: number;
    pending: number;
    failed: number;
    worker: { state: string; last_error: string | null; retry_at: number | null };
  };
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function chunks(app: TestApp) {
  return app.ctx.db
    .selectFrom('knowledge_chunks')
    .select(['id', 'document_id', 'text', 'embedding', 'embedding_model', 'embed_attempts', 'embed_claim'])
    .orderBy('id')
    .execute();
}

async function usageRows(apps: TestApp[], route = 'embeddings') {
  for (const a of apps) await gatewayServices(a.ctx).usage.flush();
  return apps[0]!.ctx.db
    .selectFrom('gateway_usage')
    .selectAll()
    .where('route', '=', route as 'embeddings')
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

describeMatrix('knowledge embedding worker', matrix(), (b) => {
  let env: GatewayEnv;
  let alice: U;
  let bob: U;
  let aliceKb: string;
  let bobKb: string;
  let aliceDoc: string;
  let total = 0;
  let b1: TestApp;
  let b2: TestApp;

  const withModel = (model: string) =>
    createTestApp(b, { shareWith: env.app, env: { ...KNOWLEDGE_ENV, RAG_EMBEDDING_MODEL: model } });

  beforeAll(async () => {
    // Documents are added while RAG_EMBEDDING_MODEL is not set.
    env = await gatewayEnv(b, { listen: false, env: KNOWLEDGE_ENV });
    alice = await makeUser(env.app);
    bob = await makeUser(env.app);
    aliceKb = await newKb(env.app, alice, 'alice kb');
    bobKb = await newKb(env.app, bob, 'bob kb');
    aliceDoc = await addFile(env.app, alice, aliceKb, 'hangar.txt', ALICE_TEXT);
    await addFile(env.app, alice, aliceKb, 'logbook.txt', LONG_TEXT);
    await addFile(env.app, bob, bobKb, 'vault.txt', BOB_TEXT);
    total = (await chunks(env.app)).length;
  });
  afterAll(async () => {
    await env?.close();
  });

  it('without RAG_EMBEDDING_MODEL nothing is embedded and nothing is pending', async () => {
    expect(total).toBeGreaterThan(65);
    const s = await status(env.app, env.admin.token);
    expect(s).toMatchObject({ model: null, total, embedded: 0, pending: 0, failed: 0 });
    expect(s.worker.state).toBe('disabled');
    expect(embeddingCalls(env)).toHaveLength(0);
    expect((await chunks(env.app)).every((c) => c.embedding === null)).toBe(true);
  });

  it('two instances with the model embed the earlier documents, each chunk once, by owner', async () => {
    b1 = await withModel('mock-small');
    b2 = await withModel('mock-small');
    const s = await until(
      'embedded',
      () => status(b1, env.admin.token),
      (x) => x.embedded === total,
    );
    expect(s).toMatchObject({ model: 'mock-small', total, embedded: total, pending: 0, failed: 0 });
    const rows = await chunks(b1);
    expect(rows.every((c) => c.embedding_model === 'mock-small' && c.embed_claim === null)).toBe(true);
    expect(JSON.parse(rows[0]!.embedding!)).toEqual([0.1, 0.2, 0.3]);

    const calls = embeddingCalls(env, 'mock-small');
    const inputs = calls.flatMap((c) => c.body.input as string[]);
    // every chunk exactly once, although two workers ran on the same database
    expect(inputs).toHaveLength(total);
    expect(new Set(inputs).size).toBe(total);
    expect(new Set(inputs)).toEqual(new Set(rows.map((r) => r.text)));
    for (const c of calls) {
      const batch = c.body.input as string[];
      expect(batch.length).toBeLessThanOrEqual(64);
      // one owner per upstream call: Bob's passage never travels with Alice's
      if (batch.includes(BOB_TEXT)) expect(batch).toEqual([BOB_TEXT]);
    }
    expect(calls.length).toBeGreaterThanOrEqual(3);
  });

  it('records one usage row per upstream call, for the knowledge base owner', async () => {
    const calls = embeddingCalls(env, 'mock-small');
    const rows = await usageRows([b1, b2]);
    expect(rows).toHaveLength(calls.length);
    for (const r of rows)
      expect(r).toMatchObject({
        route: 'embeddings',
        model_id: 'mock-small',
        base_model_id: 'mock-small',
        connection_id: env.openaiConnId,
        status: 'completed',
        http_status: 200,
        usage_source: 'upstream',
        actor_id: null,
        key_id: null,
      });
    // the mock reports one token per input
    const tokensOf = (id: string) =>
      rows.filter((r) => r.user_id === id).reduce((n, r) => n + Number(r.total_tokens), 0);
    expect(tokensOf(bob.user.id)).toBe(1);
    expect(tokensOf(alice.user.id)).toBe(total - 1);
    expect(rows.every((r) => r.user_id === alice.user.id || r.user_id === bob.user.id)).toBe(true);
    // the owner sees them in their own usage
    const me = await call(b1, 'GET', '/api/v1/usage/me?group_by=route', { token: bob.token });
    expect(me.status, me.text).toBe(200);
    expect(me.body.items).toEqual(
      expect.arrayContaining([expect.objectContaining({ group: 'embeddings', requests: 1, total_tokens: 1 })]),
    );
  });

  it('a query embedding is recorded for the caller (and the API key), and finds by embeddings', async () => {
    const before = (await usageRows([b1, b2])).length;
    const r = await query(b1, alice, UNRELATED_QUERY, [aliceKb]);
    expect(r.status, r.text).toBe(200);
    expect(r.body.items.map((p: { text: string }) => p.text)).toContain(ALICE_TEXT);
    expect(r.body.items.every((p: { knowledge_id: string }) => p.knowledge_id === aliceKb)).toBe(true);
    const key = await call(b1, 'POST', '/api/v1/api-keys', { token: alice.token, body: { name: 'k' } });
    expect(key.status, key.text).toBe(201);
    const viaKey = await query(b1, { key: key.body.key }, UNRELATED_QUERY, [aliceKb]);
    expect(viaKey.status, viaKey.text).toBe(200);
    const rows = (await usageRows([b1, b2])).slice(before);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ user_id: alice.user.id, key_id: null, status: 'completed', total_tokens: 1 });
    expect(rows[1]).toMatchObject({ user_id: alice.user.id, key_id: key.body.id, status: 'completed' });
  });

  it('claims are exclusive: two instances claiming at once never get the same chunk', async () => {
    // Every chunk has a vector of mock-small: for another model, all of them are to do.
    const ttl = claimTtlMs(b1.ctx);
    const [x, y] = await Promise.all([
      claimBatch(b1.ctx.db, 'claim-test-model', ttl),
      claimBatch(b2.ctx.db, 'claim-test-model', ttl),
    ]);
    const ids = [...(x?.ids ?? []), ...(y?.ids ?? [])];
    expect(ids.length).toBeGreaterThan(0);
    expect(new Set(ids).size).toBe(ids.length);
    // a claim is taken over only once it is stale
    const fresh = await claimBatch(b1.ctx.db, 'claim-test-model', ttl);
    expect(fresh?.ids.some((id) => ids.includes(id)) ?? false).toBe(false);
    const later = await claimBatch(b1.ctx.db, 'claim-test-model', ttl, Date.now() + ttl + 1000);
    expect(later?.ids.some((id) => ids.includes(id))).toBe(true);
    // let go of the test claims (nothing was embedded)
    await b1.ctx.db.updateTable('knowledge_chunks').set({ embed_claim: null, embed_claimed_at: null }).execute();
    expect((await chunks(b1)).every((c) => c.embedding_model === 'mock-small' && c.embedding !== null)).toBe(true);
  });

  it('a vector of another model is never used for similarity, and is embedded again', async () => {
    await embeddingWorker(b1.ctx).stop();
    await embeddingWorker(b2.ctx).stop();
    const own = await query(b1, alice, UNRELATED_QUERY, [aliceKb]);
    expect(own.body.items.map((p: { text: string }) => p.text)).toContain(ALICE_TEXT);
    await b1.ctx.db
      .updateTable('knowledge_chunks')
      .set({ embedding_model: 'some-other-model' })
      .where('document_id', '=', aliceDoc)
      .execute();
    const s = await status(b1, env.admin.token);
    expect(s).toMatchObject({ embedded: total - 1, pending: 1, failed: 0 });
    // its vector equals the query's, yet it is not found: only full text could, and no word matches
    const r = await query(b1, alice, UNRELATED_QUERY, [aliceKb]);
    expect(r.status, r.text).toBe(200);
    expect(r.body.items.map((p: { text: string }) => p.text)).not.toContain(ALICE_TEXT);
    expect(r.body.items.length).toBeGreaterThan(0);
    // full text still finds it
    const fts = await query(b1, alice, 'zeppelin hangar', [aliceKb]);
    expect(fts.body.items.map((p: { text: string }) => p.text)).toContain(ALICE_TEXT);

    embeddingWorker(b1.ctx).start();
    await until(
      'embedded again',
      () => status(b1, env.admin.token),
      (x) => x.embedded === total,
    );
    const again = await query(b1, alice, UNRELATED_QUERY, [aliceKb]);
    expect(again.body.items.map((p: { text: string }) => p.text)).toContain(ALICE_TEXT);
    await embeddingWorker(b1.ctx).stop();
  });

  it('after RAG_EMBEDDING_MODEL changes everything is embedded with the new model; re-index does it again', async () => {
    const c = await withModel('mock-gpt');
    await until(
      'embedded with mock-gpt',
      () => status(c, env.admin.token),
      (x) => x.embedded === total,
    );
    expect((await chunks(c)).every((r) => r.embedding_model === 'mock-gpt')).toBe(true);
    expect(embeddingCalls(env, 'mock-gpt').flatMap((x) => x.body.input)).toHaveLength(total);
    // for an instance still configured with mock-small, none of these vectors count
    expect(await status(b1, env.admin.token)).toMatchObject({
      model: 'mock-small',
      embedded: 0,
      pending: total,
      failed: 0,
    });

    const r = await call(c, 'POST', '/api/v1/knowledge/embeddings/reindex', { token: env.admin.token });
    expect(r.status, r.text).toBe(202);
    expect(r.body).toMatchObject({ status: 'reindexing', marked: total, model: 'mock-gpt', total });
    await until(
      're-embedded with mock-gpt',
      () => status(c, env.admin.token),
      (x) => x.embedded === total,
    );
    expect(embeddingCalls(env, 'mock-gpt').flatMap((x) => x.body.input)).toHaveLength(2 * total);
    const audit = await c.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'knowledge.embeddings_reindexed')
      .execute();
    expect(audit).toHaveLength(1);
  });

  it('the admin routes refuse non-admins (403) and anonymous callers (401)', async () => {
    const before = await chunks(env.app);
    for (const [method, url] of [
      ['GET', '/api/v1/knowledge/embeddings/status'],
      ['POST', '/api/v1/knowledge/embeddings/reindex'],
    ] as const) {
      const u = await call(env.app, method, url, { token: alice.token });
      expect(u.status, u.text).toBe(403);
      expect(u.body.error.code).toBe('admin_required');
      const anon = await call(env.app, method, url);
      expect(anon.status, anon.text).toBe(401);
    }
    expect(await chunks(env.app)).toEqual(before);
  });
});

describeMatrix('knowledge embedding worker when the upstream fails', matrix(), (b) => {
  let env: GatewayEnv;
  let alice: U;
  let kb: string;

  beforeAll(async () => {
    env = await gatewayEnv(b, { listen: false, env: { ...KNOWLEDGE_ENV, RAG_EMBEDDING_MODEL: 'mock-small' } });
    alice = await makeUser(env.app);
    kb = await newKb(env.app, alice, 'kb');
  });
  afterAll(async () => {
    await env?.close();
  });

  it('an unavailable upstream leaves the chunk pending, searchable by full text, and is recorded', async () => {
    env.openai.set({ status: 503 }, 'mock-small');
    const doc = await addFile(env.app, alice, kb, 'hangar.txt', ALICE_TEXT);
    const s = await until(
      'backoff',
      () => status(env.app, env.admin.token),
      (x) => x.worker.state === 'backoff',
    );
    expect(s).toMatchObject({ model: 'mock-small', total: 1, embedded: 0, pending: 1, failed: 0 });
    expect(s.worker.last_error).toContain('503');
    expect(s.worker.retry_at).toBeGreaterThan(Date.now());
    // a service failure says nothing about the input: no attempt is counted, the claim is released
    expect(await chunks(env.app)).toEqual([
      expect.objectContaining({ document_id: doc, embedding: null, embed_attempts: 0, embed_claim: null }),
    ]);
    const hit = await query(env.app, alice, 'zeppelin hangar', [kb]);
    expect(hit.status, hit.text).toBe(200);
    expect(hit.body.items.map((p: { text: string }) => p.text)).toEqual([ALICE_TEXT]);
    const rows = await usageRows([env.app]);
    expect(rows.length).toBeGreaterThanOrEqual(2); // the worker's call and the query's
    expect(rows[0]).toMatchObject({
      user_id: alice.user.id,
      status: 'error',
      http_status: 503,
      total_tokens: 0,
      model_id: 'mock-small',
    });
  });

  it('an input the upstream rejects counts failed attempts; after MAX_ATTEMPTS the chunk is failed', async () => {
    env.openai.set({ status: 400 }, 'mock-small');
    const r = await call(env.app, 'POST', '/api/v1/knowledge/embeddings/reindex', { token: env.admin.token });
    expect(r.status, r.text).toBe(202);
    const [c] = await until(
      'one failed attempt',
      () => chunks(env.app),
      (x) => Number(x[0]?.embed_attempts) === 1,
    );
    expect(c).toMatchObject({ embedding: null, embedding_model: 'mock-small', embed_claim: null });
    expect(await status(env.app, env.admin.token)).toMatchObject({ pending: 1, failed: 0 });
    // as after MAX_ATTEMPTS rejections
    await env.app.ctx.db.updateTable('knowledge_chunks').set({ embed_attempts: MAX_ATTEMPTS }).execute();
    expect(await status(env.app, env.admin.token)).toMatchObject({ embedded: 0, pending: 0, failed: 1 });
    const hit = await query(env.app, alice, 'zeppelin', [kb]);
    expect(hit.body.items.map((p: { text: string }) => p.text)).toEqual([ALICE_TEXT]);
  });

  it('once the upstream works again, a re-index embeds the failed chunk at once', async () => {
    env.openai.reset();
    const r = await call(env.app, 'POST', '/api/v1/knowledge/embeddings/reindex', { token: env.admin.token });
    expect(r.status, r.text).toBe(202);
    const s = await until(
      'embedded',
      () => status(env.app, env.admin.token),
      (x) => x.embedded === 1,
    );
    expect(s).toMatchObject({ pending: 0, failed: 0 });
    expect(s.worker.state).not.toBe('backoff');
    const found = await query(env.app, alice, UNRELATED_QUERY, [kb]);
    expect(found.body.items.map((p: { text: string }) => p.text)).toEqual([ALICE_TEXT]);
  });

  it('adding a document does not wait for the embeddings upstream', async () => {
    env.openai.set({ firstByteDelayMs: 8000 }, 'mock-small');
    const before = embeddingCalls(env).length;
    const started = Date.now();
    const doc = await addFile(env.app, alice, kb, 'vault.txt', BOB_TEXT);
    expect(Date.now() - started).toBeLessThan(6000);
    // the worker's call is under way (answered only 8 s later); the document is searchable already
    await until(
      'worker call',
      async () => embeddingCalls(env).length,
      (n) => n > before,
    );
    expect(await status(env.app, env.admin.token)).toMatchObject({ total: 2, embedded: 1, pending: 1 });
    const rows = await env.app.ctx.db
      .selectFrom('knowledge_chunks')
      .select(['embedding', 'embed_claim'])
      .where('document_id', '=', doc)
      .execute();
    expect(rows).toEqual([{ embedding: null, embed_claim: expect.any(String) }]);
    env.openai.reset();
    env.openai.set({ status: 503 }, 'mock-small'); // the query's embedding: no 8 s wait
    const hit = await query(env.app, alice, 'marmalade', [kb]);
    expect(hit.body.items.map((p: { text: string }) => p.text)).toEqual([BOB_TEXT]);
  });
});

describeMatrix('knowledge query embeddings and limits', matrix(), (b) => {
  let env: GatewayEnv;
  let alice: U;
  let carol: U;
  let aliceKb: string;
  let carolKb: string;

  beforeAll(async () => {
    env = await gatewayEnv(b, { listen: false, env: { ...KNOWLEDGE_ENV, RAG_EMBEDDING_MODEL: 'mock-small' } });
    alice = await makeUser(env.app);
    carol = await makeUser(env.app);
    await grantModel(env, 'mock-gpt', { user: carol.user.id });
    aliceKb = await newKb(env.app, alice, 'alice kb');
    carolKb = await newKb(env.app, carol, 'carol kb');
    await addFile(env.app, alice, aliceKb, 'hangar.txt', ALICE_TEXT);
    await addFile(env.app, carol, carolKb, 'vault.txt', BOB_TEXT);
    await until(
      'embedded',
      () => status(env.app, env.admin.token),
      (x) => x.embedded === 2,
    );
  });
  afterAll(async () => {
    await env?.close();
  });

  it("a retrieval query's embedding takes the caller's limits; refused, retrieval is full-text only", async () => {
    await setLimits(env, 'user', alice.user.id, { requests_per_minute: 1 });
    const before = embeddingCalls(env).length;
    const first = await query(env.app, alice, `${UNRELATED_QUERY} zeppelin`, [aliceKb]);
    expect(first.status, first.text).toBe(200);
    expect(embeddingCalls(env).length).toBe(before + 1);
    const second = await query(env.app, alice, `${UNRELATED_QUERY} zeppelin`, [aliceKb]);
    expect(second.status, second.text).toBe(200);
    expect(second.body.items.map((p: { text: string }) => p.text)).toEqual([ALICE_TEXT]);
    // refused by the limit: no upstream call
    expect(embeddingCalls(env).length).toBe(before + 1);
    const byVector = await query(env.app, alice, UNRELATED_QUERY, [aliceKb]);
    expect(byVector.body.items).toEqual([]);
  });

  it("a chat's retrieval is recorded but does not spend the caller's requests before the completion", async () => {
    await setLimits(env, 'user', carol.user.id, { requests_per_minute: 1 });
    const before = embeddingCalls(env).length;
    const r = await call(env.app, 'POST', '/api/v1/chat/completions', {
      token: carol.token,
      body: {
        model: 'mock-gpt',
        messages: [{ role: 'user', content: UNRELATED_QUERY }],
        files: [{ type: 'knowledge', id: carolKb }],
      },
    });
    expect(r.status, r.text).toBe(200);
    const calls = embeddingCalls(env).slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.body.input).toEqual([UNRELATED_QUERY]);
    // found by embeddings only, and passed to the model
    const chat = env.openai.requests.filter((x) => x.path === '/v1/chat/completions').at(-1)!;
    expect(JSON.stringify(chat.body.messages)).toContain('marmalade');
    const rows = (await usageRows([env.app])).filter((x) => x.user_id === carol.user.id);
    // the worker's call for carol's document and the query's
    expect(rows.map((x) => x.status)).toEqual(['completed', 'completed']);
    expect((await usageRows([env.app], 'chat')).filter((x) => x.user_id === carol.user.id)).toHaveLength(1);
  });
});
