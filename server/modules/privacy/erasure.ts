import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import type { Db, Trx } from '../../platform/db/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { otherActiveAdmins } from '../auth/accounts.js';
import { journalFileDeletions, processFileDeletions, type JournalResult } from './file-journal.js';
import { APP_STATE_VALUE, ERASED, ERASURE_PLAN, type PlanEntry } from './plan.js';

/**
 * The one erasure function: `DELETE /api/v1/users/me` and the admin's `DELETE /api/v1/users/:id`
 * both call it. In ONE transaction it locks the account, applies the last-admin rule, revokes the
 * sessions, journals the user's files, executes the erasure plan (plan.ts) over every table that
 * references users, deletes the account and records `user.deleted` in the audit trail. After the
 * commit it drops caches on every instance and removes the journaled files; a crash in between is
 * repaired at the next start (the journal survives in the database).
 */

export interface ErasureMeta {
  /** Who erases (the user themselves, or the admin). */
  actorId: string | null;
  subjectId?: string | null;
  ip?: string | null;
  requestId?: string | null;
  via: 'self' | 'admin' | 'scim';
}

export interface ErasureHooks {
  /** Runs inside the transaction once the account is locked, before anything changes (e.g. SCIM If-Match). */
  guard?: (trx: Trx, user: { id: string; email: string; role: string; active: number }) => Promise<void>;
  /** Called inside the transaction, after every change, before the commit (tests: crash mid-erasure). */
  beforeCommit?: () => Promise<void>;
  /** Called after the commit, before files are removed (tests: crash between commit and cleanup). */
  afterCommit?: () => Promise<void>;
}

export interface ErasureReport {
  userId: string;
  rows: Record<string, number>;
  files: JournalResult;
}

function affected(r: { numAffectedRows?: bigint } | undefined): number {
  return Number(r?.numAffectedRows ?? 0n);
}

async function tableExists(trx: Trx, kind: 'sqlite' | 'postgresql', table: string): Promise<boolean> {
  const r =
    kind === 'postgresql'
      ? await sql<{ n: number }>`select count(*)::int as n from information_schema.tables
          where table_schema = current_schema() and table_name = ${table}`.execute(trx)
      : await sql<{
          n: number;
        }>`select count(*) as n from sqlite_master where type = 'table' and name = ${table}`.execute(trx);
  return Number(r.rows[0]?.n ?? 0) > 0;
}

async function runEntry(trx: Trx, e: PlanEntry, userId: string, email: string): Promise<number> {
  if (e.action === 'keep') return 0;
  const t = sql.table(e.table);
  const cond = e.where ? e.where(userId, email) : sql`${sql.ref(e.column!)} = ${userId}`;
  if (e.action === 'delete' || e.action === 'cleanup') {
    if (e.files) {
      const rows = await sql<{
        name: string;
      }>`select ${sql.ref(e.files.nameColumn)} as name from ${t} where ${cond}`.execute(trx);
      const names = rows.rows.map((r) => r.name).filter((n) => typeof n === 'string' && n.length > 0);
      if (names.length)
        await journalFileDeletions(
          trx,
          names.map((n) => `${e.files!.dir}/${n}`),
          'user_erased',
        );
    }
    return affected(await sql`delete from ${t} where ${cond}`.execute(trx));
  }
  if (e.action === 'null')
    return affected(await sql`update ${t} set ${sql.ref(e.column!)} = null where ${cond}`.execute(trx));
  // anonymise
  const sets = Object.entries(e.set ?? {}).map(([k, v]) => sql`${sql.ref(k)} = ${v}`);
  return affected(await sql`update ${t} set ${sql.join(sets)} where ${cond}`.execute(trx));
}

/**
 * Usage rows are written after their response (a stream may still be running when its user is
 * erased): rows created since `since` whose user or actor no longer exists are anonymised like the
 * erasure does. Run after every erasure once the longest request could have ended, and at start.
 */
export async function anonymiseOrphanUsage(db: Db, since: number): Promise<number> {
  const a = await sql`update gateway_usage set user_id = ${ERASED}, actor_id = null, key_id = null
    where created_at >= ${since} and user_id <> ${ERASED}
      and not exists (select 1 from users where users.id = gateway_usage.user_id)`.execute(db);
  const b = await sql`update gateway_usage set actor_id = null
    where created_at >= ${since} and actor_id is not null
      and not exists (select 1 from users where users.id = gateway_usage.actor_id)`.execute(db);
  return affected(a) + affected(b);
}

const lateSweeps = new WeakMap<Db, Set<NodeJS.Timeout>>();

/** Timers of pending late sweeps for `db` (cleared when the server closes). */
export function cancelLateSweeps(db: Db): void {
  for (const t of lateSweeps.get(db) ?? []) clearTimeout(t);
  lateSweeps.delete(db);
}

function scheduleLateSweep(ctx: Pick<AppContext, 'db' | 'config' | 'log'>, since: number): void {
  const timers = lateSweeps.get(ctx.db) ?? new Set<NodeJS.Timeout>();
  lateSweeps.set(ctx.db, timers);
  const t = setTimeout(
    () => {
      timers.delete(t);
      anonymiseOrphanUsage(ctx.db, since).catch((e: Error) =>
        ctx.log.warn({ err: e.message }, 'Could not anonymise late usage rows of an erased user'),
      );
    },
    (ctx.config.GATEWAY_REQUEST_TIMEOUT + 60) * 1000,
  );
  t.unref();
  timers.add(t);
}

/** Erases a user. Throws 404 (no such user) or 409 `last_admin`. */
export async function eraseUser(
  ctx: AppContext,
  userId: string,
  meta: ErasureMeta,
  hooks: ErasureHooks = {},
): Promise<ErasureReport> {
  const rows: Record<string, number> = {};
  const impersonated = new Set<string>();
  const startedAt = Date.now();
  await ctx.db.transaction().execute(async (trx) => {
    let q = trx.selectFrom('users').select(['id', 'email', 'name', 'role', 'active']).where('id', '=', userId);
    if (ctx.dbKind === 'postgresql') q = q.forUpdate();
    const before = await q.executeTakeFirst();
    if (!before) throw notFound('User');
    if (hooks.guard) await hooks.guard(trx, before);
    if (before.role === 'admin' && before.active === 1 && (await otherActiveAdmins(trx, ctx.dbKind, userId)) === 0)
      throw new AppError('last_admin', 'The last active administrator cannot be deleted');

    const revoked = await ctx.sessions.revokeAllForUser(userId, 'deleted', { trx });
    // Sessions in which this user impersonated someone else end too.
    const acting = await trx
      .selectFrom('sessions')
      .select(['id', 'user_id'])
      .where('actor_id', '=', userId)
      .where('user_id', '!=', userId)
      .execute();
    for (const s of acting) {
      await ctx.sessions.revoke(s.id, 'deleted', { trx });
      impersonated.add(s.user_id);
    }

    for (const e of ERASURE_PLAN) {
      if (e.action === 'keep') continue;
      if (!(await tableExists(trx, ctx.dbKind, e.table))) continue;
      const n = await runEntry(trx, e, userId, before.email);
      if (n > 0) {
        const k = e.column ? `${e.table}.${e.column}` : `${e.table}*`;
        rows[k] = (rows[k] ?? 0) + n;
      }
    }
    const marker =
      await sql`update ${sql.table(APP_STATE_VALUE.table)} set ${sql.ref(APP_STATE_VALUE.column)} = ${ERASED}
      where ${sql.ref(APP_STATE_VALUE.column)} = ${userId}`.execute(trx);
    if (affected(marker)) rows[`${APP_STATE_VALUE.table}.${APP_STATE_VALUE.column}`] = affected(marker);
    await trx.deleteFrom('users').where('id', '=', userId).execute();
    rows.users = 1;

    await ctx.audit.record(trx, {
      action: 'user.deleted',
      actorId: meta.actorId,
      subjectId: meta.subjectId ?? meta.actorId,
      resourceType: 'user',
      resourceId: userId,
      ip: meta.ip ?? null,
      requestId: meta.requestId ?? null,
      before: { email: before.email, name: before.name, role: before.role, active: before.active === 1 },
      details: { via: meta.via, sessions_revoked: revoked, rows },
    });
    if (hooks.beforeCommit) await hooks.beforeCommit();
  });

  await ctx.sessions.afterUserChange(userId);
  for (const u of impersonated) await ctx.sessions.afterUserChange(u);
  if (hooks.afterCommit) await hooks.afterCommit();
  const files = await processFileDeletions(ctx);
  // Requests that were running may still write usage rows: anonymise those once they have ended.
  scheduleLateSweep(ctx, startedAt - ctx.config.GATEWAY_REQUEST_TIMEOUT * 1000);
  return { userId, rows, files };
}
