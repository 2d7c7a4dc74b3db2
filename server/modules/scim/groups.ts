import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import type { Db, Trx } from '../../platform/db/index.js';
import { removePrincipalGrants } from '../access/grants.js';
import { apiKeyService } from '../api-keys/service.js';
import { invalidValue, scimNotFound, uniqueness } from './errors.js';
import { matches, parseFilter, requiredEquality } from './filter.js';
import { coerce } from './patch.js';
import { etagOf, iso, type Paging, type Resource } from './resources.js';
import { attrsOf, findAttr, GROUP_SCHEMA } from './schema.js';

/**
 * SCIM Groups are HridaAI groups whose `source` is `scim`: the identity provider creates, renames
 * and deletes them and manages their members. Groups an admin made in HridaAI are not visible here
 * (a SCIM group with the same name is a 409 `uniqueness`). Memberships SCIM adds carry source
 * `scim`; a membership an admin added by hand to a SCIM group is shown but never removed by SCIM.
 * New groups grant no permission until an admin gives them some.
 */
export const GROUP_DEFS = attrsOf('Group');
export const SCIM_SOURCE = 'scim';

interface GroupRow {
  id: string;
  name: string;
  created_at: number;
  updated_at: number;
  external_id: string | null;
}

function baseQuery(db: Db | Trx) {
  return db
    .selectFrom('groups')
    .leftJoin('scim_groups', 'scim_groups.group_id', 'groups.id')
    .select(['groups.id', 'groups.name', 'groups.created_at', 'groups.updated_at', 'scim_groups.external_id'])
    .where('groups.source', '=', SCIM_SOURCE);
}

async function loadGroup(db: Db | Trx, id: string): Promise<GroupRow> {
  const r = await baseQuery(db).where('groups.id', '=', id).executeTakeFirst();
  if (!r) throw scimNotFound('Group');
  return r;
}

async function membersOf(db: Db | Trx, ids: string[]) {
  const out = new Map<string, { id: string; name: string; source: string }[]>();
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .selectFrom('group_members')
      .innerJoin('users', 'users.id', 'group_members.user_id')
      .select(['group_members.group_id', 'users.id', 'users.name', 'group_members.source'])
      .where('group_members.group_id', 'in', ids.slice(i, i + 500))
      .orderBy('users.created_at')
      .execute();
    for (const r of rows) {
      const l = out.get(r.group_id) ?? [];
      l.push({ id: r.id, name: r.name, source: r.source });
      out.set(r.group_id, l);
    }
  }
  return out;
}

export function presentScimGroup(g: GroupRow, members: { id: string; name: string }[], base: string): Resource {
  return {
    schemas: [GROUP_SCHEMA],
    id: g.id,
    ...(g.external_id ? { externalId: g.external_id } : {}),
    displayName: g.name,
    members: members.map((m) => ({ value: m.id, display: m.name, $ref: `${base}/Users/${m.id}`, type: 'User' })),
    meta: {
      resourceType: 'Group',
      created: iso(g.created_at),
      lastModified: iso(g.updated_at),
      location: `${base}/Groups/${g.id}`,
      version: etagOf(g.updated_at),
    },
  };
}

export async function getGroup(db: Db | Trx, id: string, base: string): Promise<Resource> {
  const g = await loadGroup(db, id);
  return presentScimGroup(g, (await membersOf(db, [g.id])).get(g.id) ?? [], base);
}

export async function listGroups(
  db: Db,
  filter: string | undefined,
  p: Paging,
  base: string,
  withMembers: boolean,
): Promise<{ total: number; items: Resource[] }> {
  const ast = filter ? parseFilter(filter, GROUP_DEFS) : null;
  let q = baseQuery(db);
  const eq = ast ? requiredEquality(ast) : null;
  if (eq) {
    const path = eq.path.toLowerCase();
    if (path === 'id') q = q.where('groups.id', '=', eq.value);
    else if (path === 'displayname') q = q.where('groups.name_key', '=', eq.value.toLowerCase());
    else if (path === 'externalid') q = q.where('scim_groups.external_id', '=', eq.value);
  }
  if (!ast) {
    const [{ n }] = (await db
      .selectFrom('groups')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('source', '=', SCIM_SOURCE)
      .execute()) as [{ n: number }];
    const rows = await q
      .orderBy('groups.created_at')
      .orderBy('groups.id')
      .limit(p.count)
      .offset(p.startIndex - 1)
      .execute();
    const members = withMembers
      ? await membersOf(
          db,
          rows.map((r) => r.id),
        )
      : new Map();
    return { total: Number(n), items: rows.map((r) => presentScimGroup(r, members.get(r.id) ?? [], base)) };
  }
  const rows = await q.orderBy('groups.created_at').orderBy('groups.id').execute();
  const members = await membersOf(
    db,
    rows.map((r) => r.id),
  );
  const all = rows.map((r) => presentScimGroup(r, members.get(r.id) ?? [], base)).filter((res) => matches(ast, res));
  const page = all.slice(p.startIndex - 1, p.startIndex - 1 + p.count);
  if (!withMembers) for (const r of page) delete r.members;
  return { total: all.length, items: page };
}

export interface GroupInput {
  displayName: string;
  externalId: string | null;
  /** User ids. */
  members: string[];
}

export function groupInput(res: Resource): GroupInput {
  const dn = res.displayName;
  if (typeof dn !== 'string' || dn.trim() === '') throw invalidValue('displayName is required');
  if (dn.trim().length > 200) throw invalidValue('displayName is longer than 200 characters');
  const ext = res.externalId;
  if (ext !== undefined && ext !== null && (typeof ext !== 'string' || ext.length > 512))
    throw invalidValue('externalId must be a string of at most 512 characters');
  const raw = res.members === undefined || res.members === null ? [] : res.members;
  const list = coerce(findAttr(GROUP_DEFS, 'members')!, raw, 'members') as Record<string, unknown>[];
  const ids: string[] = [];
  for (const m of list) {
    if (typeof m.type === 'string' && m.type.toLowerCase() !== 'user')
      throw invalidValue('Only users can be members (nested groups are not supported)');
    if (typeof m.value !== 'string' || m.value === '' || m.value.length > 64)
      throw invalidValue('Every member needs the id of a user as value');
    if (!ids.includes(m.value)) ids.push(m.value);
  }
  if (ids.length > 100_000) throw invalidValue('Too many members');
  return { displayName: dn.trim(), externalId: typeof ext === 'string' && ext !== '' ? ext : null, members: ids };
}

export function editableGroup(res: Resource): Resource {
  const out = { ...res };
  delete out.id;
  delete out.meta;
  delete out.schemas;
  return out;
}

async function checkMembers(trx: Trx, ids: string[]) {
  const found = new Set<string>();
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await trx
      .selectFrom('users')
      .select('id')
      .where('id', 'in', ids.slice(i, i + 500))
      .execute();
    for (const r of rows) found.add(r.id);
  }
  const missing = ids.filter((i) => !found.has(i));
  if (missing.length) throw invalidValue(`Unknown user id(s) in members: ${missing.slice(0, 5).join(', ')}`);
}

async function checkName(trx: Trx, name: string, selfId: string | null) {
  const hit = await trx.selectFrom('groups').select('id').where('name_key', '=', name.toLowerCase()).executeTakeFirst();
  if (hit && hit.id !== selfId) throw uniqueness(`A group named ${name} already exists`);
}

function audit(req: FastifyRequest) {
  return { actorId: null, ip: req.ip ?? null, requestId: req.id };
}

export async function createGroup(ctx: AppContext, req: FastifyRequest, g: GroupInput): Promise<string> {
  const id = randomUUID();
  await ctx.db.transaction().execute(async (trx) => {
    await checkName(trx, g.displayName, null);
    await checkMembers(trx, g.members);
    const now = Date.now();
    await trx
      .insertInto('groups')
      .values({
        id,
        name: g.displayName,
        name_key: g.displayName.toLowerCase(),
        description: '',
        permissions: '{}',
        source: SCIM_SOURCE,
        created_by: null,
        created_at: now,
        updated_at: now,
      })
      .execute();
    await trx.insertInto('scim_groups').values({ group_id: id, external_id: g.externalId, created_at: now }).execute();
    if (g.members.length)
      for (let i = 0; i < g.members.length; i += 500)
        await trx
          .insertInto('group_members')
          .values(
            g.members
              .slice(i, i + 500)
              .map((u) => ({ group_id: id, user_id: u, source: SCIM_SOURCE, created_at: now })),
          )
          .execute();
    await ctx.audit.record(trx, {
      ...audit(req),
      action: 'group.created',
      resourceType: 'group',
      resourceId: id,
      after: { name: g.displayName, externalId: g.externalId, members: g.members.length },
      details: { via: 'scim', user_ids: g.members.slice(0, 100) },
    });
  });
  if (g.members.length) await apiKeyService(ctx).invalidate({ all: true });
  return id;
}

export async function updateGroup(
  ctx: AppContext,
  req: FastifyRequest,
  id: string,
  g: GroupInput,
  ifMatch: (etag: string) => void,
): Promise<void> {
  const changed = await ctx.db.transaction().execute(async (trx) => {
    const before = await loadGroup(trx, id);
    ifMatch(etagOf(before.updated_at));
    await checkName(trx, g.displayName, id);
    await checkMembers(trx, g.members);
    const current = (await membersOf(trx, [id])).get(id) ?? [];
    const wanted = new Set(g.members);
    const have = new Set(current.map((m) => m.id));
    const add = g.members.filter((u) => !have.has(u));
    // Only memberships SCIM made are removed; an admin's own additions stay.
    const remove = current.filter((m) => !wanted.has(m.id) && m.source === SCIM_SOURCE).map((m) => m.id);
    const now = Math.max(Date.now(), before.updated_at + 1);
    await trx
      .updateTable('groups')
      .set({ name: g.displayName, name_key: g.displayName.toLowerCase(), updated_at: now })
      .where('id', '=', id)
      .execute();
    await trx
      .insertInto('scim_groups')
      .values({ group_id: id, external_id: g.externalId, created_at: now })
      .onConflict((oc) => oc.column('group_id').doUpdateSet({ external_id: g.externalId }))
      .execute();
    for (let i = 0; i < add.length; i += 500)
      await trx
        .insertInto('group_members')
        .values(add.slice(i, i + 500).map((u) => ({ group_id: id, user_id: u, source: SCIM_SOURCE, created_at: now })))
        .onConflict((oc) => oc.columns(['group_id', 'user_id']).doNothing())
        .execute();
    for (let i = 0; i < remove.length; i += 500)
      await trx
        .deleteFrom('group_members')
        .where('group_id', '=', id)
        .where('source', '=', SCIM_SOURCE)
        .where('user_id', 'in', remove.slice(i, i + 500))
        .execute();
    await ctx.audit.record(trx, {
      ...audit(req),
      action: 'group.updated',
      resourceType: 'group',
      resourceId: id,
      before: { name: before.name, externalId: before.external_id },
      after: { name: g.displayName, externalId: g.externalId },
      details: { via: 'scim', members_added: add.slice(0, 100), members_removed: remove.slice(0, 100) },
    });
    return add.length + remove.length > 0;
  });
  if (changed) await apiKeyService(ctx).invalidate({ all: true });
}

export async function deleteGroup(ctx: AppContext, req: FastifyRequest, id: string, ifMatch: (etag: string) => void) {
  await ctx.db.transaction().execute(async (trx) => {
    const before = await loadGroup(trx, id);
    ifMatch(etagOf(before.updated_at));
    const grants = await removePrincipalGrants(trx, 'group', id);
    await trx.deleteFrom('group_members').where('group_id', '=', id).execute();
    await trx.deleteFrom('scim_groups').where('group_id', '=', id).execute();
    await trx.deleteFrom('groups').where('id', '=', id).execute();
    await ctx.audit.record(trx, {
      ...audit(req),
      action: 'group.deleted',
      resourceType: 'group',
      resourceId: id,
      before: { name: before.name, externalId: before.external_id },
      details: { via: 'scim', grants_removed: grants },
    });
  });
  await apiKeyService(ctx).invalidate({ all: true });
}
