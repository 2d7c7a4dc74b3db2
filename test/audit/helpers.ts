import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { AuditPipeline } from '../../server/platform/audit/service.js';
import type { TestApp } from '../harness.js';

/** The app's audit pipeline (the concrete service behind ctx.audit). */
export function pipeline(app: TestApp): AuditPipeline {
  return app.ctx.audit as AuditPipeline;
}

/** Every entry of the request audit log file (after flushing the queue). */
export async function logEntries(app: TestApp, file = path.join(app.dataDir, 'audit.log')) {
  await app.ctx.audit.flush();
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** The raw text of the log file and its rotated siblings. */
export function allLogText(dir: string, base = 'audit.log'): string {
  let out = '';
  for (const f of [base, ...Array.from({ length: 20 }, (_, i) => `${base}.${i + 1}`)]) {
    const p = path.join(dir, f);
    if (existsSync(p)) out += readFileSync(p, 'utf8');
  }
  return out;
}

/** A pino logger whose lines are kept in memory. */
export function memoryLogger(level: pino.Level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level }, dest), lines };
}

export async function trail(app: TestApp, action?: string) {
  let q = app.ctx.db.selectFrom('audit_events').selectAll().orderBy('seq');
  if (action) q = q.where('action', '=', action);
  return q.execute();
}
