import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import type { User } from '../../platform/db/types.js';
import { otherActiveAdmins } from '../auth/accounts.js';
import { presentSession } from '../auth/sessions.js';
import { presentUser } from './presenter.js';
import { eraseUser } from '../privacy/erasure.js';

const idParam = z.object({ id: z.string().min(1).max(64) });

function likePattern(q: string): string {
  return `%${q.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c)}%`;
}

export function registerUserRoutes(app: FastifyInstance, ctx: AppContext) {
  route(app, {
    method: 'GET',
    url: '/api/v1/users',
    auth: 'admin',
    policy: 'admin:users.list',
    tags: ['users'],
    query: z.object({
      query: z.string().max(200).optional(),
      role: z.enum(['admin', 'user', 'pending']).optional(),
      page: z.coerce.number().int().min(1).max(100_000).default(1),
      limit: z.coerce.number().int().min(1).max(100).default(30),
    }),
    handler: async (req) => {
      const { query, role, page, limit } = req.data.query;
      let q = ctx.db.selectFrom('users');
      if (query) {
        const p = likePattern(query);
        // ESCAPE makes `\` the escape character in both engines (SQLite has none by default).
        q = q.where((eb) =>
          eb.or([sql<boolean>`lower(name) like ${p} escape '\\'`, sql<boolean>`lower(email) like ${p} escape '\\'`]),
        );
      }
      if (role) q = q.where('role', '=', role);
      const [{ total }] = (await q.select((eb) => eb.fn.countAll<number>().as('total')).execute()) as [
        { total: number },
      ];
      const rows = await q
        .selectAll()
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(limit)
        .offset((page - 1) * limit)
        .execute();
      return { items: rows.map(presentUser), total: Number(total), page, limit };
    },
  });

  async function load(id: string): Promise<User> {
    const u = await ctx.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    if (!u) throw notFound('User');
    return u;
  }

  route(app, {
    method: 'GET',
    url: '/api/v1/users/:id',
    auth: 'admin',
    policy: 'admin:users.read',
    tags: ['users'],
    params: idParam,
    handler: async (req) => presentUser(await load(req.data.params.id)),
  });

  route(app, {
    method: 'PATCH',
    url: '/api/v1/users/:id',
    auth: 'admin',
    policy: 'admin:users.update',
    tags: ['users'],
    summary: 'Change role, active flag or name. Role change and deactivation revoke every session.',
    params: idParam,
    body: z
      .object({
        role: z.enum(['admin', 'user', 'pending']).optional(),
        active: z.boolean().optional(),
        name: z.string().trim().min(1).max(200).optional(),
      })
      .strict()
      .refine((b) => Object.keys(b).length > 0, 'nothing to change'),
    handler: async (req) => {
      const { id } = req.data.params;
      const body = req.data.body;
      const updated = await ctx.db.transaction().execute(async (trx) => {
        const before = await trx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
        if (!before) throw notFound('User');
        const losesAdmin =
          before.role === 'admin' &&
          before.active === 1 &&
          ((body.role !== undefined && body.role !== 'admin') || body.active === false);
        if (losesAdmin && (await otherActiveAdmins(trx, ctx.dbKind, id)) === 0)
          throw new AppError('last_admin', 'The last active administrator cannot be demoted or deactivated');
        const patch: Partial<User> = { updated_at: Date.now() };
        if (body.role !== undefined) patch.role = body.role;
        if (body.active !== undefined) patch.active = body.active ? 1 : 0;
        if (body.name !== undefined) patch.name = body.name;
        await trx.updateTable('users').set(patch).where('id', '=', id).execute();
        const roleChanged = body.role !== undefined && body.role !== before.role;
        const deactivated = body.active === false && before.active === 1;
        const reason = deactivated ? 'deactivated' : 'role_changed';
        const revoked = roleChanged || deactivated ? await ctx.sessions.revokeAllForUser(id, reason, { trx }) : 0;
        // Audit, in this transaction: one event per kind of change.
        const ev = { ...fromRequest(req), resourceType: 'user', resourceId: id };
        if (roleChanged)
          await ctx.audit.record(trx, {
            ...ev,
            action: before.role === 'pending' ? 'user.approved' : 'user.role_changed',
            before: { role: before.role },
            after: { role: body.role },
          });
        if (body.active !== undefined && (body.active ? 1 : 0) !== before.active)
          await ctx.audit.record(trx, {
            ...ev,
            action: body.active ? 'user.activated' : 'user.deactivated',
            before: { active: before.active === 1 },
            after: { active: body.active },
          });
        if (body.name !== undefined && body.name !== before.name)
          await ctx.audit.record(trx, {
            ...ev,
            action: 'user.updated',
            before: { name: before.name },
            after: { name: body.name },
          });
        if (revoked > 0)
          await ctx.audit.record(trx, {
            ...ev,
            action: 'session.revoked_all',
            details: { reason, count: revoked },
          });
        return { ...before, ...patch } as User;
      });
      await ctx.sessions.afterUserChange(id);
      return presentUser(updated);
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/users/:id',
    auth: 'admin',
    policy: 'admin:users.delete',
    tags: ['users'],
    params: idParam,
    handler: async (req) => {
      // The one erasure function (also behind DELETE /api/v1/users/me): every row and file of the
      // user in one transaction, the last-admin rule, session revocation and the audit event.
      await eraseUser(ctx, req.data.params.id, { ...fromRequest(req), via: 'admin' });
      return { status: 'deleted' };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/users/:id/sessions',
    auth: 'admin',
    policy: 'admin:users.sessions',
    tags: ['users'],
    params: idParam,
    handler: async (req) => {
      await load(req.data.params.id);
      const rows = await ctx.sessions.listForUser(req.data.params.id);
      return { items: rows.map((s) => presentSession(s, req.auth!.session?.id)) };
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/users/:id/sessions',
    auth: 'admin',
    policy: 'admin:users.sessions.revoke-all',
    tags: ['users'],
    params: idParam,
    handler: async (req) => {
      const { id } = req.data.params;
      await load(id);
      const n = await ctx.db.transaction().execute(async (trx) => {
        const count = await ctx.sessions.revokeAllForUser(id, 'revoked_by_admin', { trx });
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'session.revoked_all',
          resourceType: 'user',
          resourceId: id,
          details: { reason: 'revoked_by_admin', count },
        });
        return count;
      });
      await ctx.sessions.afterUserChange(id);
      return { status: 'revoked', count: n };
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/users/:id/sessions/:sid',
    auth: 'admin',
    policy: 'admin:users.sessions.revoke (user id in WHERE)',
    tags: ['users'],
    params: z.object({ id: z.string().min(1).max(64), sid: z.string().min(1).max(64) }),
    handler: async (req) => {
      const { id, sid } = req.data.params;
      await ctx.db.transaction().execute(async (trx) => {
        const ok = await ctx.sessions.revoke(sid, 'revoked_by_admin', { userId: id, trx });
        if (!ok) throw notFound('Session');
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'session.revoked',
          resourceType: 'session',
          resourceId: sid,
          details: { reason: 'revoked_by_admin', user_id: id },
        });
      });
      await ctx.sessions.afterUserChange(id);
      return { status: 'revoked' };
    },
  });
}
