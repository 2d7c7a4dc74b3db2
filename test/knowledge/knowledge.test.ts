import { afterAll, beforeAll, expect, it } from 'vitest';
import { setWebLoaderTransport } from '../../server/modules/knowledge/index.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, SQLITE, signup, type TestApp } from '../harness.js';
import { upload } from '../files/multipart.js';
import { FAKE_PUBLIC, startAttacker, startCanary, testNet, type Attacker, type Canary } from '../net/helpers.js';
import { makeDocx, makePdf } from './fixtures.js';

type U = { token: string; user: { id: string } };

async function newKb(app: TestApp, u: U, name: string): Promise<string> {
  const r = await call(app, 'POST', '/api/v1/knowledge', { token: u.token, body: { name } });
  expect(r.status, r.text).toBe(201);
  expect(r.body.id).toBeTruthy();
  return r.body.id;
}

async function addFile(app: TestApp, u: U, kb: string, filename: string, content: string | Buffer) {
  const f = await upload(app, u.token, [{ filename, content }]);
  expect(f.status, JSON.stringify(f.body)).toBe(201);
  const r = await call(app, 'POST', `/api/v1/knowledge/${kb}/files`, { token: u.token, body: { file_id: f.body.id } });
  return { file: f.body, res: r };
}

async function query(app: TestApp, u: U, q: string, ids?: string[]) {
  return call(app, 'POST', '/api/v1/retrieval/query', {
    token: u.token,
    body: { query: q, ...(ids ? { knowledge_ids: ids } : {}) },
  });
}

describeMatrix('knowledge bases', matrix(), (b) => {
  let app: TestApp;
  let alice: U;
  let bob: U;
  let canary: Canary;
  let attacker: Attacker;

  beforeAll(async () => {
    app = await createTestApp(b, { env: { USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS: 'true' } });
    await signup(app);
    alice = await makeUser(app);
    bob = await makeUser(app);
    canary = await startCanary();
    attacker = await startAttacker();
    const net = testNet(attacker.port, { 'news.example': [FAKE_PUBLIC], 'loop.example': ['127.0.0.1'] });
    setWebLoaderTransport(app.ctx, { resolver: net.resolver, connector: net.connector });
  });
  afterAll(async () => {
    await app?.close();
    await canary?.close();
    await attacker?.close();
  });

  it('extracts txt, md, csv, json, html, pdf and docx and retrieves them with citations', async () => {
    const kb = await newKb(app, alice, 'Formats');
    const files: [string, string | Buffer, string][] = [
      ['plain.txt', 'The aardvark sleeps in the burrow.', 'aardvark'],
      ['notes.md', '# Heading\n\nThe **bumblebee** visits flowers.', 'bumblebee'],
      ['table.csv', 'animal,sound\ncapybara,whistle\n', 'capybara'],
      ['data.json', JSON.stringify({ creature: 'dugong', habitat: 'sea' }), 'dugong'],
      [
        'page.html',
        '<html><head><title>Echidna page</title><script>var hidden="scriptword"</script></head><body><p>The echidna has spines.</p></body></html>',
        'echidna',
      ],
      ['report.pdf', makePdf('The flamingo stands on one leg.'), 'flamingo'],
      ['memo.docx', makeDocx(['First paragraph.', 'The gecko climbs walls.']), 'gecko'],
    ];
    for (const [name, content, word] of files) {
      const { file, res } = await addFile(app, alice, kb, name, content);
      expect(res.status, `${name}: ${res.text}`).toBe(201);
      expect(res.body.chunk_count).toBeGreaterThan(0);
      const q = await query(app, alice, word, [kb]);
      expect(q.status).toBe(200);
      expect(q.body.items.length, name).toBeGreaterThan(0);
      expect(q.body.items[0].text.toLowerCase()).toContain(word);
      expect(q.body.items[0].citation).toMatchObject({ title: name, source_type: 'file', file_id: file.id });
    }
    const script = await query(app, alice, 'scriptword', [kb]);
    expect(script.body.items).toEqual([]);
    const detail = await call(app, 'GET', `/api/v1/knowledge/${kb}`, { token: alice.token });
    expect(detail.body.documents).toHaveLength(files.length);
    // search syntax in the query is just words
    expect((await query(app, alice, 'gecko" OR NEAR(* -- ) | !', [kb])).status).toBe(200);
  });

  it("another user's knowledge base and file ids → 404 everywhere", async () => {
    const kb = await newKb(app, alice, 'Private');
    const { file } = await addFile(app, alice, kb, 'secret.txt', 'The narwhal password is swordfish.');
    const bobKb = await newKb(app, bob, 'Bob');
    for (const [m, u, body] of [
      ['GET', `/api/v1/knowledge/${kb}`, undefined],
      ['PATCH', `/api/v1/knowledge/${kb}`, { name: 'x' }],
      ['DELETE', `/api/v1/knowledge/${kb}`, undefined],
      ['POST', `/api/v1/knowledge/${kb}/files`, { file_id: file.id }],
      ['POST', `/api/v1/knowledge/${kb}/web`, { url: 'http://news.example/page' }],
      ['DELETE', `/api/v1/knowledge/${kb}/documents/x`, undefined],
      ['POST', '/api/v1/retrieval/query', { query: 'narwhal', knowledge_ids: [kb] }],
      ['POST', `/api/v1/knowledge/${bobKb}/files`, { file_id: file.id }], // alice's file into bob's KB
      ['GET', `/api/v1/files/${file.id}`, undefined],
    ] as const) {
      const r = await call(app, m, u, { token: bob.token, body });
      expect(r.status, `${m} ${u}`).toBe(404);
      expect(r.text).not.toContain('swordfish');
    }
    const list = await call(app, 'GET', '/api/v1/knowledge', { token: bob.token });
    expect(list.body.items.map((k: { id: string }) => k.id)).not.toContain(kb);
    const all = await query(app, bob, 'narwhal swordfish');
    expect(all.body.items).toEqual([]);
  });

  it('retrieval follows grants: read grant → passages, no write; revoked → gone', async () => {
    const kb = await newKb(app, alice, 'Shared');
    const { file } = await addFile(app, alice, kb, 'okapi.txt', 'The okapi lives in the rainforest of Congo.');
    expect((await query(app, bob, 'okapi')).body.items).toEqual([]);
    const g = await call(app, 'POST', `/api/v1/access/knowledge/${kb}/grants`, {
      token: alice.token,
      body: { principal_type: 'user', principal_id: bob.user.id, permission: 'read' },
    });
    expect(g.status, g.text).toBeLessThan(300);
    const hits = await query(app, bob, 'okapi');
    expect(hits.body.items.map((p: { knowledge_id: string }) => p.knowledge_id)).toEqual([kb]);
    expect((await query(app, bob, 'okapi', [kb])).body.items.length).toBe(1);
    // read access to the base gives read access to its files, not the right to re-attach them
    expect((await call(app, 'GET', `/api/v1/files/${file.id}`, { token: bob.token })).status).toBe(200);
    const bobKb = await newKb(app, bob, 'Mine');
    const reattach = await call(app, 'POST', `/api/v1/knowledge/${bobKb}/files`, {
      token: bob.token,
      body: { file_id: file.id },
    });
    expect(reattach.status).toBe(403);
    const w = await call(app, 'PATCH', `/api/v1/knowledge/${kb}`, { token: bob.token, body: { name: 'mine now' } });
    expect(w.status).toBe(403);
    const grantId = g.body.id ?? g.body.grant?.id;
    const rv = await call(app, 'DELETE', `/api/v1/access/knowledge/${kb}/grants/${grantId}`, { token: alice.token });
    expect(rv.status).toBeLessThan(300);
    expect((await query(app, bob, 'okapi')).body.items).toEqual([]);
    expect((await call(app, 'GET', `/api/v1/files/${file.id}`, { token: bob.token })).status).toBe(404);
  });

  it('web loader: loads a public page; refuses internal URLs and redirects with url_blocked', async () => {
    const kb = await newKb(app, alice, 'Web');
    const ok = await call(app, 'POST', `/api/v1/knowledge/${kb}/web`, {
      token: alice.token,
      body: {
        url:
          'http://news.example/page?html=' + encodeURIComponent('<title>Quokka news</title><p>The quokka smiles.</p>'),
      },
    });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body).toMatchObject({ source_type: 'web', title: 'Quokka news' });
    expect((await query(app, alice, 'quokka', [kb])).body.items[0].citation.url).toContain('news.example');
    const before = canary.hits();
    for (const url of [
      `http://127.0.0.1:${canary.port}/`,
      `http://loop.example:${canary.port}/`,
      'http://169.254.169.254/latest/meta-data/',
      `http://[::ffff:127.0.0.1]:${canary.port}/`,
      'file:///etc/passwd',
      `http://news.example/r?to=${encodeURIComponent(`http://127.0.0.1:${canary.port}/`)}`,
    ]) {
      const r = await call(app, 'POST', `/api/v1/knowledge/${kb}/web`, { token: alice.token, body: { url } });
      expect(r.status, url).toBe(400);
      expect(r.body.error.code).toBe('url_blocked');
      expect(r.body.error.message).toMatch(/blocked/i);
    }
    expect(canary.hits()).toBe(before);
  });

  it('deleting a document, a file or a base removes its passages from the index', async () => {
    const kb = await newKb(app, alice, 'Deletions');
    const a = await addFile(app, alice, kb, 'tapir.txt', 'The tapir has a short trunk.');
    const b2 = await addFile(app, alice, kb, 'ibis.txt', 'The ibis wades in marshes.');
    const c = await addFile(app, alice, kb, 'lemur.txt', 'The lemur leaps between trees.');
    expect((await query(app, alice, 'tapir ibis lemur', [kb])).body.items).toHaveLength(3);
    const del = await call(app, 'DELETE', `/api/v1/knowledge/${kb}/documents/${a.res.body.id}`, { token: alice.token });
    expect(del.status).toBe(200);
    expect((await call(app, 'DELETE', `/api/v1/files/${b2.file.id}`, { token: alice.token })).status).toBe(200);
    const left = await query(app, alice, 'tapir ibis lemur', [kb]);
    expect(left.body.items.map((p: { citation: { file_id: string } }) => p.citation.file_id)).toEqual([c.file.id]);
    expect((await call(app, 'DELETE', `/api/v1/knowledge/${kb}`, { token: alice.token })).status).toBe(200);
    expect((await query(app, alice, 'lemur')).body.items).toEqual([]);
  });

  it('creating a knowledge base needs workspace.knowledge', async () => {
    const other = await createTestApp(SQLITE);
    try {
      await signup(other);
      const u = await makeUser(other);
      const r = await call(other, 'POST', '/api/v1/knowledge', { token: u.token, body: { name: 'x' } });
      expect(r.status).toBe(403);
    } finally {
      await other.close();
    }
  });
});
