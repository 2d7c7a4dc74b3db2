/** Starts HridaAI for the benchmarks: compiled as `npm start` runs it, with a user, a key, grants and limits. */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { buildServer, freePort, ROOT, stop, waitHttp } from './procs.js';

async function json(url: string, method: string, body?: unknown, token?: string) {
  const r = await fetch(url, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** Starts HridaAI (compiled, as `npm start` runs it) and sets up an admin, a user with a key, grants and limits. */
export async function startHridaAI(
  work: string,
  upstreamPort: number,
  extraNodeArgs: string[] = [],
  /** A compiled entry (dist/server/main.js) to run instead of compiling afresh. */
  entry?: string,
) {
  const build = entry ?? buildServer(path.join(work, 'build'));
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: path.join(work, 'data'),
    HRIDAAI_SECRET_KEY: randomBytes(32).toString('base64'),
    ENV: 'prod',
    LOG_FORMAT: 'json',
    PASSWORD_HASH_ROUNDS: '10',
    ENABLE_SIGNUP: 'true',
    DEFAULT_USER_ROLE: 'user',
    ENABLE_API_KEYS: 'true',
    USER_PERMISSIONS_FEATURES_API_KEYS: 'true',
  };
  // BENCH_NODE_ARGS: extra node flags for the HridaAI process (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`).
  const nodeArgs = [...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), ...extraNodeArgs];
  const args = [
    ...nodeArgs,
    ...(build ? [build, 'serve'] : ['--import', 'tsx', path.join(ROOT, 'server/main.ts'), 'serve']),
  ];
  const child = spawn(process.execPath, args, { cwd: work, env, stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  await waitHttp(`${base}/health`);
  const admin = await json(`${base}/api/v1/auths/signup`, 'POST', {
    name: 'Bench Admin',
    email: 'admin@bench.local',
    password: 'bench password 1',
  });
  const adminToken = admin.token as string;
  await json(
    `${base}/api/v1/connections`,
    'POST',
    { type: 'openai', name: 'mock', base_url: `http://127.0.0.1:${upstreamPort}/v1`, api_key: 'sk-bench-upstream' },
    adminToken,
  );
  const user = await json(`${base}/api/v1/auths/signup`, 'POST', {
    name: 'Bench User',
    email: 'user@bench.local',
    password: 'bench password 2',
  });
  const userId = (user.user as { id: string }).id;
  const key = (await json(`${base}/api/v1/api-keys`, 'POST', { name: 'bench' }, user.token as string)).key as string;
  for (const m of ['bench-model', 'bench-stream', 'bench-hold'])
    await json(
      `${base}/api/v1/access/model/${m}/grants`,
      'POST',
      { principal_type: 'user', principal_id: userId, permission: 'read' },
      adminToken,
    );
  // Limits stay on (a rolling requests-per-minute window per request), high enough not to refuse.
  await json(
    `${base}/api/v1/gateway/limits`,
    'PUT',
    { scope: 'user', subject_id: userId, requests_per_minute: 100_000_000, concurrent_requests: 0 },
    adminToken,
  );
  return { child, port, key, compiled: build !== null, stop: () => stop(child) };
}
