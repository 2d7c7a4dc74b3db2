import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { AUTH_COOKIE } from '../auth/authenticate.js';
import { clearSessionCookie, setSessionCookie } from '../auth/routes.js';
import { presentUser } from '../users/presenter.js';

/**
 * Impersonation: an admin acts as a non-admin user for support. The token's session row has
 * `user_id` = the user and `actor_id` = the admin (the JWT carries `sub` and `act`); it lasts at
 * most 30 minutes, needs a reason, and every audited action records both ids. It stops at once
 * when the admin is demoted, deactivated or deleted. Ending it revokes the impersonation session
 * and, for a browser, puts back the admin's own session cookie (kept meanwhile in a cookie that is
 * sent only to the end route).
 */
export const IMPERSONATION_MAX_MS = 30 * 60_000;
export const ADMIN_COOKIE = 'hridaai_admin_token';
const ADMIN_COOKIE_PATH = '/api/v1/auths/impersonation';

/** An impersonation token is valid only while its admin is still an active admin. */
export async function checkImpersonator(ctx: AppContext, actorId: string): Promise<void> {
  const a = await ctx.db.selectFrom('users').select(['role', 'active']).where('id', '=', actorId).executeTakeFirst();
  if (!a || a.active !== 1 || a.role !== 'admin')
    throw new AppError('session_revoked', 'The administrator of this impersonation is no longer an active admin');
}

function cookieOpts(ctx: AppContext) {
  return { httpOnly: true, sameSite: ctx.config.authCookie.sameSite, secure: ctx.config.authCookie.secure } as const;
}

function setImpersonationCookies(ctx: AppContext, reply: FastifyReply, adminToken: string, token: string, ttl: number) {
  const maxAge = Math.floor(ttl / 1000);
  reply.setCookie(ADMIN_COOKIE, adminToken, { ...cookieOpts(ctx), path: ADMIN_COOKIE_PATH, maxAge });
  reply.setCookie(AUTH_COOKIE, token, { ...cookieOpts(ctx), path: '/', maxAge });
}

export function registerImpersonationRoutes(app: FastifyInstance, ctx: AppContext) {
  route(app, {
    method: 'POST',
    url: '/api/v1/users/:id/impersonate',
    auth: 'session',
    policy: 'admin:impersonate (signed-in admin session, not a key; target must be an active non-admin)',
    tags: ['users'],
    summary: 'Act as a non-admin user for up to 30 minutes (reason required)',
    params: z.object({ id: z.string().min(1).max(64) }),
    body: z.object({ reason: z.string().trim().min(3).max(1000) }).strict(),
    handler: async (req, reply) => {
      const auth = req.auth!;
      if (auth.user.role !== 'admin' || auth.actorId !== auth.user.id)
        throw new AppError('admin_required', 'Only an administrator acting as themselves may impersonate');
      const target = await ctx.db
        .selectFrom('users')
        .selectAll()
        .where('id', '=', req.data.params.id)
        .executeTakeFirst();
      if (!target) throw notFound('User');
      if (target.id === auth.user.id) throw new AppError('cannot_impersonate', 'You cannot impersonate yourself');
      if (target.role === 'admin') throw new AppError('cannot_impersonate', 'Administrators cannot be impersonated');
      if (target.active !== 1) throw new AppError('cannot_impersonate', 'This account is deactivated');
      const jwtTtl = ctx.config.JWT_EXPIRES_IN;
      const ttl = jwtTtl === null ? IMPERSONATION_MAX_MS : Math.min(IMPERSONATION_MAX_MS, jwtTtl);
      const ua = req.headers['user-agent'];
      const { token, session } = await ctx.db.transaction().execute(async (trx) => {
        const created = await ctx.sessions.create(trx, {
          userId: target.id,
          actorId: auth.user.id,
          kind: 'impersonation',
          ip: req.ip ?? null,
          userAgent: typeof ua === 'string' ? ua : null,
          ttlMs: ttl,
        });
        await trx
          .insertInto('impersonations')
          .values({
            id: randomUUID(),
            session_id: created.session.id,
            admin_id: auth.user.id,
            user_id: target.id,
            admin_session_id: auth.session?.id ?? null,
            reason: req.data.body.reason,
            started_at: created.session.created_at,
            expires_at: created.session.expires_at!,
            ended_at: null,
            ended_reason: null,
          })
          .execute();
        await ctx.audit.record(trx, {
          action: 'impersonation.started',
          actorId: auth.user.id,
          subjectId: target.id,
          resourceType: 'user',
          resourceId: target.id,
          result: 'success',
          ip: req.ip ?? null,
          requestId: req.id,
          details: {
            reason: req.data.body.reason,
            session_id: created.session.id,
            expires_at: created.session.expires_at,
          },
        });
        return created;
      });
      if (auth.viaCookie) {
        const current = req.cookies[AUTH_COOKIE];
        if (current) setImpersonationCookies(ctx, reply, current, token, ttl);
      }
      reply.code(201);
      return {
        token,
        token_type: 'Bearer',
        expires_at: session.expires_at,
        user: presentUser(target),
        impersonated_by: auth.user.id,
      };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/auths/impersonation/end',
    auth: 'session',
    policy: 'self:end-impersonation (the impersonation session itself)',
    allowPending: true,
    tags: ['auth'],
    summary: 'End the impersonation; a browser gets its admin session back',
    handler: async (req, reply) => {
      const auth = req.auth!;
      const session = auth.session;
      if (!session || session.actor_id === null)
        throw new AppError('not_impersonating', 'This session is not an impersonation');
      const adminId = session.actor_id;
      await ctx.db.transaction().execute(async (trx) => {
        await ctx.sessions.revoke(session.id, 'impersonation_ended', { trx });
        await trx
          .updateTable('impersonations')
          .set({ ended_at: Date.now(), ended_reason: 'ended' })
          .where('session_id', '=', session.id)
          .where('ended_at', 'is', null)
          .execute();
        await ctx.audit.record(trx, {
          action: 'impersonation.ended',
          actorId: adminId,
          subjectId: auth.user.id,
          resourceType: 'user',
          resourceId: auth.user.id,
          result: 'success',
          ip: req.ip ?? null,
          requestId: req.id,
          details: { session_id: session.id },
        });
      });
      await ctx.sessions.revoke(session.id, 'impersonation_ended'); // drop caches here and elsewhere
      let restored = false;
      const adminToken = req.cookies[ADMIN_COOKIE];
      if (adminToken) {
        reply.clearCookie(ADMIN_COOKIE, { ...cookieOpts(ctx), path: ADMIN_COOKIE_PATH });
        try {
          const back = await ctx.sessions.check(adminToken);
          if (back.user.id === adminId && back.session.actor_id === null && back.user.role === 'admin') {
            setSessionCookie(ctx, reply, adminToken);
            restored = true;
          }
        } catch {
          /* the admin session ended meanwhile: signed out */
        }
      }
      if (!restored && auth.viaCookie) clearSessionCookie(ctx, reply);
      return { status: 'ended', restored, admin_id: adminId };
    },
  });
}
