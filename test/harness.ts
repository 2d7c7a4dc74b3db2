/**
 * Test harness: builds HridaAI in-process on a temporary data directory against real storage.
 * Suites run on SQLite and PostgreSQL (each app gets its own schema in database `test`), with and
 * without Redis (each app gets its own key prefix). A missing service skips with a reason, unless
 * HRIDAAI_REQUIRE_SERVICES=1 (CI), where it fails.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import pg from 'pg';
import pino from 'pino';
import { describe } from 'vitest';
import { buildApp, type BuiltApp } from '../server/app.js';
import { loadConfig, type Config } from '../server/config/index.js';
import type { User } from '../server/platform/db/types.js';

export const PG_ADMIN_URL = process.env.HRIDAAI_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
export const REDIS_TEST_URL = process.env.HRIDAAI_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const REQUIRE_SERVICES = process.env.HRIDAAI_REQUIRE_SERVICES === '1';

function tcpReachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function pgReachable(): Promise<boolean> {
  if (!(await tcpReachable('127.0.0.1', 5432))) return false;
  const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

export const services = {
  postgres: await pgReachable(),
  redis: await tcpReachable('127.0.0.1', 6379),
};

if (REQUIRE_SERVICES) {
  if (!services.postgres)
    throw new Error('HRIDAAI_REQUIRE_SERVICES=1 but PostgreSQL is not reachable at 127.0.0.1:5432 (database test)');
  if (!services.redis) throw new Error('HRIDAAI_REQUIRE_SERVICES=1 but Redis is not reachable at 127.0.0.1:6379');
}

export interface Backend {
  db: 'sqlite' | 'postgresql';
  redis: boolean;
  label: string;
}

export const SQLITE: Backend = { db: 'sqlite', redis: false, label: 'sqlite' };
export const POSTGRES: Backend = { db: 'postgresql', redis: false, label: 'postgresql' };
export const SQLITE_REDIS: Backend = { db: 'sqlite', redis: true, label: 'sqlite+redis' };
export const POSTGRES_REDIS: Backend = { db: 'postgresql', redis: true, label: 'postgresql+redis' };

/** Default matrix: both databases, and PostgreSQL with Redis. `full` adds SQLite with Redis. */
export function matrix(opts: { full?: boolean } = {}): Backend[] {
  return opts.full ? [SQLITE, POSTGRES, SQLITE_REDIS, POSTGRES_REDIS] : [SQLITE, POSTGRES, POSTGRES_REDIS];
}

export function skipReason(b: Backend): string | null {
  if (b.db === 'postgresql' && !services.postgres) return 'PostgreSQL not reachable at 127.0.0.1:5432';
  if (b.redis && !services.redis) return 'Redis not reachable at 127.0.0.1:6379';
  return null;
}

/** `describe` once per backend; a backend whose service is missing is skipped with its reason. */
export function describeMatrix(name: string, backends: Backend[], fn: (b: Backend) => void): void {
  for (const b of backends) {
    const reason = skipReason(b);
    if (reason) {
      describe.skip(`${name} [${b.label}] — skipped: ${reason}`, () => fn(b));
      console.warn(`skipped: ${name} [${b.label}]: ${reason}`);
    } else describe(`${name} [${b.label}]`, () => fn(b));
  }
}

export interface TestApp extends BuiltApp {
  config: Config;
  env: Record<string, string>;
  dataDir: string;
  backend: Backend;
  /** Resources shared with a second instance (same DB schema, same Redis prefix, same key). */
  shared: { databaseUrl: string | undefined; redisPrefix: string | undefined; secret: string };
}

interface Setup {
  schema?: string;
  dataDir: string;
  /** Instances sharing this app's database: closed before its schema is dropped. */
  dependents: TestApp[];
  closing?: Promise<void>;
}
const setups = new WeakMap<TestApp, Setup>();

export interface CreateOptions {
  env?: Record<string, string>;
  /** Reuse another app's database, Redis prefix and secret (a second instance). */
  shareWith?: TestApp;
  logger?: pino.Logger;
}

async function createSchema(): Promise<string> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    await c.query(`create schema ${schema}`);
  } finally {
    await c.end();
  }
  return schema;
}

async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    await c.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await c.end();
  }
}

export function pgUrlForSchema(schema: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

export async function createTestApp(backend: Backend, opts: CreateOptions = {}): Promise<TestApp> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'hridaai-test-'));
  let schema: string | undefined;
  let databaseUrl = opts.shareWith?.shared.databaseUrl;
  if (!opts.shareWith && backend.db === 'postgresql') {
    schema = await createSchema();
    databaseUrl = pgUrlForSchema(schema);
  }
  const redisPrefix = opts.shareWith?.shared.redisPrefix ?? (backend.redis ? `test:${randomUUID()}:` : undefined);
  const secret = opts.shareWith?.shared.secret ?? randomBytes(32).toString('base64');
  const env: Record<string, string> = {
    ENV: 'test',
    DATA_DIR: dataDir,
    PASSWORD_HASH_ROUNDS: '4',
    HRIDAAI_SECRET_KEY: secret,
    LOG_FORMAT: 'json',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...(opts.shareWith && backend.db === 'sqlite'
      ? { DATABASE_URL: `sqlite:///${opts.shareWith.config.database.sqlitePath}` }
      : {}),
    ...(redisPrefix ? { REDIS_URL: REDIS_TEST_URL, REDIS_KEY_PREFIX: redisPrefix } : {}),
    ...opts.env,
  };
  const config = loadConfig(env);
  const logger = opts.logger ?? pino({ level: process.env.HRIDAAI_TEST_LOG ? 'debug' : 'silent' });
  const built = await buildApp(config, { logger });
  const app: TestApp = {
    ...built,
    config,
    env,
    dataDir,
    backend,
    shared: { databaseUrl: env.DATABASE_URL, redisPrefix, secret },
    close() {
      const s = setups.get(app)!;
      s.closing ??= (async () => {
        // A second instance on the same database must be gone before the schema is dropped.
        await Promise.all(s.dependents.map((d) => d.close()));
        await built.close();
        if (s.schema) await dropSchema(s.schema).catch(() => undefined);
        rmSync(dataDir, { recursive: true, force: true });
      })();
      return s.closing;
    },
  };
  setups.set(app, { schema, dataDir, dependents: [] });
  if (opts.shareWith) setups.get(opts.shareWith)?.dependents.push(app);
  return app;
}

export interface Res {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
  headers: Record<string, string | string[] | undefined>;
  cookies: Record<string, string>;
}

export interface ReqOptions {
  body?: unknown;
  rawBody?: string;
  token?: string;
  cookie?: string;
  headers?: Record<string, string>;
  remoteAddress?: string;
  query?: Record<string, string>;
}

/** One request through the in-process server (Fastify inject). */
export async function call(app: TestApp, method: string, url: string, o: ReqOptions = {}): Promise<Res> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.cookie) headers.cookie = `token=${o.cookie}`;
  let payload: string | undefined;
  if (o.rawBody !== undefined) payload = o.rawBody;
  else if (o.body !== undefined) {
    payload = JSON.stringify(o.body);
    headers['content-type'] ??= 'application/json';
  }
  const r = await app.app.inject({
    method: method as 'GET',
    url,
    headers,
    payload,
    query: o.query,
    remoteAddress: o.remoteAddress ?? '127.0.0.1',
  });
  let body: unknown = undefined;
  try {
    body = r.body ? JSON.parse(r.body) : undefined;
  } catch {
    body = undefined;
  }
  const cookies: Record<string, string> = {};
  for (const c of r.cookies as { name: string; value: string }[]) cookies[c.name] = c.value;
  return { status: r.statusCode, body, text: r.body, headers: r.headers as Res['headers'], cookies };
}

let counter = 0;
export function uniqueEmail(prefix = 'user'): string {
  counter += 1;
  return `${prefix}${counter}-${randomBytes(3).toString('hex')}@example.com`;
}

/** Signs up through the API (the first account becomes admin). */
export async function signup(
  app: TestApp,
  email = uniqueEmail('admin'),
  password = 'correct horse battery',
): Promise<{ token: string; user: { id: string; role: string; email: string }; password: string }> {
  const r = await call(app, 'POST', '/api/v1/auths/signup', { body: { name: 'Test', email, password } });
  if (r.status !== 201) throw new Error(`signup failed: ${r.status} ${r.text}`);
  return { token: r.body.token, user: r.body.user, password };
}

/**
 * Creates a user directly (fast: no bcrypt unless a password is given) and a session token.
 * The first admin should come from `signup` so that the first-admin rule is exercised.
 */
export async function makeUser(
  app: TestApp,
  opts: { role?: User['role']; email?: string; password?: string; active?: boolean } = {},
): Promise<{ user: User; token: string; password?: string }> {
  const { hashPassword } = await import('../server/platform/security/passwords.js');
  const now = Date.now();
  const user: User = {
    id: randomUUID(),
    email: opts.email ?? uniqueEmail(opts.role ?? 'user'),
    name: 'Someone',
    role: opts.role ?? 'user',
    active: opts.active === false ? 0 : 1,
    password_hash: opts.password ? await hashPassword(opts.password, 4) : null,
    profile_image_url: null,
    settings: '{}',
    created_at: now,
    updated_at: now,
    last_active_at: null,
  };
  await app.ctx.db.insertInto('users').values(user).execute();
  const { token } = await app.ctx.sessions.create(app.ctx.db, {
    userId: user.id,
    kind: 'password',
    ip: null,
    userAgent: null,
  });
  return { user, token, password: opts.password };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
