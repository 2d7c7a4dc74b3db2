import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { AppError } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { actorForUser, actorOf } from './actor.js';
import { grant, listGrants, presentGrant, revokeGrant } from './grants.js';
import { registerImpersonationRoutes } from './impersonation.js';
import {
  ensureMemberships,
  explainPermissions,
  nestPermissions,
  PERMISSIONS,
  type PermissionName,
} from './permissions.js';
import { accessibleIds, decide, resourceType, resourceTypes, type Decision } from './policy.js';

const resourceParams = z.object({
  type: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'unknown resource type'),
  id: z.string().min(1).max(256),
});

function presentDecision(type: string, id: string, d: Decision) {
  return {
    resource_type: type,
    resource_id: id,
    owner_id: d.ownerId,
    permissions: { read: d.read, write: d.write, share: d.share, delete: d.delete },
    via: d.via,
  };
}

function flatten(e: Awaited<ReturnType<typeof explainPermissions>>) {
  const allowed = {} as Record<PermissionName, boolean>;
  const via = {} as Record<PermissionName, string[]>;
  for (const p of PERMISSIONS) {
    allowed[p] = e[p].allowed;
    via[p] = e[p].via;
  }
  return { allowed, via };
}

export function registerAccessRoutes(app: FastifyInstance, ctx: AppContext) {
  route(app, {
    method: 'GET',
    url: '/api/v1/users/me/permissions',
    auth: 'session-or-key',
    policy: 'self:permissions',
    allowPending: true,
    tags: ['access'],
    summary: 'The effective feature and workspace permissions of the caller',
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const { allowed, via } = flatten(await explainPermissions(ctx.db, actor));
      const memberships = await ensureMemberships(ctx.db, actor);
      const groups = memberships.length
        ? await ctx.db
            .selectFrom('groups')
            .select(['id', 'name'])
            .where(
              'id',
              'in',
              memberships.map((m) => m.groupId),
            )
            .orderBy('name')
            .execute()
        : [];
      return {
        user_id: actor.userId,
        role: actor.role,
        admin_bypass: actor.adminBypass,
        permissions: nestPermissions(allowed),
        via,
        groups,
      };
    },
  });

  // ---- one resource: what may I do, and its grants
  route(app, {
    method: 'GET',
    url: '/api/v1/access/:type/:id',
    auth: 'session-or-key',
    policy: 'resource:read-or-share (policy.decide)',
    tags: ['access'],
    summary: "The caller's permissions on a resource (404 when they may not see it)",
    params: resourceParams,
    handler: async (req) => {
      const { type, id } = req.data.params;
      if (!resourceType(type)) throw new AppError('not_found', 'Resource not found');
      const actor = actorOf(ctx, req);
      const d = (await decide(ctx.db, actor, type, [id])).get(id)!;
      if (!d.read && !d.share) throw new AppError('not_found', 'Resource not found');
      return presentDecision(type, id, d);
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/access/:type/:id/grants',
    auth: 'session-or-key',
    policy: 'resource:share (policy.authorize)',
    tags: ['access'],
    params: resourceParams,
    handler: async (req) => {
      const { type, id } = req.data.params;
      if (!resourceType(type)) throw new AppError('not_found', 'Resource not found');
      const rows = await listGrants(ctx.db, actorOf(ctx, req), { type, id });
      return { items: rows.map(presentGrant) };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/access/:type/:id/grants',
    auth: 'session-or-key',
    policy: 'resource:share (grants.grant refuses what the actor may not give)',
    tags: ['access'],
    summary: 'Grant read or write on a resource to a user or a group',
    params: resourceParams,
    body: z
      .object({
        principal_type: z.enum(['user', 'group']),
        principal_id: z.string().min(1).max(64),
        permission: z.enum(['read', 'write']),
      })
      .strict(),
    handler: async (req, reply) => {
      const { type, id } = req.data.params;
      if (!resourceType(type)) throw new AppError('not_found', 'Resource not found');
      const actor = actorOf(ctx, req);
      const b = req.data.body;
      const row = await ctx.db
        .transaction()
        .execute((trx) =>
          grant(
            ctx,
            trx,
            actor,
            { type, id },
            { principalType: b.principal_type, principalId: b.principal_id, permission: b.permission },
            fromRequest(req),
          ),
        );
      reply.code(201);
      return presentGrant(row);
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/access/:type/:id/grants/:grantId',
    auth: 'session-or-key',
    policy: 'resource:share (grant id matched with the resource in the WHERE)',
    tags: ['access'],
    params: resourceParams.extend({ grantId: z.string().min(1).max(64) }),
    handler: async (req) => {
      const { type, id, grantId } = req.data.params;
      if (!resourceType(type)) throw new AppError('not_found', 'Resource not found');
      const actor = actorOf(ctx, req);
      await ctx.db
        .transaction()
        .execute((trx) => revokeGrant(ctx, trx, actor, { type, id }, grantId, fromRequest(req)));
      return { status: 'deleted' };
    },
  });

  // ---- the effective-permission matrix (admin)
  route(app, {
    method: 'GET',
    url: '/api/v1/permissions/matrix',
    auth: 'admin',
    policy: 'admin:permissions.matrix',
    tags: ['access'],
    summary: 'For each user: feature permissions and what they can do on each resource (policy.decide)',
    query: z
      .object({
        user_id: z.string().min(1).max(64).optional(),
        group_id: z.string().min(1).max(64).optional(),
        resource_type: z.string().min(1).max(64).optional(),
        resource_id: z.string().min(1).max(256).optional(),
        page: z.coerce.number().int().min(1).max(100_000).default(1),
        limit: z.coerce.number().int().min(1).max(100).default(20),
        resources_limit: z.coerce.number().int().min(1).max(1000).default(200),
      })
      .strict()
      .refine((q) => q.resource_id === undefined || q.resource_type !== undefined, {
        message: 'resource_id needs resource_type',
      }),
    handler: async (req) => {
      const q = req.data.query;
      const types = q.resource_type ? [resourceType(q.resource_type)] : resourceTypes();
      if (types.some((t) => t === undefined))
        throw new AppError('not_found', `Unknown resource type "${q.resource_type}"`);
      let users = ctx.db.selectFrom('users');
      if (q.user_id) users = users.where('id', '=', q.user_id);
      if (q.group_id)
        users = users.where('id', 'in', (eb) =>
          eb
            .selectFrom('group_members')
            .select('group_members.user_id')
            .where('group_members.group_id', '=', q.group_id!),
        );
      const [{ total }] = (await users.select((eb) => eb.fn.countAll<number>().as('total')).execute()) as [
        { total: number },
      ];
      const rows = await users
        .selectAll()
        .orderBy('created_at')
        .orderBy('id')
        .limit(q.limit)
        .offset((q.page - 1) * q.limit)
        .execute();
      const items = [];
      for (const u of rows) {
        const actor = actorForUser(ctx, u);
        const { allowed, via } = flatten(await explainPermissions(ctx.db, actor));
        const memberships = await ensureMemberships(ctx.db, actor);
        const resources = [];
        const unrestricted: string[] = [];
        let truncated = false;
        for (const def of types) {
          let ids: string[];
          if (q.resource_id !== undefined) ids = [q.resource_id];
          else {
            const found = await accessibleIds(ctx.db, actor, def!.type, { limit: q.resources_limit + 1 });
            if (found.all) unrestricted.push(def!.type);
            ids = found.ids;
            if (ids.length > q.resources_limit) {
              truncated = true;
              ids = ids.slice(0, q.resources_limit);
            }
          }
          const decisions = await decide(ctx.db, actor, def!.type, ids);
          for (const id of ids) {
            const d = decisions.get(id)!;
            if (!d.exists) continue;
            resources.push(presentDecision(def!.type, id, d));
          }
        }
        items.push({
          user: { id: u.id, email: u.email, name: u.name, role: u.role, active: u.active === 1 },
          admin_bypass: actor.adminBypass,
          groups: memberships.map((m) => m.groupId),
          permissions: nestPermissions(allowed),
          permission_via: via,
          resources,
          resources_truncated: truncated,
          /** Types on which the user may do everything (admin bypass): the list names only known ids. */
          unrestricted_types: unrestricted,
        });
      }
      return {
        items,
        total: Number(total),
        page: q.page,
        limit: q.limit,
        resource_types: types.map((t) => t!.type),
      };
    },
  });

  registerImpersonationRoutes(app, ctx);
}
