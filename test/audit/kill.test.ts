import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { loadConfig } from '../../server/config/index.js';
import { verifyChain } from '../../server/platform/audit/chain.js';
import { openDatabase } from '../../server/platform/db/index.js';
import { PG_ADMIN_URL, describeMatrix, pgUrlForSchema, type Backend } from '../harness.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'mutator.ts');

async function pgAdmin(q: string) {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    await c.query(q);
  } finally {
    await c.end();
  }
}

describeMatrix(
  'audit trail under kill -9',
  [
    { db: 'sqlite', redis: false, label: 'sqlite' },
    { db: 'postgresql', redis: false, label: 'postgresql' },
  ] satisfies Backend[],
  (b) => {
    const cleanup: (() => Promise<void>)[] = [];
    afterAll(async () => {
      for (const c of cleanup) await c();
    });

    it('every committed change has its event and no event exists without its change', async () => {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'hridaai-kill-'));
      cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
      const env: Record<string, string> = {
        ENV: 'test',
        DATA_DIR: dataDir,
        PASSWORD_HASH_ROUNDS: '4',
        HRIDAAI_SECRET_KEY: randomBytes(32).toString('base64'),
        LOG_FORMAT: 'json',
        ENABLE_SIGNUP: 'false',
      };
      if (b.db === 'postgresql') {
        const schema = `kill_${randomBytes(5).toString('hex')}`;
        await pgAdmin(`create schema ${schema}`);
        cleanup.push(() => pgAdmin(`drop schema if exists ${schema} cascade`));
        env.DATABASE_URL = pgUrlForSchema(schema);
      }

      const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += String(d)));
      const acked = new Map<string, string[]>();
      let okCount = 0;
      let buf = '';
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
        child.on('exit', (code, signal) => resolve(signal ?? code)),
      );
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child made no progress: ${stderr}`)), 45_000);
        child.on('exit', () => {
          clearTimeout(timer);
          reject(new Error(`child exited early: ${stderr}`));
        });
        child.stdout.on('data', (d) => {
          buf += String(d);
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            const m = /^ok (\S+) (\S+)$/.exec(line);
            if (!m) continue;
            acked.set(m[1]!, [...(acked.get(m[1]!) ?? []), m[2]!]);
            okCount += 1;
            if (okCount === 60) {
              // Kill in the middle of the workers' transactions.
              process.kill(child.pid!, 'SIGKILL');
              clearTimeout(timer);
              resolve();
            }
          }
        });
      });
      expect(await exited).toBe('SIGKILL');

      const config = loadConfig(env);
      const dbh = openDatabase(config);
      try {
        const users = await dbh.db.selectFrom('users').select(['id', 'name']).where('id', 'like', 'u-%').execute();
        expect(users).toHaveLength(4);
        for (const u of users) {
          const events = await dbh.db
            .selectFrom('audit_events')
            .select(['after', 'resource_id'])
            .where('action', '=', 'user.updated')
            .where('resource_id', '=', u.id)
            .orderBy('seq')
            .execute();
          const names = events.map((e) => (JSON.parse(e.after!) as { name: string }).name);
          // the committed changes are a prefix w<k>-0 … w<k>-m; the events must be exactly those
          const m = u.name === 'initial' ? -1 : Number(u.name.split('-')[1]);
          const k = u.id.split('-')[1];
          expect(names, u.id).toEqual(Array.from({ length: m + 1 }, (_, i) => `w${k}-${i}`));
          // and every change the client saw acknowledged is among them
          for (const n of acked.get(u.id) ?? []) expect(names).toContain(n);
        }
        const report = await verifyChain(dbh.db);
        expect(report.ok, JSON.stringify(report.break)).toBe(true);
      } finally {
        await dbh.close();
      }
    });
  },
);
