import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'server/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_FORMAT: 'json', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

it('hrida-ai audit has --help like every command', () => {
  const main = cli(['--help']);
  expect(main.stdout).toMatch(/audit\s+Audit trail tools/);
  const audit = cli(['audit', '--help']);
  expect(audit.status).toBe(0);
  expect(audit.stdout).toContain('hrida-ai audit');
  const verify = cli(['audit', 'verify', '--help']);
  expect(verify.status).toBe(0);
  expect(verify.stdout).toContain('hrida-ai audit verify');
  expect(cli(['audit', 'frobnicate']).status).toBe(2);
  expect(cli(['audit', 'verify', '--bogus']).status).toBe(2);
});

describeMatrix('hrida-ai audit verify', matrix().slice(0, 2), (b) => {
  let app: TestApp;
  let env: Record<string, string>;
  beforeAll(async () => {
    app = await createTestApp(b);
    const admin = await signup(app);
    const u = await makeUser(app);
    for (let i = 0; i < 3; i++)
      await call(app, 'PATCH', `/api/v1/users/${u.user.id}`, { token: admin.token, body: { name: `n${i}` } });
    env = {
      DATA_DIR: app.dataDir,
      HRIDAAI_SECRET_KEY: app.shared.secret,
      DATABASE_URL: b.db === 'sqlite' ? `sqlite:///${app.config.database.sqlitePath}` : app.shared.databaseUrl!,
    };
  });
  afterAll(async () => app?.close());

  it('passes on an intact chain and reports the first break after tampering', async () => {
    const ok = cli(['audit', 'verify'], env);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^Audit trail OK: 5 entries \(seq 1…5\)/);
    const json = JSON.parse(cli(['audit', 'verify', '--json'], env).stdout);
    expect(json).toMatchObject({ ok: true, entries: 5, head: { seq: 5 } });

    if (b.db === 'postgresql') await sql`drop trigger audit_events_guard on audit_events`.execute(app.ctx.db);
    else await sql`drop trigger audit_events_no_update`.execute(app.ctx.db);
    await app.ctx.db.updateTable('audit_events').set({ after: '{"name":"forged"}' }).where('seq', '=', 4).execute();
    const broken = cli(['audit', 'verify'], env);
    expect(broken.status).toBe(3);
    expect(broken.stdout).toMatch(/^Audit trail BROKEN at seq 4: contents do not match the entry hash/);
  });
});
