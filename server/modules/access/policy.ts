import { sql, type RawBuilder, type SqlBool } from 'kysely';
import type { Db, Trx } from '../../platform/db/index.js';
import { AppError } from '../../platform/http/errors.js';
import type { Actor } from './actor.js';
import { hasPermission, type PermissionName } from './permissions.js';

/**
 * The resource policy: one function (`decide`) answers what an actor may do on resources of one
 * type, deny by default. `can`, `authorize`, `canUseResource`, the `/api/v1/access/…` routes and
 * the permission matrix all call it; list queries use `accessibleWhere`, which expresses the same
 * rules as SQL so that ownership and grants stay in the WHERE.
 *
 * Rules, in order:
 *  1. pending or deactivated accounts: nothing;
 *  2. a table-backed resource that does not exist: nothing (→ 404);
 *  3. BYPASS_ADMIN_ACCESS_CONTROL and role admin: everything;
 *  4. the owner: read, write, share, delete;
 *  5. a grant to the user, or to a group the user belongs to: `write` ⇒ read + write, `read` ⇒ read;
 *  6. resources without an owner (e.g. models from a connection): admins may share (grant) even
 *     without the bypass;
 *  7. types with a workspace permission: a non-admin needs it for write, share and delete (read
 *     never needs it);
 *  8. an API key with a model allowlist: models outside it are denied entirely.
 */
export type ResourceAction = 'read' | 'write' | 'share' | 'delete';
export const RESOURCE_ACTIONS: readonly ResourceAction[] = ['read', 'write', 'share', 'delete'];
export type GrantPermission = 'read' | 'write';

/** The resource type whose ids an API key's `allowed_models` narrows. */
export const MODEL_RESOURCE_TYPE = 'model';

export interface ResourceTypeDef {
  /** Stable name used in grants and routes, e.g. `model`, `knowledge`, `prompt`, `tool`. */
  type: string;
  /**
   * Where the resources live and who owns them: the owner is read from this table in SQL.
   * Omit for resources with no row of their own and no owner (grants only), such as upstream
   * model ids.
   */
  table?: { name: string; id: string; owner: string };
  /** Workspace permission a non-admin needs to change, share or delete resources of this type. */
  workspacePermission?: PermissionName;
}

const registry = new Map<string, ResourceTypeDef>();

/** Registers a resource type (call once at module load). Re-registering a different definition throws. */
export function registerResourceType(def: ResourceTypeDef): ResourceTypeDef {
  if (!/^[a-z][a-z0-9_]{0,63}$/.test(def.type)) throw new Error(`Invalid resource type name "${def.type}"`);
  for (const n of def.table ? [def.table.name, def.table.id, def.table.owner] : [])
    if (!/^[a-z_][a-z0-9_]*$/.test(n)) throw new Error(`Invalid SQL identifier "${n}" for resource type ${def.type}`);
  const existing = registry.get(def.type);
  if (existing && JSON.stringify(existing) !== JSON.stringify(def))
    throw new Error(`Resource type "${def.type}" is already registered differently`);
  registry.set(def.type, def);
  return def;
}

export function resourceType(type: string): ResourceTypeDef | undefined {
  return registry.get(type);
}

export function resourceTypes(): ResourceTypeDef[] {
  return [...registry.values()];
}

function requireType(type: string): ResourceTypeDef {
  const def = registry.get(type);
  if (!def) throw new AppError('not_found', `Unknown resource type "${type}"`);
  return def;
}

export interface Decision {
  exists: boolean;
  ownerId: string | null;
  read: boolean;
  write: boolean;
  share: boolean;
  delete: boolean;
  /** Why: `owner`, `admin_bypass`, `admin_manage`, `grant:user:<perm>`, `grant:group:<id>:<perm>`, `missing:<permission>`, `api_key_scope`. */
  via: string[];
}

const NOTHING = (exists: boolean, ownerId: string | null = null, via: string[] = []): Decision => ({
  exists,
  ownerId,
  read: false,
  write: false,
  share: false,
  delete: false,
  via,
});

function chunks<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/** The grants that apply to the actor (directly or through a group) on the given resources. */
async function applicableGrants(db: Db | Trx, actor: Actor, type: string, ids: string[]) {
  const out: { resource_id: string; principal_type: string; principal_id: string; permission: string }[] = [];
  for (const part of chunks(ids, 500)) {
    const rows = await db
      .selectFrom('resource_grants')
      .select(['resource_id', 'principal_type', 'principal_id', 'permission'])
      .where('resource_type', '=', type)
      .where('resource_id', 'in', part)
      .where((eb) =>
        eb.or([
          eb.and([eb('principal_type', '=', 'user'), eb('principal_id', '=', actor.userId)]),
          eb.and([
            eb('principal_type', '=', 'group'),
            eb(
              'principal_id',
              'in',
              eb
                .selectFrom('group_members')
                .select('group_members.group_id')
                .where('group_members.user_id', '=', actor.userId),
            ),
          ]),
        ]),
      )
      .execute();
    out.push(...rows);
  }
  return out;
}

async function owners(db: Db | Trx, def: ResourceTypeDef, ids: string[]): Promise<Map<string, string | null>> {
  const t = def.table!;
  const out = new Map<string, string | null>();
  for (const part of chunks(ids, 500)) {
    const r = await sql<{
      id: string;
      owner: string | null;
    }>`select ${sql.ref(t.id)} as id, ${sql.ref(t.owner)} as owner from ${sql.table(t.name)} where ${sql.ref(t.id)} in (${sql.join(part)})`.execute(
      db,
    );
    for (const row of r.rows) out.set(String(row.id), row.owner === null ? null : String(row.owner));
  }
  return out;
}

/**
 * What the actor may do on each of `ids` (resources of one type). The single implementation of the
 * resource rules: enforcement and the permission matrix both call it.
 */
export async function decide(
  db: Db | Trx,
  actor: Actor,
  type: string,
  ids: readonly string[],
): Promise<Map<string, Decision>> {
  const def = requireType(type);
  const unique = [...new Set(ids)];
  const out = new Map<string, Decision>();
  if (unique.length === 0) return out;
  if (!actor.active || actor.role === 'pending') {
    for (const id of unique) out.set(id, NOTHING(true));
    return out;
  }
  const ownerOf = def.table ? await owners(db, def, unique) : null;
  const needGrants = !actor.adminBypass;
  const grants = needGrants ? await applicableGrants(db, actor, type, unique) : [];
  const workspaceOk =
    def.workspacePermission === undefined || actor.role === 'admin'
      ? true
      : await hasPermission(db, actor, def.workspacePermission);

  for (const id of unique) {
    if (ownerOf && !ownerOf.has(id)) {
      out.set(id, NOTHING(false));
      continue;
    }
    const ownerId = ownerOf?.get(id) ?? null;
    const d = NOTHING(true, ownerId);
    if (type === MODEL_RESOURCE_TYPE && actor.apiKey?.allowedModels && !actor.apiKey.allowedModels.includes(id)) {
      d.via.push('api_key_scope');
      out.set(id, d);
      continue;
    }
    if (actor.adminBypass) {
      d.read = d.write = d.share = d.delete = true;
      d.via.push('admin_bypass');
      out.set(id, d);
      continue;
    }
    if (ownerId !== null && ownerId === actor.userId) {
      d.read = d.write = d.share = d.delete = true;
      d.via.push('owner');
    }
    for (const g of grants) {
      if (g.resource_id !== id) continue;
      if (g.permission === 'write') d.read = d.write = true;
      else if (g.permission === 'read') d.read = true;
      else continue;
      d.via.push(
        g.principal_type === 'group' ? `grant:group:${g.principal_id}:${g.permission}` : `grant:user:${g.permission}`,
      );
    }
    if (!def.table && actor.role === 'admin') {
      d.share = true;
      d.via.push('admin_manage');
    }
    if (!workspaceOk && (d.write || d.share || d.delete)) {
      d.write = d.share = d.delete = false;
      d.via.push(`missing:${def.workspacePermission}`);
    }
    out.set(id, d);
  }
  return out;
}

/** One decision. */
export async function decideOne(db: Db | Trx, actor: Actor, resource: ResourceRef): Promise<Decision> {
  return (await decide(db, actor, resource.type, [resource.id])).get(resource.id)!;
}

export interface ResourceRef {
  type: string;
  id: string;
}

/** `can(actor, action, resource)`: deny by default. */
export async function can(db: Db | Trx, actor: Actor, action: ResourceAction, resource: ResourceRef): Promise<boolean> {
  const d = await decideOne(db, actor, resource);
  return d[action];
}

/**
 * Throws unless the actor may do `action`: `not_found` (404) when the actor may not even read the
 * resource (its existence is not revealed), `forbidden` (403) when they may read it but not this.
 */
export async function authorize(
  db: Db | Trx,
  actor: Actor,
  action: ResourceAction,
  resource: ResourceRef,
  what = 'Resource',
): Promise<Decision> {
  const d = await decideOne(db, actor, resource);
  if (d[action]) return d;
  if (!d.read && !d.share) throw new AppError('not_found', `${what} not found`);
  throw new AppError('forbidden', `You may not ${action} this ${what.toLowerCase()}`);
}

/**
 * For other modules (gateway: models and presets; knowledge; prompts; tools): may the actor use a
 * resource with this permission? `read` = use/see it, `write` = change it. BYPASS_MODEL_ACCESS_CONTROL
 * belongs to the caller (gateway), which skips this call for models when it is on — but an API
 * key's model allowlist still applies: check `keyAllowsModel` there.
 */
export async function canUseResource(
  db: Db | Trx,
  actor: Actor,
  type: string,
  id: string,
  permission: GrantPermission,
): Promise<boolean> {
  return can(db, actor, permission, { type, id });
}

/** An API key's own model allowlist (true when the actor is not a key or the key has none). */
export function keyAllowsModel(actor: Actor, modelId: string): boolean {
  return !actor.apiKey?.allowedModels || actor.apiKey.allowedModels.includes(modelId);
}

/**
 * The same rules as `decide`, as a SQL condition for list queries over a type's table (or any
 * query that has the resource id and, for owned types, the owner column). Use:
 *   db.selectFrom('knowledge_bases').selectAll()
 *     .where(accessibleWhere(actor, 'knowledge', 'read', { id: 'knowledge_bases.id', owner: 'knowledge_bases.user_id' }))
 * For `write` on a type with a workspace permission, check `hasPermission` first (rule 7): this
 * condition covers ownership, grants, admin bypass and the key's model allowlist.
 */
export function accessibleWhere(
  actor: Actor,
  type: string,
  permission: GrantPermission,
  refs: { id: string; owner?: string },
): RawBuilder<SqlBool> {
  requireType(type);
  if (!actor.active || actor.role === 'pending') return sql<SqlBool>`1 = 0`;
  const idRef = sql.ref(refs.id);
  const keyScope =
    type === MODEL_RESOURCE_TYPE && actor.apiKey?.allowedModels
      ? actor.apiKey.allowedModels.length
        ? sql<SqlBool>`${idRef} in (${sql.join([...actor.apiKey.allowedModels])})`
        : sql<SqlBool>`1 = 0`
      : sql<SqlBool>`1 = 1`;
  if (actor.adminBypass) return keyScope;
  const perms = permission === 'write' ? ['write'] : ['read', 'write'];
  const granted = sql<SqlBool>`${idRef} in (select rg.resource_id from resource_grants rg where rg.resource_type = ${type} and rg.permission in (${sql.join(perms)}) and ((rg.principal_type = 'user' and rg.principal_id = ${actor.userId}) or (rg.principal_type = 'group' and rg.principal_id in (select gm.group_id from group_members gm where gm.user_id = ${actor.userId}))))`;
  const owned = refs.owner ? sql<SqlBool>`${sql.ref(refs.owner)} = ${actor.userId}` : sql<SqlBool>`1 = 0`;
  return sql<SqlBool>`((${owned} or ${granted}) and ${keyScope})`;
}

/**
 * Ids of the resources of `type` the actor may read, for listings and the matrix (bounded).
 * Owned types: from the type's table; types without a table: ids that have a grant.
 */
export async function accessibleIds(
  db: Db | Trx,
  actor: Actor,
  type: string,
  opts: { limit: number; onlyId?: string },
): Promise<{ ids: string[]; all: boolean }> {
  const def = requireType(type);
  if (def.table) {
    const t = def.table;
    const cond = accessibleWhere(actor, type, 'read', { id: `r.${t.id}`, owner: `r.${t.owner}` });
    const only = opts.onlyId !== undefined ? sql`and r.${sql.ref(t.id)} = ${opts.onlyId}` : sql``;
    const r = await sql<{
      id: string;
    }>`select r.${sql.ref(t.id)} as id from ${sql.table(t.name)} r where ${cond} ${only} order by r.${sql.ref(t.id)} limit ${opts.limit}`.execute(
      db,
    );
    return { ids: r.rows.map((x) => String(x.id)), all: actor.adminBypass };
  }
  // No table: the resources we know of are the ones with grants.
  const cond = accessibleWhere(actor, type, 'read', { id: 'g.resource_id' });
  const only = opts.onlyId !== undefined ? sql`and g.resource_id = ${opts.onlyId}` : sql``;
  const r = await sql<{
    id: string;
  }>`select distinct g.resource_id as id from resource_grants g where g.resource_type = ${type} and ${cond} ${only} order by g.resource_id limit ${opts.limit}`.execute(
    db,
  );
  return { ids: r.rows.map((x) => String(x.id)), all: actor.adminBypass };
}
