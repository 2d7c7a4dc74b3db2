import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';
import { PDF_MIN, PNG_1X1, streamingUpload, upload } from './multipart.js';

const MB = 1024 * 1024;

function storedNames(app: TestApp): string[] {
  return readdirSync(path.join(app.dataDir, 'uploads'));
}

describeMatrix('uploads', matrix(), (b) => {
  let app: TestApp;
  let admin: { token: string };
  let alice: { token: string; user: { id: string } };
  let bob: { token: string };

  beforeAll(async () => {
    app = await createTestApp(b, {
      env: {
        RAG_FILE_MAX_SIZE: '1',
        RAG_FILE_MAX_COUNT: '3',
        RAG_ALLOWED_FILE_EXTENSIONS: '.PDF, txt,.md,png,JPG,html,docx',
      },
    });
    admin = await signup(app);
    alice = await makeUser(app);
    bob = await makeUser(app);
  });
  afterAll(async () => app?.close());

  it('stores a file under a random name and downloads it as a nosniff attachment', async () => {
    const r = await upload(app, alice.token, [
      { filename: 'notes.txt', content: 'hello world', contentType: 'text/html' },
    ]);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ filename: 'notes.txt', ext: 'txt', content_type: 'text/plain', size: 11 });
    expect(r.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.body.items).toHaveLength(1);
    expect(JSON.stringify(r.body)).not.toContain('storage');
    expect(storedNames(app).every((n) => /^[0-9a-f]{32}$/.test(n))).toBe(true);
    const d = await call(app, 'GET', `/api/v1/files/${r.body.id}/content`, { token: alice.token });
    expect(d.status).toBe(200);
    expect(d.text).toBe('hello world');
    expect(d.headers['content-disposition']).toMatch(/^attachment; filename="notes.txt"/);
    expect(d.headers['x-content-type-options']).toBe('nosniff');
    expect(d.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(String(d.headers['content-security-policy'])).toContain('sandbox');
  });

  it('accepts a file of exactly RAG_FILE_MAX_SIZE and refuses one byte more (nothing left on disk)', async () => {
    const before = storedNames(app).length;
    const ok = await upload(app, alice.token, [{ filename: 'limit.txt', content: Buffer.alloc(MB, 'a') }]);
    expect(ok.status).toBe(201);
    expect(ok.body.size).toBe(MB);
    const over = await upload(app, alice.token, [{ filename: 'over.txt', content: Buffer.alloc(MB + 1, 'a') }]);
    expect(over.status).toBe(413);
    expect(over.body.error.code).toBe('file_too_large');
    expect(storedNames(app).length).toBe(before + 1);
    expect(storedNames(app).some((n) => n.startsWith('tmp-'))).toBe(false);
  });

  it('cuts a large streamed upload at the limit without buffering it', async () => {
    const total = 64 * MB;
    const s = streamingUpload(total);
    const heapBefore = process.memoryUsage().heapUsed;
    const r = await app.app.inject({
      method: 'POST',
      url: '/api/v1/files',
      payload: s.stream,
      headers: { 'content-type': s.contentType, authorization: `Bearer ${alice.token}` },
    });
    expect(r.statusCode).toBe(413);
    expect(JSON.parse(r.body).error.code).toBe('file_too_large');
    expect(r.headers.connection).toBe('close');
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(32 * MB);
    expect(storedNames(app).some((n) => n.startsWith('tmp-'))).toBe(false);
  });

  it('enforces RAG_FILE_MAX_COUNT per request and keeps nothing of a refused request', async () => {
    const before = storedNames(app).length;
    const parts = [1, 2, 3, 4].map((i) => ({ filename: `f${i}.txt`, content: `file ${i}` }));
    const r = await upload(app, alice.token, parts);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('too_many_files');
    expect(storedNames(app).length).toBe(before);
    const three = await upload(app, alice.token, parts.slice(0, 3));
    expect(three.status).toBe(201);
    expect(three.body.items).toHaveLength(3);
  });

  it('RAG_ALLOWED_FILE_EXTENSIONS accepts .pdf and pdf in any case and refuses the rest', async () => {
    for (const name of ['report.pdf', 'REPORT.PDF', 'Mixed.Pdf']) {
      const r = await upload(app, alice.token, [{ filename: name, content: PDF_MIN }]);
      expect(r.status, name).toBe(201);
      expect(r.body.content_type).toBe('application/pdf');
    }
    for (const name of ['script.sh', 'noextension', 'archive.zip', 'x.pdf.exe']) {
      const r = await upload(app, alice.token, [{ filename: name, content: 'echo hi' }]);
      expect(r.status, name).toBe(415);
      expect(r.body.error.code).toBe('file_type_not_allowed');
    }
  });

  it('refuses content whose magic bytes contradict the extension', async () => {
    const cases: [string, string | Buffer][] = [
      ['avatar.png', '<html><script>alert(document.cookie)</script></html>'],
      ['avatar.png', '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'],
      ['photo.jpg', PNG_1X1],
      ['report.pdf', Buffer.from('PK\u0003\u0004zipzipzip')],
      ['doc.docx', PDF_MIN],
      ['notes.txt', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 0, 1, 2, 3])],
      ['page.html', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0])],
    ];
    for (const [name, content] of cases) {
      const r = await upload(app, alice.token, [{ filename: name, content }]);
      expect(r.status, name).toBe(415);
      expect(r.body.error.code, name).toBe('file_content_mismatch');
    }
    const png = await upload(app, alice.token, [{ filename: 'ok.png', content: PNG_1X1, contentType: 'text/html' }]);
    expect(png.status).toBe(201);
    expect(png.body.content_type).toBe('image/png');
  });

  it('sanitises traversal and hostile names; the bytes always land in DATA_DIR/uploads', async () => {
    const cases: { filename: string; extended?: boolean; check: (n: string) => void }[] = [
      { filename: '../../../../etc/passwd.txt', check: (n) => expect(n).toBe('passwd.txt') },
      { filename: '..\\..\\windows\\win.ini.txt', check: (n) => expect(n).toBe('win.ini.txt') },
      { filename: 'a\u0000b.txt', extended: true, check: (n) => expect(n).toBe('ab.txt') },
      {
        filename: 'evil\r\nSet-Cookie: token=x.txt',
        extended: true,
        check: (n) => expect(n).not.toMatch(/[\r\n]/),
      },
      {
        filename: 'invoice\u202Etxt.md',
        extended: true,
        check: (n) => {
          expect(n).not.toContain('\u202E');
          expect(n.endsWith('.md')).toBe(true);
        },
      },
      {
        filename: `${'é'.repeat(150)}.txt`,
        extended: true,
        check: (n) => {
          expect(Buffer.byteLength(n)).toBeLessThanOrEqual(255);
          expect(n.endsWith('.txt')).toBe(true);
        },
      },
      { filename: `${'a'.repeat(300)}.txt`, check: (n) => expect(n.length).toBeLessThanOrEqual(255) },
      { filename: 'CON.txt', check: (n) => expect(n).toBe('_CON.txt') },
    ];
    for (const c of cases) {
      const r = await upload(app, alice.token, [{ filename: c.filename, extended: c.extended, content: 'x' }]);
      if (/[\r\n]/.test(c.filename) && r.status === 400) {
        // the multipart parser may refuse the name outright: then nothing is stored
        expect(r.body.error.code).toBe('validation_failed');
        continue;
      }
      expect(r.status, JSON.stringify(c.filename)).toBe(201);
      c.check(r.body.filename);
      const d = await call(app, 'GET', `/api/v1/files/${r.body.id}/content`, { token: alice.token });
      expect(d.status).toBe(200);
      const cd = String(d.headers['content-disposition']);
      expect(/[\r\n]/.test(cd) || cd.includes('\u0000')).toBe(false);
    }
    expect(storedNames(app).every((n) => /^[0-9a-f]{32}$/.test(n))).toBe(true);
    expect(readdirSync(app.dataDir).sort()).not.toContain('passwd.txt');
  });

  it("another user's file id → 404 on every file route; an unauthenticated upload stores nothing", async () => {
    const mine = await upload(app, alice.token, [{ filename: 'secret.txt', content: 'alice only' }]);
    const id = mine.body.id;
    for (const [m, u] of [
      ['GET', `/api/v1/files/${id}`],
      ['GET', `/api/v1/files/${id}/content`],
      ['GET', `/api/v1/files/${id}/preview`],
      ['DELETE', `/api/v1/files/${id}`],
    ] as const) {
      const r = await call(app, m, u, { token: bob.token });
      expect(r.status, `${m} ${u}`).toBe(404);
      expect(r.body.error.code).toBe('not_found');
      expect(r.text).not.toContain('alice only');
    }
    const list = await call(app, 'GET', '/api/v1/files', { token: bob.token });
    expect(list.body.items.map((f: { id: string }) => f.id)).not.toContain(id);
    const before = storedNames(app).length;
    const anon = await upload(app, undefined, [{ filename: 'x.txt', content: 'x' }]);
    expect(anon.status).toBe(401);
    expect(storedNames(app).length).toBe(before);
    // still there for its owner
    expect((await call(app, 'GET', `/api/v1/files/${id}/content`, { token: alice.token })).text).toBe('alice only');
    // admin (BYPASS_ADMIN_ACCESS_CONTROL default) may read; the owner may delete
    const del = await call(app, 'DELETE', `/api/v1/files/${id}`, { token: alice.token });
    expect(del.status).toBe(200);
    expect((await call(app, 'GET', `/api/v1/files/${id}`, { token: alice.token })).status).toBe(404);
    void admin;
  });

  it('serves active content as an opaque attachment and previews HTML under a header CSP with sandbox', async () => {
    const html = '<!-- <head> --><html><head><script>parent.postMessage(document.cookie,"*")</script></head></html>';
    const r = await upload(app, alice.token, [{ filename: 'page.html', content: html }]);
    expect(r.status).toBe(201);
    const d = await call(app, 'GET', `/api/v1/files/${r.body.id}/content`, { token: alice.token });
    expect(d.headers['content-type']).toBe('application/octet-stream');
    expect(String(d.headers['content-disposition']).startsWith('attachment')).toBe(true);
    const p = await call(app, 'GET', `/api/v1/files/${r.body.id}/preview`, { token: alice.token });
    expect(p.status).toBe(200);
    expect(String(p.headers['content-security-policy'])).toMatch(/^sandbox allow-scripts;/);
    expect(p.headers['x-content-type-options']).toBe('nosniff');
    expect(p.text.startsWith('<!DOCTYPE html><meta http-equiv="Content-Security-Policy"')).toBe(true);
    expect(p.text.indexOf('Content-Security-Policy')).toBeLessThan(p.text.indexOf('<!-- <head>'));
  });

  it('multipart is parsed only on upload routes', async () => {
    const { body, contentType } = (await import('./multipart.js')).multipartBody([{ filename: 'a.txt', content: 'x' }]);
    const r = await app.app.inject({
      method: 'POST',
      url: '/api/v1/auths/signin',
      payload: body,
      headers: { 'content-type': contentType },
    });
    expect(r.statusCode).toBe(415);
    expect(JSON.parse(r.body).error.code).toBe('unsupported_media_type');
  });
});
