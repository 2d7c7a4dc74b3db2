import type { Config } from '../../config/index.js';
import type { Db, Trx } from '../../platform/db/index.js';
import { AppError } from '../../platform/http/errors.js';
import type { Actor } from './actor.js';

/**
 * Feature and workspace permissions. The default for every user comes from a setting (all false,
 * as the guide says); a group can grant a permission to its members, never take one away. Admins
 * hold every permission; pending and deactivated accounts hold none.
 */
export const PERMISSIONS = [
  'workspace.models',
  'workspace.knowledge',
  'workspace.prompts',
  'workspace.tools',
  'workspace.skills',
  'workspace.tools_import',
  'features.api_keys',
] as const;

export type PermissionName = (typeof PERMISSIONS)[number];
export type PermissionSet = Record<PermissionName, boolean>;

export function isPermissionName(v: string): v is PermissionName {
  return (PERMISSIONS as readonly string[]).includes(v);
}

/** The defaults every user gets, from the settings. */
const defaultsByConfig = new WeakMap<Config, PermissionSet>();

/** The USER_PERMISSIONS_* defaults (one frozen object per configuration; settings do not change at run time). */
export function permissionDefaults(config: Config): PermissionSet {
  let d = defaultsByConfig.get(config);
  if (!d) {
    d = Object.freeze(readDefaults(config));
    defaultsByConfig.set(config, d);
  }
  return d;
}

function readDefaults(config: Config): PermissionSet {
  return {
    'workspace.models': config.USER_PERMISSIONS_WORKSPACE_MODELS_ACCESS,
    'workspace.knowledge': config.USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS,
    'workspace.prompts': config.USER_PERMISSIONS_WORKSPACE_PROMPTS_ACCESS,
    'workspace.tools': config.USER_PERMISSIONS_WORKSPACE_TOOLS_ACCESS,
    'workspace.skills': config.USER_PERMISSIONS_WORKSPACE_SKILLS_ACCESS,
    'workspace.tools_import': config.USER_PERMISSIONS_WORKSPACE_TOOLS_IMPORT,
    'features.api_keys': config.USER_PERMISSIONS_FEATURES_API_KEYS,
  };
}

/** Parses the `permissions` column of a group; unknown names are ignored. */
export function parseGroupPermissions(json: string): PermissionName[] {
  try {
    const v = JSON.parse(json) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) return [];
    return Object.entries(v as Record<string, unknown>)
      .filter(([k, on]) => on === true && isPermissionName(k))
      .map(([k]) => k as PermissionName);
  } catch {
    return [];
  }
}

export interface Membership {
  groupId: string;
  permissions: PermissionName[];
}

/** The groups a user belongs to, with what each grants. */
export async function loadMemberships(db: Db | Trx, userId: string): Promise<Membership[]> {
  const rows = await db
    .selectFrom('group_members')
    .innerJoin('groups', 'groups.id', 'group_members.group_id')
    .select(['groups.id as id', 'groups.permissions as permissions'])
    .where('group_members.user_id', '=', userId)
    .orderBy('groups.id')
    .execute();
  return rows.map((r) => ({ groupId: r.id, permissions: parseGroupPermissions(r.permissions) }));
}

/** Fills the actor's memberships once (per request), using `db` (pass the transaction inside one). */
export async function ensureMemberships(db: Db | Trx, actor: Actor): Promise<readonly Membership[]> {
  if (!actor.memberships) actor.memberships = await loadMemberships(db, actor.userId);
  return actor.memberships;
}

export interface PermissionExplanation {
  allowed: boolean;
  /** `role:admin`, `default` (the setting), `group:<id>`; empty when denied. */
  via: string[];
}

/** Every permission of an actor with the reasons it holds: what `/users/me/permissions` and the matrix show. */
export async function explainPermissions(
  db: Db | Trx,
  actor: Actor,
): Promise<Record<PermissionName, PermissionExplanation>> {
  const out = {} as Record<PermissionName, PermissionExplanation>;
  if (!actor.active || actor.role === 'pending') {
    for (const p of PERMISSIONS) out[p] = { allowed: false, via: [] };
    return out;
  }
  if (actor.role === 'admin') {
    for (const p of PERMISSIONS) out[p] = { allowed: true, via: ['role:admin'] };
    return out;
  }
  const memberships = await ensureMemberships(db, actor);
  for (const p of PERMISSIONS) {
    const via: string[] = [];
    if (actor.defaults[p]) via.push('default');
    for (const m of memberships) if (m.permissions.includes(p)) via.push(`group:${m.groupId}`);
    out[p] = { allowed: via.length > 0, via };
  }
  return out;
}

/** Whether the actor holds a feature/workspace permission now. */
export async function hasPermission(db: Db | Trx, actor: Actor, permission: PermissionName): Promise<boolean> {
  return holdsPermission(actor, permission, actor.memberships ?? (await ensureMemberships(db, actor)));
}

/** The same rule as explainPermissions, for one permission and known memberships (no I/O). */
export function holdsPermission(actor: Actor, permission: PermissionName, memberships: readonly Membership[]): boolean {
  if (!actor.active || actor.role === 'pending') return false;
  if (actor.role === 'admin' || actor.defaults[permission]) return true;
  return memberships.some((m) => m.permissions.includes(permission));
}

/** Throws `permission_required` (403) unless the actor holds the permission. */
export async function requirePermission(db: Db | Trx, actor: Actor, permission: PermissionName): Promise<void> {
  if (!(await hasPermission(db, actor, permission)))
    throw new AppError('permission_required', `This needs the "${permission}" permission`, { permission });
}

/** Nested view used by the API: `{workspace: {models: true, …}, features: {api_keys: false}}`. */
export function nestPermissions(flat: Record<PermissionName, boolean>): Record<string, Record<string, boolean>> {
  const out: Record<string, Record<string, boolean>> = {};
  for (const p of PERMISSIONS) {
    const [section, name] = p.split('.') as [string, string];
    (out[section] ??= {})[name] = flat[p];
  }
  return out;
}
