import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../server/app.js';
import {
  journalFileDeletions,
  processFileDeletions,
  resolveInDataDir,
} from '../../server/modules/privacy/file-journal.js';
import { ERASED, ERASURE_PLAN, USER_REFERENCE_COLUMN } from '../../server/modules/privacy/plan.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, sleep, type TestApp } from '../harness.js';
import { countRows, listColumns, scanFor } from './schema.js';
import { seedOtherFile, seedUser } from './seed.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Kept on purpose, documented in docs/security.md ("What is kept"). */
const KEPT_TABLES = ['audit_events'];

async function auditActions(app: TestApp, resourceId: string): Promise<{ action: string; details: string | null }[]> {
  await app.ctx.audit.flush();
  return app.ctx.db
    .selectFrom('audit_events')
    .select(['action', 'details'])
    .where('resource_id', '=', resourceId)
    .orderBy('seq')
    .execute();
}

describe('erasure plan covers the schema', () => {
  it('every column that can reference a user is in the plan (new tables fail here until classified)', async () => {
    const { SQLITE } = await import('../harness.js');
    const app = await createTestApp(SQLITE);
    try {
      const cols = (await listColumns(app)).filter((c) => USER_REFERENCE_COLUMN.test(c.column));
      expect(cols.length).toBeGreaterThan(20);
      const planned = new Set(ERASURE_PLAN.filter((e) => e.column).map((e) => `${e.table}.${e.column}`));
      const missing = cols.map((c) => `${c.table}.${c.column}`).filter((k) => !planned.has(k));
      expect(missing, 'columns referencing users that the erasure plan does not handle').toEqual([]);
      // …and the plan names no column that does not exist.
      const existing = new Set((await listColumns(app)).map((c) => `${c.table}.${c.column}`));
      const stale = [...planned].filter((k) => !existing.has(k));
      expect(stale).toEqual([]);
      for (const e of ERASURE_PLAN)
        if (e.action === 'keep' || e.action === 'null' || e.action === 'anonymise')
          expect(e.reason, `${e.table}.${e.column}`).toBeTruthy();
    } finally {
      await app.close();
    }
  });
});

describeMatrix('erasure: self and admin deletion', matrix(), (b) => {
  const apps: TestApp[] = [];
  const children: ChildProcess[] = [];
  const make = async (env: Record<string, string> = {}) => {
    const a = await createTestApp(b, { env });
    apps.push(a);
    return a;
  };
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  async function assertErased(
    app: TestApp,
    u: { id: string; email: string; files: string[] },
    otherId: string,
    lateUsage = 0,
  ) {
    expect(await scanFor(app, u.id, KEPT_TABLES), 'rows still naming the erased user id').toEqual([]);
    expect(await scanFor(app, u.email, KEPT_TABLES), 'rows still naming the erased e-mail').toEqual([]);
    for (const f of u.files) expect(existsSync(f), f).toBe(false);
    expect(await countRows(app, 'pending_file_deletions')).toBe(0);
    // What the other user owns or was given stays.
    const db = app.ctx.db;
    expect(await db.selectFrom('users').select('id').where('id', '=', otherId).executeTakeFirst()).toBeDefined();
    expect(
      (await db.selectFrom('group_members').select('group_id').where('user_id', '=', otherId).execute()).length,
    ).toBe(1);
    const groups = await db.selectFrom('groups').select(['created_by']).execute();
    expect(groups.length).toBe(1);
    expect(groups[0]!.created_by).toBeNull();
    const grants = await db.selectFrom('resource_grants').selectAll().execute();
    expect(grants.map((g) => [g.resource_id, g.principal_id, g.granted_by])).toEqual([['m2', otherId, null]]);
    const otherKbDocs = await db
      .selectFrom('knowledge_documents')
      .innerJoin('knowledge_bases', 'knowledge_bases.id', 'knowledge_documents.knowledge_id')
      .select(['knowledge_documents.source_type', 'knowledge_documents.added_by'])
      .where('knowledge_bases.user_id', '=', otherId)
      .execute();
    expect(otherKbDocs).toEqual([{ source_type: 'web', added_by: null }]);
    expect(await countRows(app, 'knowledge_chunks')).toBe(0);
    const presets = await db.selectFrom('model_presets').select(['owner_id']).execute();
    expect(presets).toEqual([{ owner_id: null }]);
    const conns = await db.selectFrom('model_connections').select(['owner_id', 'created_by', 'name']).execute();
    expect(conns).toEqual([{ owner_id: null, created_by: null, name: 'shared' }]);
    const limits = await db.selectFrom('gateway_limits').select(['subject_id', 'updated_by']).execute();
    expect(limits).toEqual([{ subject_id: otherId, updated_by: null }]);
    const sec = await db
      .selectFrom('user_security')
      .select(['user_id', 'password_reset_by', 'must_change_password'])
      .execute();
    expect(sec).toEqual([{ user_id: otherId, password_reset_by: null, must_change_password: 0 }]);
    // Usage stays for the totals, anonymised.
    const usage = await db
      .selectFrom('gateway_usage')
      .select(['user_id', 'actor_id', 'key_id', 'total_tokens'])
      .execute();
    usage.sort((a, c) => (a.user_id === c.user_id ? 0 : a.user_id === ERASED ? -1 : 1));
    expect(usage).toEqual([
      ...Array.from({ length: 2 + lateUsage }, () => ({
        user_id: ERASED,
        actor_id: null,
        key_id: null,
        total_tokens: 7,
      })),
      { user_id: otherId, actor_id: null, key_id: null, total_tokens: 7 },
    ]);
  }

  it('DELETE /users/me erases every row and file of the caller and nothing of anyone else', async () => {
    const app = await make();
    const admin = await signup(app);
    const other = await makeUser(app);
    const otherFile = await seedOtherFile(app, other.user.id);
    const u = await seedUser(app, other.user);
    // Sanity: the scan sees the user before erasure (a scan that cannot find anything proves nothing).
    const before = await scanFor(app, u.id, KEPT_TABLES);
    expect(before.length).toBeGreaterThan(25);

    const r = await call(app, 'DELETE', '/api/v1/users/me', { token: u.token, body: { password: u.password } });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ status: 'deleted' });
    await assertErased(app, u, other.user.id);
    expect(existsSync(otherFile)).toBe(true);
    // The token is dead, the other user's and the admin's are not.
    expect((await call(app, 'GET', '/api/v1/chats', { token: u.token })).status).toBe(401);
    expect((await call(app, 'GET', '/api/v1/chats', { token: other.token })).status).toBe(200);
    expect((await call(app, 'GET', '/api/v1/users', { token: admin.token })).status).toBe(200);
    const ev = (await auditActions(app, u.id)).filter((e) => e.action === 'user.deleted');
    expect(ev).toHaveLength(1);
    expect(JSON.parse(ev[0]!.details!).via).toBe('self');
  });

  it('the admin path is the same erasure (and keeps the last-admin rule)', async () => {
    const app = await make();
    const admin = await signup(app);
    const other = await makeUser(app);
    const u = await seedUser(app, other.user);
    const r = await call(app, 'DELETE', `/api/v1/users/${u.id}`, { token: admin.token });
    expect(r.status, r.text).toBe(200);
    await assertErased(app, u, other.user.id);
    const ev = (await auditActions(app, u.id)).filter((e) => e.action === 'user.deleted');
    expect(ev).toHaveLength(1);
    expect(JSON.parse(ev[0]!.details!).via).toBe('admin');
    expect((await call(app, 'DELETE', `/api/v1/users/${u.id}`, { token: admin.token })).status).toBe(404);

    // The only admin cannot erase themselves on either path.
    const self = await call(app, 'DELETE', '/api/v1/users/me', {
      token: admin.token,
      body: { password: admin.password },
    });
    expect(self.status).toBe(409);
    expect(self.body.error.code).toBe('last_admin');
    const viaAdmin = await call(app, 'DELETE', `/api/v1/users/${admin.user.id}`, { token: admin.token });
    expect(viaAdmin.body.error.code).toBe('last_admin');
    // With a second admin it is allowed; the erased admin's API key stops working at once (cached or not).
    const admin2 = await makeUser(app, { role: 'admin', password: 'second admin pw' });
    const key = await call(app, 'POST', '/api/v1/api-keys', { token: admin2.token, body: { name: 'k' } });
    expect(key.status, key.text).toBe(201);
    expect((await call(app, 'GET', '/api/v1/chats', { token: key.body.key })).status).toBe(200);
    const ok = await call(app, 'DELETE', '/api/v1/users/me', {
      token: admin2.token,
      body: { password: 'second admin pw' },
    });
    expect(ok.status).toBe(200);
    expect((await call(app, 'GET', '/api/v1/chats', { token: key.body.key })).status).toBe(401);
    expect((await call(app, 'GET', '/api/v1/users', { token: admin.token })).status).toBe(200);
  });

  it('self-deletion needs the current password and the holder (not an impersonating admin)', async () => {
    const app = await make();
    await signup(app);
    const u = await makeUser(app, { password: 'my own password' });
    for (const body of [{}, { password: 'wrong password' }]) {
      const r = await call(app, 'DELETE', '/api/v1/users/me', { token: u.token, body });
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('reauthentication_failed');
    }
    const smuggled = await call(app, 'DELETE', '/api/v1/users/me', {
      token: u.token,
      body: { password: 'my own password', user_id: 'x' },
    });
    expect(smuggled.status).toBe(400);
    expect(
      await app.ctx.db.selectFrom('users').select('id').where('id', '=', u.user.id).executeTakeFirst(),
    ).toBeDefined();

    // An impersonation session (actor ≠ user) may neither export nor erase.
    const admin2 = await makeUser(app, { role: 'admin' });
    const { token } = await app.ctx.sessions.create(app.ctx.db, {
      userId: u.user.id,
      actorId: admin2.user.id,
      kind: 'impersonation',
      ip: null,
      userAgent: null,
    });
    const imp = await call(app, 'DELETE', '/api/v1/users/me', { token, body: { password: 'my own password' } });
    expect(imp.status).toBe(403);
    expect((await call(app, 'GET', '/api/v1/users/me/export', { token })).status).toBe(403);
    expect(
      await app.ctx.db.selectFrom('users').select('id').where('id', '=', u.user.id).executeTakeFirst(),
    ).toBeDefined();

    // An account without a password (SSO) is erased without one; a pending account may erase itself.
    const sso = await makeUser(app, { role: 'pending' });
    expect((await call(app, 'DELETE', '/api/v1/users/me', { token: sso.token })).status).toBe(200);
  });

  it('a journal entry outside DATA_DIR is never followed', async () => {
    const app = await make();
    expect(resolveInDataDir(app.dataDir, '../x')).toBeNull();
    expect(resolveInDataDir(app.dataDir, '/etc/passwd')).toBeNull();
    expect(resolveInDataDir(app.dataDir, 'uploads/../../x')).toBeNull();
    expect(resolveInDataDir(app.dataDir, 'uploads/abc')).toBe(path.join(app.dataDir, 'uploads', 'abc'));
    const outside = path.join(path.dirname(app.dataDir), `outside-${path.basename(app.dataDir)}`);
    writeFileSync(outside, 'keep');
    try {
      await app.ctx.db
        .transaction()
        .execute((trx) => journalFileDeletions(trx, [path.relative(app.dataDir, outside)], 'test'));
      const r = await processFileDeletions(app.ctx);
      expect(r).toEqual({ removed: 0, failed: 1 });
      expect(existsSync(outside)).toBe(true);
    } finally {
      rmSync(outside, { force: true });
    }
  });

  async function runChild(app: TestApp, userId: string, stage: 'before-commit' | 'after-commit'): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'erase-child.ts')], {
      cwd: path.resolve(here, '../..'),
      env: {
        ...process.env,
        HRIDAAI_CHILD_ENV: JSON.stringify(app.env),
        HRIDAAI_CHILD_USER: userId,
        HRIDAAI_CHILD_STAGE: stage,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child did not reach ${stage}: ${out} ${err}`)), 45_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(`STAGE ${stage}`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`child exited (${code}) before ${stage}: ${out} ${err}`));
      });
    });
    // Killed at that exact point: no cleanup, no rollback handler, nothing.
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  it('kill -9 before the commit: nothing erased, nothing lost; erasing again completes', async () => {
    const app = await make();
    await signup(app);
    const other = await makeUser(app);
    const u = await seedUser(app, other.user);
    await runChild(app, u.id, 'before-commit');
    // The transaction died with the process (PostgreSQL notices the closed connection).
    let user;
    for (let i = 0; i < 50; i++) {
      user = await app.ctx.db.selectFrom('users').select('id').where('id', '=', u.id).executeTakeFirst();
      const chats = await app.ctx.db.selectFrom('chats').select('id').where('user_id', '=', u.id).execute();
      if (user && chats.length === 1) break;
      await sleep(100);
    }
    expect(user).toBeDefined();
    for (const f of u.files) expect(existsSync(f)).toBe(true);
    expect(await countRows(app, 'pending_file_deletions')).toBe(0);
    // A restart finds nothing to repair; erasing again completes.
    const restarted = await buildApp(app.config, { logger: pino({ level: 'silent' }) });
    await restarted.close();
    const r = await call(app, 'DELETE', `/api/v1/users/${u.id}`, {
      token: (await makeUser(app, { role: 'admin' })).token,
    });
    expect(r.status, r.text).toBe(200);
    await assertErased(app, u, other.user.id);
  });

  it('kill -9 between the commit and the file cleanup: the next start removes the files (no orphans)', async () => {
    const app = await make();
    await signup(app);
    const other = await makeUser(app);
    const otherFile = await seedOtherFile(app, other.user.id);
    const u = await seedUser(app, other.user);
    await runChild(app, u.id, 'after-commit');
    // Rows are gone, files are still on disk, and the journal remembers them.
    expect(await app.ctx.db.selectFrom('users').select('id').where('id', '=', u.id).executeTakeFirst()).toBeUndefined();
    for (const f of u.files) expect(existsSync(f)).toBe(true);
    expect(await countRows(app, 'pending_file_deletions')).toBe(u.files.length);
    // A request that was still streaming writes its usage row after the erasure.
    await app.ctx.db
      .insertInto('gateway_usage')
      .values({
        id: 'late',
        created_at: Date.now(),
        request_id: 'r',
        route: 'chat',
        user_id: u.id,
        actor_id: u.id,
        key_id: u.apiKeyId,
        model_id: 'm1',
        base_model_id: 'm1',
        connection_id: null,
        prompt_tokens: 3,
        completion_tokens: 4,
        total_tokens: 7,
        usage_source: 'upstream',
        status: 'completed',
        http_status: 200,
        stream: 1,
        duration_ms: 5,
        ttft_ms: 1,
      })
      .execute();
    // Restart: the journal is processed and late usage anonymised before the server serves.
    const restarted = await buildApp(app.config, { logger: pino({ level: 'silent' }) });
    await restarted.close();
    await assertErased(app, u, other.user.id, 1);
    expect(existsSync(otherFile)).toBe(true);
  });
});
