import type { DatabaseKind } from '../../config/index.js';
import type { Db } from '../db/index.js';
import { appendEntries, lockChain } from './chain.js';
import type { AuditCheckpointsTable } from './tables.js';

export const DAY_MS = 86_400_000;
/** Upper bounds per run, so that one run never holds the chain lock for long. */
const MAX_SEAL_PER_RUN = 1000;
const MAX_PRUNE_PER_RUN = 30;

export interface RetentionResult {
  sealed: AuditCheckpointsTable[];
  pruned: { first_seq: number; last_seq: number; rows: number }[];
}

/**
 * Seals every finished UTC day of the trail into a segment (a contiguous seq range whose final hash
 * is stored as a checkpoint). Runs under the chain lock so that nothing is appended meanwhile.
 */
export async function sealSegments(db: Db, kind: DatabaseKind, now: number): Promise<AuditCheckpointsTable[]> {
  const todayStart = Math.floor(now / DAY_MS) * DAY_MS;
  return db.transaction().execute(async (trx) => {
    const head = await lockChain(trx, kind);
    const last = await trx
      .selectFrom('audit_checkpoints')
      .select((eb) => eb.fn.max('last_seq').as('m'))
      .executeTakeFirst();
    let sealedThrough = Number(last?.m ?? 0);
    const out: AuditCheckpointsTable[] = [];
    while (sealedThrough < head.seq && out.length < MAX_SEAL_PER_RUN) {
      const first = await trx
        .selectFrom('audit_events')
        .select(['seq', 'created_at'])
        .where('seq', '>', sealedThrough)
        .orderBy('seq')
        .limit(1)
        .executeTakeFirst();
      if (!first) break;
      const firstSeq = Number(first.seq);
      const dayEnd = (Math.floor(Number(first.created_at) / DAY_MS) + 1) * DAY_MS;
      if (dayEnd > todayStart) break; // that day is not over yet
      const next = await trx
        .selectFrom('audit_events')
        .select((eb) => eb.fn.min('seq').as('s'))
        .where('seq', '>', firstSeq)
        .where('created_at', '>=', dayEnd)
        .executeTakeFirst();
      const lastSeq = next?.s !== null && next?.s !== undefined ? Number(next.s) - 1 : head.seq;
      const agg = await trx
        .selectFrom('audit_events')
        .select((eb) => [
          eb.fn.min('created_at').as('first_at'),
          eb.fn.max('created_at').as('last_at'),
          eb.fn.countAll().as('n'),
        ])
        .where('seq', '>=', firstSeq)
        .where('seq', '<=', lastSeq)
        .executeTakeFirstOrThrow();
      const lastRow = await trx
        .selectFrom('audit_events')
        .select('hash')
        .where('seq', '=', lastSeq)
        .executeTakeFirstOrThrow();
      const cp: AuditCheckpointsTable = {
        last_seq: lastSeq,
        first_seq: firstSeq,
        last_hash: lastRow.hash,
        first_created_at: Number(agg.first_at),
        last_created_at: Number(agg.last_at),
        row_count: Number(agg.n),
        sealed_at: now,
        pruned_at: null,
      };
      await trx.insertInto('audit_checkpoints').values(cp).execute();
      out.push(cp);
      sealedThrough = lastSeq;
    }
    return out;
  });
}

/**
 * Prunes sealed segments whose newest entry is older than the retention period, oldest first and
 * only contiguously from the start of the chain. Each segment goes in its own transaction: mark the
 * checkpoint pruned (its hash stays as the anchor), delete its entries, and append `audit.pruned`.
 */
export async function pruneSegments(
  db: Db,
  kind: DatabaseKind,
  retentionDays: number,
  now: number,
): Promise<RetentionResult['pruned']> {
  const cutoff = now - retentionDays * DAY_MS;
  const out: RetentionResult['pruned'] = [];
  for (let i = 0; i < MAX_PRUNE_PER_RUN; i++) {
    const done = await db.transaction().execute(async (trx) => {
      await lockChain(trx, kind);
      const seg = await trx
        .selectFrom('audit_checkpoints')
        .selectAll()
        .where('pruned_at', 'is', null)
        .orderBy('last_seq')
        .limit(1)
        .executeTakeFirst();
      if (!seg || Number(seg.last_created_at) >= cutoff) return null;
      const first = Number(seg.first_seq);
      const last = Number(seg.last_seq);
      await trx.updateTable('audit_checkpoints').set({ pruned_at: now }).where('last_seq', '=', last).execute();
      const del = await trx
        .deleteFrom('audit_events')
        .where('seq', '>=', first)
        .where('seq', '<=', last)
        .executeTakeFirst();
      const rows = Number(del.numDeletedRows);
      await appendEntries(trx, kind, [
        {
          created_at: now,
          action: 'audit.pruned',
          actor_id: null,
          subject_id: null,
          resource_type: 'audit_segment',
          resource_id: `${first}-${last}`,
          result: 'success',
          ip: null,
          request_id: null,
          before: null,
          after: null,
          details: JSON.stringify({
            first_seq: first,
            last_seq: last,
            rows,
            first_created_at: Number(seg.first_created_at),
            last_created_at: Number(seg.last_created_at),
            checkpoint_hash: seg.last_hash,
            retention_days: retentionDays,
          }),
        },
      ]);
      return { first_seq: first, last_seq: last, rows };
    });
    if (!done) break;
    out.push(done);
  }
  return out;
}

export async function runRetention(
  db: Db,
  kind: DatabaseKind,
  retentionDays: number | null,
  now: number,
): Promise<RetentionResult> {
  if (retentionDays === null) return { sealed: [], pruned: [] };
  const sealed = await sealSegments(db, kind, now);
  const pruned = await pruneSegments(db, kind, retentionDays, now);
  return { sealed, pruned };
}
