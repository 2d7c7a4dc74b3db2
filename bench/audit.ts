/**
 * Audit overhead benchmark: added latency of the request audit log at METADATA and
 * REQUEST_RESPONSE compared with NONE, over real HTTP on loopback.
 *
 *   node --import tsx bench/audit.ts [--requests 2000] [--rounds 5] [--concurrency 8]
 *
 * Three servers are built in-process (SQLite in a temp dir, audit file sink on, level NONE,
 * METADATA and REQUEST_RESPONSE) and listen on 127.0.0.1. Rounds alternate between them so that
 * machine noise hits every level alike. Each round sends sequential requests (latency) and then
 * a concurrent burst (throughput) of `GET /api/v1/users?limit=30` (a ~6 KB JSON response that the
 * REQUEST_RESPONSE level parses and redacts) and `PATCH /api/v1/users/:id` (a JSON body; a change
 * that also writes a trail event in its transaction). It also reports the process CPU time per
 * request (server and client share the process; the audit queue is flushed inside the window),
 * which other load on the machine disturbs much less than wall-clock latency.
 * Results go to bench/results/audit.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Pool } from 'undici';
import { buildApp, type BuiltApp } from '../server/app.js';
import { loadConfig } from '../server/config/index.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '8' },
  },
});
const REQUESTS = Number(values.requests);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
const LEVELS = ['NONE', 'METADATA', 'REQUEST_RESPONSE'] as const;
type Level = (typeof LEVELS)[number];

interface Server {
  level: Level;
  built: BuiltApp;
  pool: Pool;
  token: string;
  userId: string;
  dir: string;
}

async function start(level: Level): Promise<Server> {
  const dir = mkdtempSync(path.join(tmpdir(), `hridaai-bench-audit-${level}-`));
  const config = loadConfig({
    ENV: 'test',
    DATA_DIR: dir,
    PASSWORD_HASH_ROUNDS: '4',
    HRIDAAI_SECRET_KEY: 'bench-secret-key-0123456789abcdef',
    LOG_FORMAT: 'json',
    GLOBAL_LOG_LEVEL: 'ERROR',
    AUDIT_LOG_LEVEL: level,
    ENABLE_AUDIT_LOGS_FILE: 'true',
    AUDIT_LOG_FILE_ROTATION_SIZE: '64MB',
  });
  const built = await buildApp(config, { logger: pino({ level: 'error' }) });
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = built.app.server.address() as { port: number };
  const pool = new Pool(`http://127.0.0.1:${addr.port}`, { connections: CONCURRENCY, pipelining: 1 });
  const su = await pool.request({
    method: 'POST',
    path: '/api/v1/auths/signup',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Bench', email: 'bench@example.com', password: 'bench-password-1' }),
  });
  const { token } = (await su.body.json()) as { token: string };
  const now = Date.now();
  for (let i = 0; i < 29; i++)
    await built.ctx.db
      .insertInto('users')
      .values({
        id: `bench-${i}`,
        email: `bench-${i}@example.com`,
        name: `Bench user ${i}`,
        role: 'user',
        active: 1,
        password_hash: null,
        profile_image_url: null,
        settings: '{}',
        created_at: now + i,
        updated_at: now + i,
        last_active_at: null,
      })
      .execute();
  return { level, built, pool, token, userId: 'bench-0', dir };
}

type Kind = 'get' | 'patch';

async function one(s: Server, kind: Kind, i: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r =
    kind === 'get'
      ? await s.pool.request({
          method: 'GET',
          path: '/api/v1/users?limit=30',
          headers: { authorization: `Bearer ${s.token}`, 'user-agent': 'bench' },
        })
      : await s.pool.request({
          method: 'PATCH',
          path: `/api/v1/users/${s.userId}`,
          headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json', 'user-agent': 'bench' },
          body: JSON.stringify({ name: `Bench name ${i}` }),
        });
  await r.body.dump();
  const us = Number(process.hrtime.bigint() - t0) / 1000;
  if (r.statusCode !== 200) throw new Error(`${kind} → ${r.statusCode}`);
  return us;
}

async function sequential(s: Server, kind: Kind, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await one(s, kind, i));
  return out;
}

async function burst(s: Server, kind: Kind, n: number): Promise<{ ms: number; lat: number[] }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) lat.push(await one(s, kind, next++));
    }),
  );
  return { ms: performance.now() - t0, lat };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const r1 = (x: number) => Math.round(x * 10) / 10;

const servers: Server[] = [];
for (const l of LEVELS) servers.push(await start(l));

const seq: Record<string, number[]> = {};
const thr: Record<string, number[]> = {};
/** Process CPU time (user + system) per request, client included: less sensitive to other load. */
const cpu: Record<string, number[]> = {};
const key = (l: Level, k: Kind) => `${l}/${k}`;
for (const s of servers)
  for (const k of ['get', 'patch'] as Kind[]) {
    await sequential(s, k, 300); // warm-up
    seq[key(s.level, k)] = [];
    thr[key(s.level, k)] = [];
    cpu[key(s.level, k)] = [];
  }
for (let round = 0; round < ROUNDS; round++)
  for (const s of round % 2 ? [...servers].reverse() : servers)
    for (const k of ['get', 'patch'] as Kind[]) {
      const c0 = process.cpuUsage();
      seq[key(s.level, k)]!.push(...(await sequential(s, k, REQUESTS)));
      await s.built.ctx.audit.flush();
      const c = process.cpuUsage(c0);
      cpu[key(s.level, k)]!.push((c.user + c.system) / REQUESTS);
      const b = await burst(s, k, REQUESTS);
      thr[key(s.level, k)]!.push((REQUESTS / b.ms) * 1000);
      await s.built.ctx.audit.flush();
    }

const results: Record<string, unknown>[] = [];
for (const k of ['get', 'patch'] as Kind[]) {
  const base = seq[key('NONE', k)]!;
  const baseCpu = pct(cpu[key('NONE', k)]!, 50);
  for (const l of LEVELS) {
    const xs = seq[key(l, k)]!;
    const t = thr[key(l, k)]!;
    results.push({
      request: k === 'get' ? 'GET /api/v1/users?limit=30' : 'PATCH /api/v1/users/:id',
      level: l,
      samples: xs.length,
      p50_us: r1(pct(xs, 50)),
      p95_us: r1(pct(xs, 95)),
      p99_us: r1(pct(xs, 99)),
      mean_us: r1(mean(xs)),
      added_p50_us: r1(pct(xs, 50) - pct(base, 50)),
      added_mean_us: r1(mean(xs) - mean(base)),
      cpu_us_per_req: r1(pct(cpu[key(l, k)]!, 50)),
      added_cpu_us: r1(pct(cpu[key(l, k)]!, 50) - baseCpu),
      throughput_rps: Math.round(pct(t, 50)),
    });
  }
}
console.table(results);
const sizes = Object.fromEntries(
  await Promise.all(
    servers.map(async (s) => {
      const { statSync, existsSync } = await import('node:fs');
      const f = path.join(s.dir, 'audit.log');
      return [s.level, existsSync(f) ? statSync(f).size : 0];
    }),
  ),
);
const out = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
  requests_per_round: REQUESTS,
  rounds: ROUNDS,
  concurrency: CONCURRENCY,
  audit_log_bytes: sizes,
  results,
};
const resultsDir = path.join(import.meta.dirname, 'results');
mkdirSync(resultsDir, { recursive: true });
writeFileSync(path.join(resultsDir, 'audit.json'), JSON.stringify(out, null, 2) + '\n');
console.log(`wrote ${path.join(resultsDir, 'audit.json')}`);

for (const s of servers) {
  await s.pool.close();
  await s.built.close();
  rmSync(s.dir, { recursive: true, force: true });
}
