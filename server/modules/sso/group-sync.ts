import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../context.js';
import type { Trx } from '../../platform/db/index.js';

/**
 * Group membership from an identity source (an OAuth provider's groups claim, LDAP memberOf, the
 * trusted groups header). Every membership row carries its `source` (`idp:oidc`, `idp:ldap`,
 * `idp:trusted_header`, `scim`; admins' own are `local`): a sync adds memberships for the groups
 * named and removes only the rows **it** added earlier that are no longer named. A membership
 * an admin (or SCIM, or another provider) made is never removed, and never re-labelled.
 */
export interface SyncResult {
  added: string[];
  removed: string[];
  created: string[];
}

const MAX_GROUPS = 1000;

export function normaliseGroupNames(names: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of names) {
    const name = n.trim().slice(0, 200);
    if (!name) continue;
    const key = name.toLowerCase();
    if (!out.has(key)) out.set(key, name);
    if (out.size >= MAX_GROUPS) break;
  }
  return out;
}

async function chunked<T>(items: string[], size: number, fn: (chunk: string[]) => Promise<T[]>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await fn(items.slice(i, i + size))));
  return out;
}

export async function syncGroupMemberships(
  ctx: AppContext,
  trx: Trx,
  input: { userId: string; source: string; names: readonly string[]; create: boolean; actorId?: string | null },
): Promise<SyncResult> {
  const wanted = normaliseGroupNames(input.names);
  const keys = [...wanted.keys()];
  const now = Date.now();
  let groups = await chunked(keys, 200, (c) =>
    trx.selectFrom('groups').select(['id', 'name', 'name_key']).where('name_key', 'in', c).execute(),
  );
  const created: string[] = [];
  if (input.create) {
    const have = new Set(groups.map((g) => g.name_key));
    for (const [key, name] of wanted) {
      if (have.has(key)) continue;
      const id = randomUUID();
      // ON CONFLICT DO NOTHING: a concurrent sign-in may create the same group (PostgreSQL would
      // abort the whole transaction on a unique violation).
      const r = await trx
        .insertInto('groups')
        .values({
          id,
          name,
          name_key: key,
          description: '',
          permissions: '{}',
          source: input.source,
          created_by: null,
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) => oc.column('name_key').doNothing())
        .executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 1) {
        created.push(name);
        groups.push({ id, name, name_key: key });
      }
    }
    if (created.length < wanted.size - have.size)
      groups = await chunked(keys, 200, (c) =>
        trx.selectFrom('groups').select(['id', 'name', 'name_key']).where('name_key', 'in', c).execute(),
      );
  }

  const current = await trx
    .selectFrom('group_members')
    .innerJoin('groups', 'groups.id', 'group_members.group_id')
    .select(['group_members.group_id', 'group_members.source', 'groups.name', 'groups.name_key'])
    .where('group_members.user_id', '=', input.userId)
    .execute();
  const memberOf = new Set(current.map((m) => m.group_id));
  const toAdd = groups.filter((g) => !memberOf.has(g.id));
  const toRemove = current.filter((m) => m.source === input.source && !wanted.has(m.name_key));

  if (toAdd.length)
    await trx
      .insertInto('group_members')
      .values(toAdd.map((g) => ({ group_id: g.id, user_id: input.userId, source: input.source, created_at: now })))
      .onConflict((oc) => oc.columns(['group_id', 'user_id']).doNothing())
      .execute();
  for (const chunk of toRemove
    .map((m) => m.group_id)
    .reduce<string[][]>((acc, id, i) => {
      if (i % 200 === 0) acc.push([]);
      acc[acc.length - 1]!.push(id);
      return acc;
    }, []))
    await trx
      .deleteFrom('group_members')
      .where('user_id', '=', input.userId)
      .where('source', '=', input.source)
      .where('group_id', 'in', chunk)
      .execute();

  const result: SyncResult = {
    added: toAdd.map((g) => g.name),
    removed: toRemove.map((m) => m.name),
    created,
  };
  if (result.added.length || result.removed.length || result.created.length)
    await ctx.audit.record(trx, {
      action: 'group.membership_synced',
      actorId: input.actorId ?? null,
      subjectId: input.userId,
      resourceType: 'user',
      resourceId: input.userId,
      result: 'success',
      details: { source: input.source, ...result },
    });
  return result;
}
