import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import type { Db, Trx } from '../../platform/db/index.js';
import type { User } from '../../platform/db/types.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { redactPii, type PiiKind } from './pii.js';
import type { Memory } from './tables.js';
import './tables.js';

/**
 * Per-user memories. Every function takes the owner's id from the caller's identity (the route
 * passes `req.auth.user.id`): no route lets a request choose whose memories it reads or writes,
 * and every query carries the owner in its WHERE.
 */

export const MEMORY_PERMISSION = 'features.memories';
export const MAX_MEMORY_LENGTH = 10_000;
/** Most memories added to one chat's context (most recently updated first). */
export const MAX_INJECTED_MEMORIES = 50;

/**
 * The `features.memories` permission: admins always; pending or deactivated accounts never;
 * everyone when USER_PERMISSIONS_FEATURES_MEMORIES=true (default); otherwise members of a group
 * whose permissions grant `features.memories`.
 */
export async function memoriesPermitted(
  ctx: Pick<AppContext, 'config'>,
  db: Db | Trx,
  user: Pick<User, 'id' | 'role' | 'active'>,
): Promise<boolean> {
  if (user.active !== 1 || user.role === 'pending') return false;
  if (user.role === 'admin') return true;
  if (ctx.config.USER_PERMISSIONS_FEATURES_MEMORIES) return true;
  const rows = await db
    .selectFrom('group_members')
    .innerJoin('groups', 'groups.id', 'group_members.group_id')
    .select('groups.permissions as permissions')
    .where('group_members.user_id', '=', user.id)
    .execute();
  return rows.some((r) => {
    try {
      const p = JSON.parse(r.permissions) as Record<string, unknown>;
      return p !== null && typeof p === 'object' && p[MEMORY_PERMISSION] === true;
    } catch {
      return false;
    }
  });
}

export async function requireMemories(
  ctx: Pick<AppContext, 'config'>,
  db: Db | Trx,
  user: Pick<User, 'id' | 'role' | 'active'>,
): Promise<void> {
  if (!(await memoriesPermitted(ctx, db, user)))
    throw new AppError('permission_required', `This needs the "${MEMORY_PERMISSION}" permission`, {
      permission: MEMORY_PERMISSION,
    });
}

/** Applies MEMORY_PII_REDACTION to a memory's text before it is stored. */
export function prepareContent(
  ctx: Pick<AppContext, 'config'>,
  content: string,
): { content: string; redacted: PiiKind[] } {
  if (!ctx.config.MEMORY_PII_REDACTION) return { content, redacted: [] };
  const r = redactPii(content);
  return { content: r.text, redacted: Object.keys(r.counts) as PiiKind[] };
}

export function presentMemory(m: Memory) {
  return { id: m.id, content: m.content, created_at: m.created_at, updated_at: m.updated_at };
}

function likePattern(q: string): string {
  return `%${q.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c)}%`;
}

export async function listMemories(
  db: Db | Trx,
  ownerId: string,
  opts: { q?: string; page: number; limit: number },
): Promise<{ items: Memory[]; total: number }> {
  let q = db.selectFrom('memories').where('user_id', '=', ownerId);
  if (opts.q) q = q.where(sql<boolean>`lower(content) like ${likePattern(opts.q)} escape '\\'`);
  const { total } = await q.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  const items = await q
    .selectAll()
    .orderBy('updated_at', 'desc')
    .orderBy('id')
    .limit(opts.limit)
    .offset((opts.page - 1) * opts.limit)
    .execute();
  return { items, total: Number(total) };
}

export async function getMemory(db: Db | Trx, ownerId: string, id: string): Promise<Memory> {
  const m = await db
    .selectFrom('memories')
    .selectAll()
    .where('id', '=', id)
    .where('user_id', '=', ownerId)
    .executeTakeFirst();
  if (!m) throw notFound('Memory');
  return m;
}

export async function createMemory(db: Db | Trx, ownerId: string, content: string): Promise<Memory> {
  const now = Date.now();
  const m: Memory = { id: randomUUID(), user_id: ownerId, content, created_at: now, updated_at: now };
  await db.insertInto('memories').values(m).execute();
  return m;
}

export async function updateMemory(db: Db | Trx, ownerId: string, id: string, content: string): Promise<Memory> {
  const now = Date.now();
  const r = await db
    .updateTable('memories')
    .set({ content, updated_at: now })
    .where('id', '=', id)
    .where('user_id', '=', ownerId)
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) throw notFound('Memory');
  return getMemory(db, ownerId, id);
}

export async function deleteMemory(db: Db | Trx, ownerId: string, id: string): Promise<void> {
  const r = await db.deleteFrom('memories').where('id', '=', id).where('user_id', '=', ownerId).executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) throw notFound('Memory');
}

export async function memoryPreference(db: Db | Trx, ownerId: string): Promise<boolean> {
  const row = await db
    .selectFrom('memory_preferences')
    .select('inject_into_chats')
    .where('user_id', '=', ownerId)
    .executeTakeFirst();
  return row?.inject_into_chats === 1;
}

export async function setMemoryPreference(db: Db | Trx, ownerId: string, inject: boolean): Promise<void> {
  const now = Date.now();
  await db
    .insertInto('memory_preferences')
    .values({ user_id: ownerId, inject_into_chats: inject ? 1 : 0, updated_at: now })
    .onConflict((oc) => oc.column('user_id').doUpdateSet({ inject_into_chats: inject ? 1 : 0, updated_at: now }))
    .execute();
}

/**
 * The system-message text to add to a chat request for `user`, or null: only when the user turned
 * injection on, still holds the `features.memories` permission and has memories. For the model
 * gateway; the memories are the user's own, chosen by the authenticated identity.
 */
export async function memoryContext(
  ctx: Pick<AppContext, 'config'>,
  db: Db | Trx,
  user: Pick<User, 'id' | 'role' | 'active'>,
): Promise<string | null> {
  if (!(await memoryPreference(db, user.id))) return null;
  if (!(await memoriesPermitted(ctx, db, user))) return null;
  const rows = await db
    .selectFrom('memories')
    .select(['content', 'updated_at'])
    .where('user_id', '=', user.id)
    .orderBy('updated_at', 'desc')
    .orderBy('id')
    .limit(MAX_INJECTED_MEMORIES)
    .execute();
  if (rows.length === 0) return null;
  return `Facts the user asked you to remember:\n${rows.map((r) => `- ${r.content.replace(/\s+/g, ' ')}`).join('\n')}`;
}
