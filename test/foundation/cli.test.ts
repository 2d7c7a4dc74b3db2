import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PG_ADMIN_URL, pgUrlForSchema, services, sleep } from '../harness.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
function tmp() {
  const d = mkdtempSync(path.join(tmpdir(), 'hridaai-cli-'));
  dirs.push(d);
  return d;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function cli(args: string[], env: Record<string, string> = {}) {
  const cleanEnv: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
  return spawnSync(process.execPath, ['--import', 'tsx', 'server/main.ts', ...args], {
    cwd: ROOT,
    env: { ...cleanEnv, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

describe('hrida-ai CLI', () => {
  it('has --help on every command', () => {
    const main = cli(['--help']);
    expect(main.status).toBe(0);
    expect(main.stdout).toMatch(/Commands:[\s\S]*serve[\s\S]*migrate/);
    for (const c of ['serve', 'migrate']) {
      const r = cli([c, '--help']);
      expect(r.status, c).toBe(0);
      expect(r.stdout, c).toContain(`hrida-ai ${c}`);
    }
  });

  it('refuses unknown commands and options with exit code 2', () => {
    expect(cli(['frobnicate']).status).toBe(2);
    expect(cli(['serve', '--bogus']).status).toBe(2);
  });

  it('stops on an invalid setting with the variable name and what is allowed', () => {
    const r = cli(['serve'], { DATA_DIR: tmp(), HSTS: 'max-age=abc', DEFAULT_USER_ROLE: 'admin' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/HSTS: unknown directive/);
    expect(r.stderr).toMatch(/DEFAULT_USER_ROLE: must be one of pending, user/);
  });

  it('migrate creates the SQLite database in DATA_DIR', () => {
    const d = tmp();
    const r = cli(['migrate'], { DATA_DIR: d, LOG_FORMAT: 'json' });
    expect(r.status, r.stderr).toBe(0);
    expect(statSync(path.join(d, 'hridaai.db')).size).toBeGreaterThan(0);
    expect(r.stdout).toContain('0001_foundation');
    const again = cli(['migrate'], { DATA_DIR: d, LOG_FORMAT: 'json' });
    expect(again.stdout).toContain('up to date');
  });

  it.skipIf(!services.postgres)('migrate works on PostgreSQL', async () => {
    const schema = `cli_${Date.now()}`;
    const c = new pg.Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    await c.query(`create schema ${schema}`);
    try {
      const r = cli(['migrate'], { DATA_DIR: tmp(), DATABASE_URL: pgUrlForSchema(schema), LOG_FORMAT: 'json' });
      expect(r.status, r.stderr).toBe(0);
      const t = await c.query(`select table_name from information_schema.tables where table_schema = $1 order by 1`, [
        schema,
      ]);
      expect(t.rows.map((x) => x.table_name)).toEqual(expect.arrayContaining(['users', 'sessions', 'identities']));
    } finally {
      await c.query(`drop schema ${schema} cascade`);
      await c.end();
    }
  });

  it('serve listens, answers /health, runs with ENV=prod and honours FORWARDED_ALLOW_IPS', async () => {
    const d = tmp();
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts', 'serve'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        DATA_DIR: d,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_FORMAT: 'json',
        FORWARDED_ALLOW_IPS: '10.9.9.9',
        PASSWORD_HASH_ROUNDS: '4',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    try {
      let health: Response | null = null;
      for (let i = 0; i < 100 && !health; i++) {
        await sleep(200);
        health = await fetch(`http://127.0.0.1:${port}/health`).catch(() => null);
      }
      expect(health, out).not.toBeNull();
      expect(await health!.json()).toEqual({ status: 'ok' });
      expect(statSync(path.join(d, '.hridaai_secret_key')).mode & 0o777).toBe(0o600);
      // ENV=prod: no API document.
      const doc = await fetch(`http://127.0.0.1:${port}/openapi.json`);
      expect(await doc.text()).not.toContain('"openapi"');
      // X-Forwarded-For from 127.0.0.1 (not in FORWARDED_ALLOW_IPS) is ignored.
      const up = await fetch(`http://127.0.0.1:${port}/api/v1/auths/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.5' },
        body: JSON.stringify({ name: 'A', email: 'a@example.com', password: 'serve password' }),
      });
      expect(up.status).toBe(201);
      const { token } = (await up.json()) as { token: string };
      const sessions = (await (
        await fetch(`http://127.0.0.1:${port}/api/v1/auths/sessions`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as { items: { ip: string }[] };
      expect(sessions.items[0]!.ip).toBe('127.0.0.1');
      expect(out).toMatch(/FORWARDED_ALLOW_IPS|listening/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
