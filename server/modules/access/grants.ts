import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../context.js';
import { isUniqueViolation, type Db, type Trx } from '../../platform/db/index.js';
import type { DomainEvent } from '../../platform/audit/index.js';
import { AppError } from '../../platform/http/errors.js';
import type { Actor } from './actor.js';
import { ensureMemberships } from './permissions.js';
import { authorize, resourceType, type GrantPermission, type ResourceRef } from './policy.js';
import type { ResourceGrantsTable } from './tables.js';

export type Grant = ResourceGrantsTable;

export interface GrantInput {
  principalType: 'user' | 'group';
  principalId: string;
  permission: GrantPermission;
}

/** Request facts for the audit event (see platform/audit `fromRequest`). */
export type AuditMeta = Pick<DomainEvent, 'ip' | 'requestId'>;

/**
 * The one way to write a grant. Refuses what the actor may not give:
 *  - the actor must be allowed to `share` the resource (owner, admin with the bypass, admin on
 *    resources without an owner; non-admins also need the type's workspace permission);
 *  - the principal must exist; a non-admin may grant only to groups they belong to (an unknown or
 *    foreign group is "not found", so group ids cannot be probed);
 *  - granting to the resource's owner is refused (they already hold everything);
 *  - a deactivated or pending user cannot receive a grant.
 * Granting again to the same principal replaces the permission. Audited in the same transaction.
 */
export async function grant(
  ctx: Pick<AppContext, 'audit'>,
  trx: Trx,
  actor: Actor,
  resource: ResourceRef,
  input: GrantInput,
  meta: AuditMeta = {},
): Promise<Grant> {
  const decision = await authorize(trx, actor, 'share', resource);
  if (input.principalType === 'user') {
    const u = await trx
      .selectFrom('users')
      .select(['id', 'role', 'active'])
      .where('id', '=', input.principalId)
      .executeTakeFirst();
    if (!u) throw new AppError('not_found', 'User not found');
    if (u.active !== 1 || u.role === 'pending')
      throw new AppError('invalid_grant', 'A deactivated or pending account cannot receive a grant');
    if (decision.ownerId !== null && decision.ownerId === u.id)
      throw new AppError('invalid_grant', 'The owner already has every permission on this resource');
  } else {
    const g = await trx.selectFrom('groups').select('id').where('id', '=', input.principalId).executeTakeFirst();
    const member =
      actor.role === 'admin' || (await ensureMemberships(trx, actor)).some((m) => m.groupId === input.principalId);
    if (!g || !member) throw new AppError('not_found', 'Group not found');
  }

  const now = Date.now();
  const existing = await trx
    .selectFrom('resource_grants')
    .selectAll()
    .where('resource_type', '=', resource.type)
    .where('resource_id', '=', resource.id)
    .where('principal_type', '=', input.principalType)
    .where('principal_id', '=', input.principalId)
    .executeTakeFirst();
  let row: Grant;
  if (existing) {
    row = { ...existing, permission: input.permission, granted_by: actor.actorId, updated_at: now };
    await trx
      .updateTable('resource_grants')
      .set({ permission: input.permission, granted_by: actor.actorId, updated_at: now })
      .where('id', '=', existing.id)
      .execute();
  } else {
    row = {
      id: randomUUID(),
      resource_type: resource.type,
      resource_id: resource.id,
      principal_type: input.principalType,
      principal_id: input.principalId,
      permission: input.permission,
      granted_by: actor.actorId,
      created_at: now,
      updated_at: now,
    };
    try {
      await trx.insertInto('resource_grants').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new AppError('conflict', 'A grant for this principal was just written; retry');
      throw e;
    }
  }
  await ctx.audit.record(trx, {
    action: existing ? 'grant.updated' : 'grant.created',
    actorId: actor.actorId,
    subjectId: actor.userId,
    resourceType: resource.type,
    resourceId: resource.id,
    before: existing ? presentGrant(existing) : undefined,
    after: presentGrant(row),
    result: 'success',
    ...meta,
  });
  return row;
}

/** Removes one grant of a resource (the grant id is matched together with the resource, in the WHERE). */
export async function revokeGrant(
  ctx: Pick<AppContext, 'audit'>,
  trx: Trx,
  actor: Actor,
  resource: ResourceRef,
  grantId: string,
  meta: AuditMeta = {},
): Promise<void> {
  await authorize(trx, actor, 'share', resource);
  const existing = await trx
    .selectFrom('resource_grants')
    .selectAll()
    .where('id', '=', grantId)
    .where('resource_type', '=', resource.type)
    .where('resource_id', '=', resource.id)
    .executeTakeFirst();
  if (!existing) throw new AppError('not_found', 'Grant not found');
  await trx.deleteFrom('resource_grants').where('id', '=', existing.id).execute();
  await ctx.audit.record(trx, {
    action: 'grant.deleted',
    actorId: actor.actorId,
    subjectId: actor.userId,
    resourceType: resource.type,
    resourceId: resource.id,
    before: presentGrant(existing),
    result: 'success',
    ...meta,
  });
}

/** The grants of a resource, for those who may share it. */
export async function listGrants(db: Db | Trx, actor: Actor, resource: ResourceRef): Promise<Grant[]> {
  await authorize(db, actor, 'share', resource);
  return db
    .selectFrom('resource_grants')
    .selectAll()
    .where('resource_type', '=', resource.type)
    .where('resource_id', '=', resource.id)
    .orderBy('created_at')
    .orderBy('id')
    .limit(1000)
    .execute();
}

/** Call inside the transaction that deletes a resource: its grants go with it. */
export async function removeResourceGrants(trx: Trx, resource: ResourceRef): Promise<number> {
  if (!resourceType(resource.type)) throw new Error(`Unknown resource type "${resource.type}"`);
  const r = await trx
    .deleteFrom('resource_grants')
    .where('resource_type', '=', resource.type)
    .where('resource_id', '=', resource.id)
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}

/** Call inside the transaction that deletes a group or a user: grants to that principal go. */
export async function removePrincipalGrants(trx: Trx, principalType: 'user' | 'group', principalId: string) {
  const r = await trx
    .deleteFrom('resource_grants')
    .where('principal_type', '=', principalType)
    .where('principal_id', '=', principalId)
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}

export function presentGrant(g: Grant) {
  return {
    id: g.id,
    resource_type: g.resource_type,
    resource_id: g.resource_id,
    principal_type: g.principal_type,
    principal_id: g.principal_id,
    permission: g.permission,
    granted_by: g.granted_by,
    created_at: g.created_at,
    updated_at: g.updated_at,
  };
}
