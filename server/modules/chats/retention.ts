import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../context.js';
import type { Db } from '../../platform/db/index.js';
import { deleteChatRows } from './service.js';
import './tables.js';

/**
 * A lease row per periodic job: whoever holds an unexpired lease runs the job; the others skip.
 * Taking the lease is one atomic upsert (INSERT … ON CONFLICT DO UPDATE … WHERE expired or mine)
 * on SQLite and PostgreSQL alike, then a read-back of the holder. A crashed holder's lease simply
 * expires.
 */
export async function acquireLease(db: Db, name: string, holder: string, ttlMs: number, now = Date.now()) {
  const expires = now + ttlMs;
  await db
    .insertInto('job_leases')
    .values({ name, holder, expires_at: expires, updated_at: now })
    .onConflict((oc) =>
      oc
        .column('name')
        .doUpdateSet({ holder, expires_at: expires, updated_at: now })
        .where((eb) => eb.or([eb('job_leases.expires_at', '<=', now), eb('job_leases.holder', '=', holder)])),
    )
    .execute();
  const row = await db.selectFrom('job_leases').select('holder').where('name', '=', name).executeTakeFirst();
  return row?.holder === holder;
}

export async function releaseLease(db: Db, name: string, holder: string): Promise<void> {
  await db.deleteFrom('job_leases').where('name', '=', name).where('holder', '=', holder).execute();
}

export const RETENTION_LEASE = 'chat_retention';
const LEASE_MS = 10 * 60_000;
const BATCH = 200;
const FIRST_RUN_MS = 60_000;
const EVERY_MS = 60 * 60_000;
const DAY_MS = 86_400_000;

export interface RetentionResult {
  ran: boolean;
  deleted: number;
}

/**
 * Deletes chats (with their messages and share links) not updated for CHAT_RETENTION_DAYS days.
 * Pinned chats are kept; archived chats are not exempt. Only the lease holder runs.
 */
export async function runChatRetention(
  ctx: Pick<AppContext, 'config' | 'db' | 'audit' | 'log'>,
  opts: { holder: string; now?: number },
): Promise<RetentionResult> {
  const days = ctx.config.CHAT_RETENTION_DAYS;
  if (days === null) return { ran: false, deleted: 0 };
  const now = opts.now ?? Date.now();
  if (!(await acquireLease(ctx.db, RETENTION_LEASE, opts.holder, LEASE_MS, now))) return { ran: false, deleted: 0 };
  const cutoff = now - days * DAY_MS;
  let deleted = 0;
  try {
    for (;;) {
      const n = await ctx.db.transaction().execute(async (trx) => {
        const rows = await trx
          .selectFrom('chats')
          .select(['id', 'user_id'])
          .where('updated_at', '<', cutoff)
          .where('pinned', '=', 0)
          .orderBy('updated_at')
          .limit(BATCH)
          .execute();
        const byOwner = new Map<string, string[]>();
        for (const r of rows) byOwner.set(r.user_id, [...(byOwner.get(r.user_id) ?? []), r.id]);
        let count = 0;
        for (const [owner, ids] of byOwner) {
          // Re-check the age in the same transaction: a chat updated meanwhile is kept.
          const stale = await trx
            .selectFrom('chats')
            .select('id')
            .where('id', 'in', ids)
            .where('updated_at', '<', cutoff)
            .where('pinned', '=', 0)
            .execute();
          count += await deleteChatRows(
            trx,
            owner,
            stale.map((s) => s.id),
          );
        }
        if (count > 0)
          await ctx.audit.record(trx, {
            action: 'chat.retention_deleted',
            actorId: null,
            resourceType: 'chat',
            details: { count, cutoff, retention_days: days },
          });
        return { selected: rows.length, count };
      });
      deleted += n.count;
      if (n.selected < BATCH) break;
      await acquireLease(ctx.db, RETENTION_LEASE, opts.holder, LEASE_MS);
    }
  } finally {
    await releaseLease(ctx.db, RETENTION_LEASE, opts.holder).catch(() => undefined);
  }
  if (deleted > 0) ctx.log.info({ deleted, retention_days: days }, 'Chat retention deleted old chats');
  return { ran: true, deleted };
}

/** Starts the periodic job (a minute after start, then hourly) when CHAT_RETENTION_DAYS is set. */
export function scheduleChatRetention(app: FastifyInstance, ctx: AppContext): void {
  if (ctx.config.CHAT_RETENTION_DAYS === null) return;
  const holder = `${randomUUID()}`;
  let running: Promise<unknown> | null = null;
  const run = () => {
    running ??= runChatRetention(ctx, { holder })
      .catch((e: Error) => ctx.log.error({ err: e.message }, 'Chat retention failed'))
      .finally(() => {
        running = null;
      });
  };
  let first: NodeJS.Timeout | null = null;
  let every: NodeJS.Timeout | null = null;
  app.addHook('onReady', async () => {
    first = setTimeout(run, FIRST_RUN_MS);
    first.unref();
    every = setInterval(run, EVERY_MS);
    every.unref();
  });
  app.addHook('onClose', async () => {
    if (first) clearTimeout(first);
    if (every) clearInterval(every);
    await running;
  });
}
