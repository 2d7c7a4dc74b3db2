import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { DatabaseKind } from '../../config/index.js';
import type { Db, Trx } from '../db/index.js';
import type { AuditCheckpointsTable, AuditEventsTable } from './tables.js';

/** `prev_hash` of the very first entry. */
export const GENESIS_HASH = '0'.repeat(64);
const HASH_VERSION = 'hridaai-audit-v1';

export type ChainFields = Omit<AuditEventsTable, 'seq' | 'prev_hash' | 'hash'>;

/**
 * SHA-256 over a canonical serialisation: a JSON array of the fields in a fixed order, with the
 * JSON columns hashed as the exact text stored. Any change to any column breaks the hash.
 */
export function hashEntry(seq: number, prevHash: string, f: ChainFields): string {
  const canonical = JSON.stringify([
    HASH_VERSION,
    seq,
    prevHash,
    f.created_at,
    f.action,
    f.actor_id,
    f.subject_id,
    f.resource_type,
    f.resource_id,
    f.result,
    f.ip,
    f.request_id,
    f.before,
    f.after,
    f.details,
  ]);
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

/**
 * Takes the chain lock for the rest of the transaction and returns the head. On PostgreSQL an
 * advisory transaction lock (per schema) serialises appenders and `FOR UPDATE` makes a stale
 * snapshot fail instead of forking; on SQLite the first statement is a write, so the transaction
 * holds the database write lock before it reads the head.
 */
export async function lockChain(trx: Trx, kind: DatabaseKind): Promise<{ seq: number; hash: string }> {
  if (kind === 'postgresql') {
    await sql`select pg_advisory_xact_lock(738207, hashtext(coalesce(current_schema(), '')))`.execute(trx);
    const head = await trx
      .selectFrom('audit_chain')
      .select(['seq', 'hash'])
      .where('id', '=', 1)
      .forUpdate()
      .executeTakeFirst();
    if (!head) throw new Error('audit_chain head row is missing');
    return { seq: Number(head.seq), hash: head.hash };
  }
  const head = await trx
    .updateTable('audit_chain')
    .set({ updated_at: Date.now() })
    .where('id', '=', 1)
    .returning(['seq', 'hash'])
    .executeTakeFirst();
  if (!head) throw new Error('audit_chain head row is missing');
  return { seq: Number(head.seq), hash: head.hash };
}

/** Appends entries to the chain inside `trx` (which must stay open until the caller's change commits). */
export async function appendEntries(trx: Trx, kind: DatabaseKind, entries: ChainFields[]): Promise<AuditEventsTable[]> {
  if (entries.length === 0) return [];
  const head = await lockChain(trx, kind);
  let seq = head.seq;
  let prev = head.hash;
  const rows: AuditEventsTable[] = [];
  for (const f of entries) {
    seq += 1;
    const hash = hashEntry(seq, prev, f);
    rows.push({ ...f, seq, prev_hash: prev, hash });
    prev = hash;
  }
  for (let i = 0; i < rows.length; i += 200)
    await trx
      .insertInto('audit_events')
      .values(rows.slice(i, i + 200))
      .execute();
  await trx.updateTable('audit_chain').set({ seq, hash: prev, updated_at: Date.now() }).where('id', '=', 1).execute();
  return rows;
}

export interface ChainBreak {
  seq: number;
  reason: string;
}

export interface VerifyReport {
  ok: boolean;
  /** Entries checked. */
  entries: number;
  firstSeq: number | null;
  lastSeq: number | null;
  head: { seq: number; hash: string } | null;
  /** Everything up to this entry was pruned; the chain continues from its hash. */
  prunedThrough: { seq: number; hash: string } | null;
  checkpoints: number;
  break: ChainBreak | null;
}

/**
 * Walks the whole chain in order and reports the first break: a missing or extra entry, an entry
 * whose contents do not match its hash, a `prev_hash` that does not link, a sealed checkpoint that
 * disagrees, or a head that does not match the last entry.
 */
export async function verifyChain(db: Db, opts: { pageSize?: number } = {}): Promise<VerifyReport> {
  const pageSize = opts.pageSize ?? 5000;
  const headRow = await db.selectFrom('audit_chain').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst();
  const head = headRow ? { seq: Number(headRow.seq), hash: headRow.hash } : null;
  const cps: AuditCheckpointsTable[] = (await db.selectFrom('audit_checkpoints').selectAll().execute()).map((c) => ({
    ...c,
    last_seq: Number(c.last_seq),
    first_seq: Number(c.first_seq),
  }));
  const pruned = cps.filter((c) => c.pruned_at !== null).sort((a, b) => b.last_seq - a.last_seq)[0];
  const sealed = new Map(cps.map((c) => [c.last_seq, c]));
  const report: VerifyReport = {
    ok: true,
    entries: 0,
    firstSeq: null,
    lastSeq: null,
    head,
    prunedThrough: pruned ? { seq: pruned.last_seq, hash: pruned.last_hash } : null,
    checkpoints: cps.length,
    break: null,
  };
  const fail = (seq: number, reason: string): VerifyReport => ({ ...report, ok: false, break: { seq, reason } });
  if (!head) return fail(0, 'the chain head (audit_chain) is missing');

  let expected = (pruned?.last_seq ?? 0) + 1;
  let prev = pruned?.last_hash ?? GENESIS_HASH;
  let after = 0;
  for (;;) {
    const page = await db
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', '>', after)
      .orderBy('seq')
      .limit(pageSize)
      .execute();
    for (const raw of page) {
      const row = { ...raw, seq: Number(raw.seq), created_at: Number(raw.created_at) };
      if (row.seq < expected)
        return fail(row.seq, `entry ${row.seq} lies inside a pruned segment (the chain continues at ${expected})`);
      if (row.seq > expected)
        return fail(expected, `entr${row.seq - expected > 1 ? 'ies' : 'y'} ${expected}…${row.seq - 1} missing`);
      if (row.prev_hash !== prev) return fail(row.seq, 'prev_hash does not link to the previous entry');
      const { seq: _s, prev_hash: _p, hash: _h, ...fields } = row;
      if (hashEntry(row.seq, row.prev_hash, fields) !== row.hash)
        return fail(row.seq, 'contents do not match the entry hash (entry modified)');
      const cp = sealed.get(row.seq);
      if (cp && cp.last_hash !== row.hash) return fail(row.seq, 'hash differs from the sealed segment checkpoint');
      report.entries += 1;
      report.firstSeq ??= row.seq;
      report.lastSeq = row.seq;
      prev = row.hash;
      expected = row.seq + 1;
    }
    if (page.length < pageSize) break;
    after = Number(page[page.length - 1]!.seq);
  }
  for (const cp of cps)
    if (cp.pruned_at === null && (cp.last_seq >= expected || cp.first_seq > cp.last_seq))
      return fail(cp.last_seq, `sealed segment ${cp.first_seq}…${cp.last_seq} has no matching entries`);
  if (head.seq !== expected - 1)
    return head.seq > expected - 1
      ? fail(expected, `entries ${expected}…${head.seq} missing (the chain head is at ${head.seq})`)
      : fail(head.seq + 1, `entries after ${head.seq} are not covered by the chain head`);
  if (head.hash !== prev) return fail(head.seq, 'the chain head hash does not match the last entry');
  return report;
}
