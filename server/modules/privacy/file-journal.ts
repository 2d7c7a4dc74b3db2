import { randomUUID } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../config/index.js';
import type { Db, Trx } from '../../platform/db/index.js';
import './tables.js';

/**
 * Crash-safe file removal. A transaction that deletes rows naming files on disk writes the files'
 * paths to `pending_file_deletions` in the same transaction; after it commits, the journal is
 * processed (unlink, then drop the entry). A crash before the commit loses nothing (rows and files
 * stay); a crash after it leaves journal entries that the next start processes — no orphan either
 * way. Unlinking is idempotent (a missing file counts as removed), so several instances may
 * process the same entry.
 */

const MAX_ATTEMPTS_LOGGED = 5;

/** Resolves a journal path inside DATA_DIR, or null when it would leave it. */
export function resolveInDataDir(dataDir: string, rel: string): string | null {
  if (rel.length === 0 || path.isAbsolute(rel) || rel.includes('\0')) return null;
  const abs = path.resolve(dataDir, rel);
  const back = path.relative(dataDir, abs);
  if (back === '' || back.startsWith('..') || path.isAbsolute(back)) return null;
  return abs;
}

export async function journalFileDeletions(trx: Trx, paths: readonly string[], reason: string): Promise<void> {
  const now = Date.now();
  const rows = paths.map((p) => ({
    id: randomUUID(),
    path: p,
    reason,
    created_at: now,
    attempts: 0,
    last_error: null,
  }));
  for (let i = 0; i < rows.length; i += 200)
    await trx
      .insertInto('pending_file_deletions')
      .values(rows.slice(i, i + 200))
      .execute();
}

export interface JournalResult {
  removed: number;
  failed: number;
}

/** Processes the journal until it is empty or only failing entries remain. */
export async function processFileDeletions(
  ctx: { config: Pick<Config, 'dataDir'>; db: Db; log: Logger },
  opts: { batch?: number } = {},
): Promise<JournalResult> {
  const batch = opts.batch ?? 500;
  const out: JournalResult = { removed: 0, failed: 0 };
  const skip = new Set<string>();
  for (;;) {
    let q = ctx.db.selectFrom('pending_file_deletions').selectAll().orderBy('created_at').orderBy('id').limit(batch);
    if (skip.size) q = q.where('id', 'not in', [...skip]);
    const rows = await q.execute();
    if (rows.length === 0) return out;
    for (const r of rows) {
      const abs = resolveInDataDir(ctx.config.dataDir, r.path);
      let error: string | null = null;
      if (!abs) error = 'path outside DATA_DIR';
      else
        try {
          await unlink(abs);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT') error = code ?? (e as Error).message;
        }
      if (error === null) {
        await ctx.db.deleteFrom('pending_file_deletions').where('id', '=', r.id).execute();
        out.removed++;
      } else {
        skip.add(r.id);
        out.failed++;
        await ctx.db
          .updateTable('pending_file_deletions')
          .set({ attempts: r.attempts + 1, last_error: error.slice(0, 500) })
          .where('id', '=', r.id)
          .execute();
        if (r.attempts < MAX_ATTEMPTS_LOGGED)
          ctx.log.error(
            { entry: r.id, error },
            'Could not remove a file of an erased record; will retry at next start',
          );
      }
    }
    if (rows.length < batch) return out;
  }
}
