import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigErrors, loadConfig, settings } from '../../server/config/index.js';
import { MASK, presentSettings } from '../../server/modules/admin-settings/routes.js';
import { openEncryptedSqlite } from '../../server/platform/db/index.js';
import { call, createTestApp, signup, SQLITE, uniqueEmail, type TestApp } from '../harness.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PLAIN_HEADER = 'SQLite format 3\0';
const PASSWORD = `db-pass-${randomBytes(12).toString('hex')}`;
const SECRET = randomBytes(32).toString('base64');

const dirs: string[] = [];
function tmp() {
  const d = mkdtempSync(path.join(tmpdir(), 'hridaai-sqlcipher-'));
  dirs.push(d);
  return d;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function encryptedEnv(file: string, password: string | null = PASSWORD): Record<string, string> {
  return {
    DATABASE_TYPE: 'sqlite+sqlcipher',
    DATABASE_URL: `sqlite:///${file}`,
    HRIDAAI_SECRET_KEY: SECRET,
    ...(password === null ? {} : { DATABASE_PASSWORD: password }),
  };
}

const header = (file: string) => readFileSync(file).subarray(0, 16).toString('latin1');
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
/** Every file of the database (main file, -wal, -shm, journals) that contains `needle` in plaintext. */
function filesContaining(dir: string, needle: string): string[] {
  return readdirSync(dir).filter((f) => readFileSync(path.join(dir, f)).includes(Buffer.from(needle)));
}

function cli(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'server/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_FORMAT: 'json', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

async function startFails(env: Record<string, string>): Promise<string> {
  let app: TestApp | undefined;
  try {
    app = await createTestApp(SQLITE, { env });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigErrors);
    return (e as Error).message;
  }
  await app.close();
  throw new Error('the app started');
}

async function signin(app: TestApp, email: string, password: string) {
  return call(app, 'POST', '/api/v1/auths/signin', { body: { email, password } });
}

describe('encrypted SQLite (DATABASE_TYPE=sqlite+sqlcipher)', () => {
  const dir = path.join(tmp(), 'db');
  const file = path.join(dir, 'hridaai.db');
  const email = uniqueEmail('cipher');
  const other = uniqueEmail('cipher-other');
  const accountPassword = 'correct horse battery';

  it('stores everything encrypted: the database file and its WAL never hold the data in plaintext', async () => {
    let logged = '';
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          logged += chunk.toString();
          cb();
        },
      }),
    );
    const app = await createTestApp(SQLITE, { env: { ...encryptedEnv(file), ENABLE_SIGNUP: 'true' }, logger });
    try {
      expect(app.config.database).toMatchObject({ kind: 'sqlite', encrypted: true, sqlitePath: file });
      await signup(app, email, accountPassword);
      await signup(app, other, accountPassword);
      const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(app.ctx.db);
      expect(mode.rows[0]?.journal_mode).toBe('wal');
      // While the server runs, the newest pages are in the WAL: it is encrypted as well.
      expect(existsSync(`${file}-wal`)).toBe(true);
      expect(readFileSync(`${file}-wal`).length).toBeGreaterThan(0);
      expect(filesContaining(dir, email)).toEqual([]);
      expect(filesContaining(dir, '@example.com')).toEqual([]);
    } finally {
      await app.close();
    }
    expect(header(file)).not.toBe(PLAIN_HEADER);
    expect(filesContaining(dir, email)).toEqual([]);
    expect(filesContaining(dir, 'CREATE TABLE')).toEqual([]);
    expect(logged).not.toContain(PASSWORD);
  });

  it('reopens with the right password: the data is there', async () => {
    const app = await createTestApp(SQLITE, { env: encryptedEnv(file) });
    try {
      const r = await signin(app, email, accountPassword);
      expect(r.status, r.text).toBe(200);
      const users = await call(app, 'GET', '/api/v1/users', { token: r.body.token });
      expect(users.status, users.text).toBe(200);
      expect(users.text).toContain(other);
      expect(app.config.warnings.join('\n')).not.toMatch(/DATABASE_PASSWORD/);
    } finally {
      await app.close();
    }
  });

  it('refuses a wrong password at start with an error naming DATABASE_PASSWORD, and changes nothing', async () => {
    const before = sha256(file);
    const message = await startFails(encryptedEnv(file, 'not-the-right-password'));
    expect(message).toMatch(
      /DATABASE_PASSWORD: does not open the encrypted database .*hridaai\.db: the password is wrong/,
    );
    expect(message).not.toContain('not-the-right-password');
    expect(sha256(file)).toBe(before);
  });

  it('a wrong password leaves the WAL of a crashed server alone: nothing is lost', async () => {
    const d = tmp();
    const f = path.join(d, 'crash.db');
    const script = path.join(d, 'crash.mts');
    const dbModule = path.join(ROOT, 'server/platform/db/index.ts');
    writeFileSync(
      script,
      `import { openEncryptedSqlite } from ${JSON.stringify(dbModule)};
const c = openEncryptedSqlite(${JSON.stringify(f)}, ${JSON.stringify(PASSWORD)});
c.exec('create table t(x)');
for (let i = 0; i < 50; i++) c.prepare('insert into t values (?)').run('row' + i);
process.exit(0); // no close: the rows stay in the WAL, as after a crash`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(`${f}-wal`).length).toBeGreaterThan(0);
    const wal = sha256(`${f}-wal`);
    expect(() => openEncryptedSqlite(f, 'not-the-right-password')).toThrow(/DATABASE_PASSWORD: does not open/);
    expect(sha256(`${f}-wal`)).toBe(wal);
    const c = openEncryptedSqlite(f, PASSWORD);
    try {
      expect(c.prepare('select count(*) as n from t').get()).toEqual({ n: 50 });
    } finally {
      c.close();
    }
  });

  it('refuses to open the encrypted file as plain SQLite', async () => {
    const message = await startFails({ DATABASE_URL: `sqlite:///${file}`, HRIDAAI_SECRET_KEY: SECRET });
    expect(message).toMatch(
      /is not an unencrypted SQLite database\. If it is encrypted, set DATABASE_TYPE=sqlite\+sqlcipher/,
    );
  });

  it('refuses an existing unencrypted database rather than keep writing plaintext', async () => {
    const plainDir = tmp();
    const plain = path.join(plainDir, 'plain.db');
    const app = await createTestApp(SQLITE, { env: { DATABASE_URL: `sqlite:///${plain}` } });
    await signup(app);
    await app.close();
    const before = sha256(plain);
    const message = await startFails(encryptedEnv(plain));
    expect(message).toMatch(
      /DATABASE_TYPE: is sqlite\+sqlcipher but .*plain\.db is an unencrypted SQLite database\. Refusing to open it: HridaAI would keep writing it in plaintext\. Convert it with `hrida-ai db encrypt`/,
    );
    expect(sha256(plain)).toBe(before);
    expect(header(plain)).toBe(PLAIN_HEADER);
  });

  it('accepts a sqlite+sqlcipher:/// URL without DATABASE_TYPE', async () => {
    const f = path.join(tmp(), 'url.db');
    const app = await createTestApp(SQLITE, {
      env: { DATABASE_URL: `sqlite+sqlcipher:///${f}`, DATABASE_PASSWORD: PASSWORD },
    });
    try {
      expect(app.config.database).toMatchObject({ kind: 'sqlite', encrypted: true, url: `sqlite+sqlcipher:///${f}` });
      await signup(app);
    } finally {
      await app.close();
    }
    expect(header(f)).not.toBe(PLAIN_HEADER);
  });
});

it('loads the encryption driver only when sqlcipher is configured', () => {
  const d = tmp();
  const script = path.join(d, 'load.mts');
  writeFileSync(
    script,
    `import { createRequire } from 'node:module';
import { loadConfig } from ${JSON.stringify(path.join(ROOT, 'server/config/index.ts'))};
import { openDatabase } from ${JSON.stringify(path.join(ROOT, 'server/platform/db/index.ts'))};
const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('better-sqlite3-multiple-ciphers'));
const plain = openDatabase(loadConfig({ DATA_DIR: ${JSON.stringify(path.join(d, 'plain'))} }));
await plain.migrate();
await plain.close();
const before = loaded();
const enc = openDatabase(loadConfig({ DATA_DIR: ${JSON.stringify(path.join(d, 'enc'))}, DATABASE_TYPE: 'sqlite+sqlcipher', DATABASE_PASSWORD: ${JSON.stringify(PASSWORD)} }));
await enc.close();
console.log(JSON.stringify({ before, after: loaded() }));`,
  );
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ before: false, after: true });
});

describe('sqlcipher settings', () => {
  it('requires DATABASE_PASSWORD with sqlite+sqlcipher', () => {
    expect(() => loadConfig({ DATABASE_TYPE: 'sqlite+sqlcipher' })).toThrow(
      /DATABASE_PASSWORD: is required when DATABASE_TYPE is sqlite\+sqlcipher/,
    );
    expect(() => loadConfig({ DATABASE_URL: 'sqlite+sqlcipher:///tmp/x.db' })).toThrow(
      /DATABASE_PASSWORD: is required/,
    );
  });

  it('refuses DATABASE_PASSWORD without encryption (the data would be stored in plaintext)', () => {
    expect(() => loadConfig({ DATABASE_PASSWORD: PASSWORD })).toThrow(
      /DATABASE_PASSWORD: is set but the database is not encrypted/,
    );
    expect(() => loadConfig({ DATABASE_PASSWORD: PASSWORD, DATABASE_URL: 'postgresql://u@db/x' })).toThrow(
      /DATABASE_PASSWORD: is only used for encrypted SQLite/,
    );
    expect(() =>
      loadConfig({
        DATABASE_TYPE: 'sqlite',
        DATABASE_URL: 'sqlite+sqlcipher:///tmp/x.db',
        DATABASE_PASSWORD: PASSWORD,
      }),
    ).toThrow(/DATABASE_TYPE: is sqlite but DATABASE_URL is a sqlite\+sqlcipher/);
    expect(() =>
      loadConfig({
        DATABASE_TYPE: 'sqlite+sqlcipher',
        DATABASE_URL: 'sqlite:///:memory:',
        DATABASE_PASSWORD: PASSWORD,
      }),
    ).toThrow(/DATABASE_URL: is :memory: but DATABASE_TYPE is sqlite\+sqlcipher/);
  });

  it('warns about a short password and never shows it', () => {
    const c = loadConfig({ DATABASE_TYPE: 'sqlite+sqlcipher', DATABASE_PASSWORD: 'short-pass' });
    expect(c.database.encrypted).toBe(true);
    expect(c.warnings.join('\n')).toMatch(/DATABASE_PASSWORD is shorter than 16 characters/);
    expect(c.warnings.join('\n')).not.toContain('short-pass');
    expect(settings.DATABASE_PASSWORD.secret).toBe(true);
    const shown = presentSettings(c).find((s) => s.name === 'DATABASE_PASSWORD');
    expect(shown).toMatchObject({ value: MASK, secret: true });
    expect(JSON.stringify(presentSettings(c))).not.toContain('short-pass');
  });
});

describe('hrida-ai CLI with sqlcipher', () => {
  it('migrate creates and opens an encrypted database; a wrong password exits 2 with the reason, no trace', () => {
    const d = tmp();
    const file = path.join(d, 'cli.db');
    const env = { ...encryptedEnv(file), DATA_DIR: d };
    const first = cli(['migrate'], env);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/Migrations applied/);
    expect(header(file)).not.toBe(PLAIN_HEADER);
    expect(filesContaining(d, 'CREATE TABLE')).toEqual([]);
    const again = cli(['migrate'], env);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/Database is up to date/);
    const wrong = cli(['migrate'], { ...env, DATABASE_PASSWORD: 'wrong-password-123456' });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/DATABASE_PASSWORD: does not open the encrypted database/);
    expect(wrong.stderr).not.toMatch(/\n\s+at /);
    expect(wrong.stderr).not.toContain('wrong-password-123456');
    const missing = cli(['migrate'], { ...env, DATABASE_PASSWORD: '' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/DATABASE_PASSWORD: is required/);
  });

  it('db encrypt converts a plain database in place; the server then opens it with the password', async () => {
    const d = tmp();
    const file = path.join(d, 'hridaai.db');
    const email = uniqueEmail('convert');
    const plainEnv = { DATABASE_URL: `sqlite:///${file}`, HRIDAAI_SECRET_KEY: SECRET };
    const plainApp = await createTestApp(SQLITE, { env: plainEnv });
    await signup(plainApp, email, 'correct horse battery');

    // Refused while a server has the database open; nothing changes.
    const busy = cli(['db', 'encrypt'], { ...encryptedEnv(file), DATA_DIR: d });
    await plainApp.close();
    expect(busy.status, busy.stdout + busy.stderr).toBe(1);
    expect(busy.stderr).toMatch(/is in use by another process\. Stop HridaAI/);
    expect(readdirSync(d).filter((f) => f.includes('.unencrypted-') || f.includes('.encrypting'))).toEqual([]);
    expect(header(file)).toBe(PLAIN_HEADER);
    expect(filesContaining(d, email)).not.toEqual([]);

    const r = cli(['db', 'encrypt', '--json'], { ...encryptedEnv(file), DATA_DIR: d });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ status: 'encrypted', file });
    expect(report.tables).toBeGreaterThan(10);
    expect(report.rows).toBeGreaterThan(0);
    expect(path.dirname(report.plaintextCopy)).toBe(d);
    expect(header(report.plaintextCopy)).toBe(PLAIN_HEADER);
    expect(header(file)).not.toBe(PLAIN_HEADER);
    expect(readFileSync(file).includes(Buffer.from(email))).toBe(false);
    expect(existsSync(`${file}.encrypting`)).toBe(false);

    const app = await createTestApp(SQLITE, { env: encryptedEnv(file) });
    try {
      const s = await signin(app, email, 'correct horse battery');
      expect(s.status, s.text).toBe(200);
    } finally {
      await app.close();
    }
    expect(readFileSync(file).includes(Buffer.from(email))).toBe(false);

    const twice = cli(['db', 'encrypt'], { ...encryptedEnv(file), DATA_DIR: d });
    expect(twice.status, twice.stderr).toBe(0);
    expect(twice.stdout).toMatch(/already encrypted and DATABASE_PASSWORD opens it: nothing to do/);
    const wrong = cli(['db', 'encrypt'], { ...encryptedEnv(file, 'another-password-1234'), DATA_DIR: d });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/DATABASE_PASSWORD does not open it/);
  });

  it('db encrypt needs sqlcipher configured and a database to convert', () => {
    const d = tmp();
    const help = cli(['db', 'encrypt', '--help'], {});
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('hrida-ai db encrypt');
    expect(cli(['db', 'frobnicate'], {}).status).toBe(2);
    const plain = cli(['db', 'encrypt'], { DATA_DIR: d });
    expect(plain.status).toBe(2);
    expect(plain.stderr).toMatch(/set DATABASE_TYPE=sqlite\+sqlcipher and DATABASE_PASSWORD/);
    mkdirSync(path.join(d, 'none'));
    const none = cli(['db', 'encrypt'], { ...encryptedEnv(path.join(d, 'none', 'x.db')), DATA_DIR: d });
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/No database at .*x\.db: nothing to convert/);
  });
});
