/**
 * HridaAI access control — the ONE policy module. Other modules build on this API; keep it stable.
 *
 * Actors
 *   actorOf(ctx, req) → Actor                 the request's actor (memoised per request)
 *   actorForUser(ctx, user, opts?) → Actor    an actor for a user row (jobs, the matrix)
 *   During impersonation `actor.userId` is the impersonated user (their permissions apply) and
 *   `actor.actorId` the admin; audit events record both (`fromRequest(req)` does it for you).
 *   An API-key actor carries `actor.apiKey` ({id, allowedModels}).
 *
 * Resources (models, knowledge bases, prompts, tools, …)
 *   registerResourceType({ type, table?: {name, id, owner}, workspacePermission? })
 *       once per type, at module load. `table` lets the policy find the owner in SQL; omit it for
 *       resources without an owner row (e.g. upstream model ids: grants only).
 *   can(db, actor, action, {type, id}) → boolean          action: read | write | share | delete
 *   authorize(db, actor, action, {type, id}, what?)      throws 404 (cannot read) / 403 (cannot do)
 *   canUseResource(db, actor, type, id, 'read'|'write')  for the gateway and other modules
 *   decide(db, actor, type, ids) → Map<id, Decision>     bulk form (what the others call)
 *   accessibleWhere(actor, type, 'read'|'write', {id: 'tbl.id', owner?: 'tbl.user_id'})
 *       the same rules as a Kysely SQL condition, for list queries (ownership in the WHERE)
 *   keyAllowsModel(actor, modelId)                        an API key's own model allowlist
 *   Inside a transaction always pass the transaction as `db` (SQLite has one connection).
 *
 *   Models: BYPASS_MODEL_ACCESS_CONTROL is the gateway's setting. With it off, call
 *   `canUseResource(db, actor, 'model', modelId, 'read')` (register type `model` first); with it
 *   on, skip that call but still honour `keyAllowsModel(actor, modelId)`.
 *
 * Grants (resource type, resource id, principal user|group, permission read|write; plus the owner)
 *   grant(ctx, trx, actor, {type, id}, {principalType, principalId, permission}, meta?)
 *       the only writer; refuses grants the actor may not give; audited in `trx`
 *   revokeGrant(ctx, trx, actor, {type, id}, grantId, meta?)
 *   listGrants(db, actor, {type, id})
 *   removeResourceGrants(trx, {type, id})     call when deleting a resource
 *   HTTP: GET /api/v1/access/:type/:id (the caller's permissions), GET|POST
 *   /api/v1/access/:type/:id/grants, DELETE /api/v1/access/:type/:id/grants/:grantId.
 *
 * Feature and workspace permissions
 *   PERMISSIONS: workspace.models | workspace.knowledge | workspace.prompts | workspace.tools |
 *                workspace.skills | workspace.tools_import | features.api_keys
 *   hasPermission(db, actor, name) / requirePermission(db, actor, name) (throws 403 permission_required)
 *   explainPermissions(db, actor)             what GET /api/v1/users/me/permissions returns
 *
 * Group changes made outside /api/v1/groups (SCIM, identity-provider group sync): after the
 * transaction commits, call `afterGroupChange(ctx)` so cached API-key checks (which hold the
 * owner's groups for features.api_keys) are dropped here and, with Redis, everywhere. Without the
 * call they refresh within SESSION_CACHE_TTL_MS; resource decisions never use that cache.
 *
 * Rules (see policy.ts): deny by default; pending/deactivated: nothing; admin + BYPASS_ADMIN_ACCESS_CONTROL:
 * everything; owner: everything; grants: write ⇒ read+write, read ⇒ read; admins may share ownerless
 * resources; non-admins need the type's workspace permission to write/share/delete.
 */
import type { AppContext } from '../../context.js';
import { apiKeyService } from '../api-keys/service.js';

export { actorForUser, actorOf, type Actor } from './actor.js';
export {
  PERMISSIONS,
  explainPermissions,
  hasPermission,
  isPermissionName,
  requirePermission,
  type PermissionName,
  type PermissionSet,
} from './permissions.js';
export {
  MODEL_RESOURCE_TYPE,
  RESOURCE_ACTIONS,
  accessibleIds,
  accessibleWhere,
  authorize,
  can,
  canUseResource,
  decide,
  decideOne,
  keyAllowsModel,
  registerResourceType,
  resourceType,
  resourceTypes,
  type Decision,
  type GrantPermission,
  type ResourceAction,
  type ResourceRef,
  type ResourceTypeDef,
} from './policy.js';
export {
  grant,
  listGrants,
  presentGrant,
  removePrincipalGrants,
  removeResourceGrants,
  revokeGrant,
  type AuditMeta,
  type Grant,
  type GrantInput,
} from './grants.js';

/** Drop cached API-key checks after group memberships or group permissions change (see above). */
export async function afterGroupChange(ctx: AppContext): Promise<void> {
  await apiKeyService(ctx).invalidate({ all: true });
}
