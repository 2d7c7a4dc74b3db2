import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sql, type SqlBool } from 'kysely';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { isUniqueViolation, type Trx } from '../../platform/db/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { removePrincipalGrants } from '../access/grants.js';
import { nestPermissions, parseGroupPermissions, PERMISSIONS, type PermissionName } from '../access/permissions.js';
import type { GroupsTable } from '../access/tables.js';
import { apiKeyService } from '../api-keys/service.js';
import { presentUser } from '../users/presenter.js';

const idParam = z.object({ id: z.string().min(1).max(64) });

/** `{workspace: {models: true}, features: {api_keys: true}}` — only known names; a group can only grant. */
const permissionsBody = z
  .object({
    workspace: z
      .object({
        models: z.boolean().optional(),
        knowledge: z.boolean().optional(),
        prompts: z.boolean().optional(),
        tools: z.boolean().optional(),
        skills: z.boolean().optional(),
        tools_import: z.boolean().optional(),
      })
      .strict()
      .optional(),
    features: z.object({ api_keys: z.boolean().optional() }).strict().optional(),
  })
  .strict();
type PermissionsBody = z.infer<typeof permissionsBody>;

function toStored(p: PermissionsBody, base: PermissionName[] = []): string {
  const on = new Set<PermissionName>(base);
  for (const [section, values] of Object.entries(p))
    for (const [name, v] of Object.entries(values ?? {})) {
      const key = `${section}.${name}` as PermissionName;
      if (v) on.add(key);
      else on.delete(key);
    }
  const out: Record<string, true> = {};
  for (const k of PERMISSIONS) if (on.has(k)) out[k] = true;
  return JSON.stringify(out);
}

function presentGroup(g: GroupsTable, memberCount?: number) {
  const granted = parseGroupPermissions(g.permissions);
  const flat = Object.fromEntries(PERMISSIONS.map((p) => [p, granted.includes(p)])) as Record<PermissionName, boolean>;
  return {
    id: g.id,
    name: g.name,
    description: g.description,
    permissions: nestPermissions(flat),
    source: g.source,
    created_by: g.created_by,
    created_at: g.created_at,
    updated_at: g.updated_at,
    ...(memberCount !== undefined ? { member_count: memberCount } : {}),
  };
}

function likePattern(q: string): string {
  return `%${q.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c)}%`;
}

export function registerGroupRoutes(app: FastifyInstance, ctx: AppContext) {
  /** Group membership and permissions feed every cached API-key check: forget them after a change. */
  const changed = () => apiKeyService(ctx).invalidate({ all: true });

  async function load(trx: Trx | AppContext['db'], id: string): Promise<GroupsTable> {
    const g = await trx.selectFrom('groups').selectAll().where('id', '=', id).executeTakeFirst();
    if (!g) throw notFound('Group');
    return g;
  }

  async function memberCount(id: string): Promise<number> {
    const r = await ctx.db
      .selectFrom('group_members')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('group_id', '=', id)
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  route(app, {
    method: 'GET',
    url: '/api/v1/groups',
    auth: 'admin',
    policy: 'admin:groups.list',
    tags: ['groups'],
    query: z.object({
      query: z.string().max(200).optional(),
      page: z.coerce.number().int().min(1).max(100_000).default(1),
      limit: z.coerce.number().int().min(1).max(100).default(50),
    }),
    handler: async (req) => {
      const { query, page, limit } = req.data.query;
      let q = ctx.db.selectFrom('groups');
      if (query) q = q.where(sql<SqlBool>`name_key like ${likePattern(query)} escape '\\'`);
      const [{ total }] = (await q.select((eb) => eb.fn.countAll<number>().as('total')).execute()) as [
        { total: number },
      ];
      const rows = await q
        .selectAll('groups')
        .select((eb) =>
          eb
            .selectFrom('group_members')
            .select((e2) => e2.fn.countAll<number>().as('c'))
            .whereRef('group_members.group_id', '=', 'groups.id')
            .as('member_count'),
        )
        .orderBy('name_key')
        .orderBy('id')
        .limit(limit)
        .offset((page - 1) * limit)
        .execute();
      return {
        items: rows.map((r) => presentGroup(r, Number(r.member_count ?? 0))),
        total: Number(total),
        page,
        limit,
      };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/groups',
    auth: 'admin',
    policy: 'admin:groups.create',
    tags: ['groups'],
    body: z
      .object({
        name: z.string().trim().min(1).max(200),
        description: z.string().max(2000).optional(),
        permissions: permissionsBody.optional(),
      })
      .strict(),
    handler: async (req, reply) => {
      const b = req.data.body;
      const now = Date.now();
      const g: GroupsTable = {
        id: randomUUID(),
        name: b.name,
        name_key: b.name.toLowerCase(),
        description: b.description ?? '',
        permissions: toStored(b.permissions ?? {}),
        source: 'local',
        created_by: req.auth!.actorId,
        created_at: now,
        updated_at: now,
      };
      try {
        await ctx.db.transaction().execute(async (trx) => {
          await trx.insertInto('groups').values(g).execute();
          await ctx.audit.record(trx, {
            ...fromRequest(req),
            action: 'group.created',
            resourceType: 'group',
            resourceId: g.id,
            after: presentGroup(g),
            result: 'success',
          });
        });
      } catch (e) {
        if (isUniqueViolation(e)) throw new AppError('group_name_taken', 'A group with this name already exists');
        throw e;
      }
      reply.code(201);
      return presentGroup(g, 0);
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/groups/:id',
    auth: 'admin',
    policy: 'admin:groups.read',
    tags: ['groups'],
    params: idParam,
    handler: async (req) => {
      const g = await load(ctx.db, req.data.params.id);
      return presentGroup(g, await memberCount(g.id));
    },
  });

  route(app, {
    method: 'PATCH',
    url: '/api/v1/groups/:id',
    auth: 'admin',
    policy: 'admin:groups.update',
    tags: ['groups'],
    params: idParam,
    body: z
      .object({
        name: z.string().trim().min(1).max(200).optional(),
        description: z.string().max(2000).optional(),
        permissions: permissionsBody.optional(),
      })
      .strict()
      .refine((b) => Object.keys(b).length > 0, 'nothing to change'),
    handler: async (req) => {
      const b = req.data.body;
      let after: GroupsTable;
      try {
        after = await ctx.db.transaction().execute(async (trx) => {
          const before = await load(trx, req.data.params.id);
          const patch: Partial<GroupsTable> = { updated_at: Date.now() };
          if (b.name !== undefined) {
            patch.name = b.name;
            patch.name_key = b.name.toLowerCase();
          }
          if (b.description !== undefined) patch.description = b.description;
          if (b.permissions !== undefined)
            patch.permissions = toStored(b.permissions, parseGroupPermissions(before.permissions));
          await trx.updateTable('groups').set(patch).where('id', '=', before.id).execute();
          const next = { ...before, ...patch };
          await ctx.audit.record(trx, {
            ...fromRequest(req),
            action: 'group.updated',
            resourceType: 'group',
            resourceId: before.id,
            before: presentGroup(before),
            after: presentGroup(next),
            result: 'success',
          });
          return next;
        });
      } catch (e) {
        if (isUniqueViolation(e)) throw new AppError('group_name_taken', 'A group with this name already exists');
        throw e;
      }
      await changed();
      return presentGroup(after, await memberCount(after.id));
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/groups/:id',
    auth: 'admin',
    policy: 'admin:groups.delete',
    tags: ['groups'],
    params: idParam,
    handler: async (req) => {
      await ctx.db.transaction().execute(async (trx) => {
        const before = await load(trx, req.data.params.id);
        const grants = await removePrincipalGrants(trx, 'group', before.id);
        await trx.deleteFrom('group_members').where('group_id', '=', before.id).execute();
        await trx.deleteFrom('groups').where('id', '=', before.id).execute();
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'group.deleted',
          resourceType: 'group',
          resourceId: before.id,
          before: presentGroup(before),
          result: 'success',
          details: { grants_removed: grants },
        });
      });
      await changed();
      return { status: 'deleted' };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/groups/:id/members',
    auth: 'admin',
    policy: 'admin:groups.members.list',
    tags: ['groups'],
    params: idParam,
    query: z.object({
      page: z.coerce.number().int().min(1).max(100_000).default(1),
      limit: z.coerce.number().int().min(1).max(500).default(100),
    }),
    handler: async (req) => {
      const g = await load(ctx.db, req.data.params.id);
      const { page, limit } = req.data.query;
      const rows = await ctx.db
        .selectFrom('group_members')
        .innerJoin('users', 'users.id', 'group_members.user_id')
        .selectAll('users')
        .select(['group_members.source as membership_source', 'group_members.created_at as added_at'])
        .where('group_members.group_id', '=', g.id)
        .orderBy('users.email')
        .limit(limit)
        .offset((page - 1) * limit)
        .execute();
      return {
        items: rows.map((r) => ({ ...presentUser(r), membership_source: r.membership_source, added_at: r.added_at })),
        total: await memberCount(g.id),
        page,
        limit,
      };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/groups/:id/members',
    auth: 'admin',
    policy: 'admin:groups.members.add (every user id checked)',
    tags: ['groups'],
    params: idParam,
    body: z.object({ user_ids: z.array(z.string().min(1).max(64)).min(1).max(500) }).strict(),
    handler: async (req) => {
      const ids = [...new Set(req.data.body.user_ids)];
      const added = await ctx.db.transaction().execute(async (trx) => {
        const g = await load(trx, req.data.params.id);
        const found = await trx.selectFrom('users').select('id').where('id', 'in', ids).execute();
        if (found.length !== ids.length) {
          const known = new Set(found.map((f) => f.id));
          throw new AppError('not_found', 'User not found', { user_ids: ids.filter((i) => !known.has(i)) });
        }
        const existing = new Set(
          (
            await trx
              .selectFrom('group_members')
              .select('user_id')
              .where('group_id', '=', g.id)
              .where('user_id', 'in', ids)
              .execute()
          ).map((r) => r.user_id),
        );
        const now = Date.now();
        const fresh = ids.filter((i) => !existing.has(i));
        if (fresh.length)
          await trx
            .insertInto('group_members')
            .values(fresh.map((user_id) => ({ group_id: g.id, user_id, source: 'local', created_at: now })))
            .execute();
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'group.members_added',
          resourceType: 'group',
          resourceId: g.id,
          result: 'success',
          details: { user_ids: fresh },
        });
        return fresh;
      });
      await changed();
      return { status: 'added', added, count: await memberCount(req.data.params.id) };
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/groups/:id/members/:userId',
    auth: 'admin',
    policy: 'admin:groups.members.remove (group and user in the WHERE)',
    tags: ['groups'],
    params: z.object({ id: z.string().min(1).max(64), userId: z.string().min(1).max(64) }),
    handler: async (req) => {
      const { id, userId } = req.data.params;
      await ctx.db.transaction().execute(async (trx) => {
        await load(trx, id);
        const r = await trx
          .deleteFrom('group_members')
          .where('group_id', '=', id)
          .where('user_id', '=', userId)
          .executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound('Member');
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'group.member_removed',
          resourceType: 'group',
          resourceId: id,
          result: 'success',
          details: { user_id: userId },
        });
      });
      await changed();
      return { status: 'removed' };
    },
  });
}
