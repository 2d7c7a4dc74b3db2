import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { authFromRequest, fromRequest } from '../../platform/audit/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { hashPassword, verifyPassword } from '../../platform/security/passwords.js';
import { presentUser } from '../users/presenter.js';
import { checkPasswordRules, provisionUser } from './accounts.js';
import { AUTH_COOKIE } from './authenticate.js';
import { presentSession } from './sessions.js';
import { accountSubject, ipSubject } from '../account-security/limiter.js';
import { restrictionsOfAuth, SIGNIN_FAILED_MESSAGE, tooManyAttempts } from '../account-security/service.js';

const email = z
  .string()
  .trim()
  .max(320)
  .regex(/^[^@\s]+@[^@\s]+\.[^@\s]+$/, 'must be an e-mail address')
  .transform((v) => v.toLowerCase());
const password = z.string().max(1024);

export function setSessionCookie(ctx: AppContext, reply: FastifyReply, token: string) {
  const ttl = ctx.config.JWT_EXPIRES_IN;
  reply.setCookie(AUTH_COOKIE, token, {
    httpOnly: true,
    path: '/',
    sameSite: ctx.config.authCookie.sameSite,
    secure: ctx.config.authCookie.secure,
    // Browsers cap Max-Age at 400 days; a token without expiry gets the cap (it stays revocable).
    maxAge: ttl === null ? 400 * 86_400 : Math.floor(ttl / 1000),
  });
}

export function clearSessionCookie(ctx: AppContext, reply: FastifyReply) {
  reply.clearCookie(AUTH_COOKIE, {
    httpOnly: true,
    path: '/',
    sameSite: ctx.config.authCookie.sameSite,
    secure: ctx.config.authCookie.secure,
  });
}

function clientInfo(req: FastifyRequest) {
  const ua = req.headers['user-agent'];
  return { ip: req.ip ?? null, userAgent: typeof ua === 'string' ? ua : null };
}

/** A refused password sign-in/sign-up/change is always audited (reason = error code), then rethrown. */
function auditFailure(
  ctx: AppContext,
  req: FastifyRequest,
  action: string,
  e: unknown,
  who: { email?: string | null; userId?: string | null } = {},
  reason?: string,
): never {
  if (e instanceof AppError)
    ctx.audit.auth({
      action,
      result: 'failure',
      method: 'password',
      reason: reason ?? e.code,
      email: who.email ?? null,
      userId: who.userId ?? null,
      ...authFromRequest(req),
    });
  throw e;
}

export function registerAuthRoutes(app: FastifyInstance, ctx: AppContext) {
  const { config } = ctx;

  route(app, {
    method: 'POST',
    url: '/api/v1/auths/signup',
    auth: 'none',
    policy: 'public:signup',
    setsSession: true,
    bodyLimit: 16 * 1024,
    tags: ['auth'],
    summary: 'Create a local account (first account becomes admin)',
    body: z.object({ name: z.string().trim().min(1).max(200), email, password }).strict(),
    handler: async (req, reply) => {
      const { name, email: mail, password: pw } = req.data.body;
      const { user, token } = await (async () => {
        if (!config.ENABLE_PASSWORD_AUTH)
          throw new AppError('password_auth_disabled', 'Password authentication is disabled on this server');
        if (!config.ENABLE_LOGIN_FORM)
          throw new AppError('login_form_disabled', 'Local sign-up is disabled; use single sign-on');
        checkPasswordRules(config, pw);
        const hash = await hashPassword(pw, config.PASSWORD_HASH_ROUNDS);
        const { ip, userAgent } = clientInfo(req);
        return ctx.db.transaction().execute(async (trx) => {
          const user = await provisionUser(trx, {
            email: mail,
            name,
            passwordHash: hash,
            provider: 'password',
            subject: null,
            roleIfNotFirst: config.ENABLE_SIGNUP ? config.DEFAULT_USER_ROLE : null,
          });
          const { token } = await ctx.sessions.create(trx, { userId: user.id, kind: 'password', ip, userAgent });
          await ctx.audit.record(trx, {
            ...fromRequest(req),
            action: 'user.created',
            actorId: user.id,
            subjectId: user.id,
            resourceType: 'user',
            resourceId: user.id,
            after: { email: user.email, name: user.name, role: user.role },
            details: { via: 'signup' },
          });
          await ctx.audit.recordAuth(trx, {
            action: 'auth.signup',
            result: 'success',
            method: 'password',
            userId: user.id,
            email: user.email,
            ...authFromRequest(req),
          });
          return { user, token };
        });
      })().catch((e: unknown) => auditFailure(ctx, req, 'auth.signup', e, { email: mail }));
      setSessionCookie(ctx, reply, token);
      reply.code(201);
      return { token, token_type: 'Bearer', user: presentUser(user) };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/auths/signin',
    auth: 'none',
    policy: 'public:signin',
    setsSession: true,
    bodyLimit: 16 * 1024,
    tags: ['auth'],
    summary: 'Sign in with e-mail and password',
    body: z.object({ email: z.string().trim().max(320), password }).strict(),
    handler: async (req, reply) => {
      if (!config.ENABLE_PASSWORD_AUTH)
        auditFailure(
          ctx,
          req,
          'auth.failure',
          new AppError('password_auth_disabled', 'Password authentication is disabled on this server'),
          { email: req.data.body.email.toLowerCase().slice(0, 320) },
        );
      const mail = req.data.body.email.toLowerCase();
      const pw = req.data.body.password;
      const user = await ctx.db.selectFrom('users').selectAll().where('email', '=', mail).executeTakeFirst();
      // Login limiter: the attempt is counted (account and client address) before the password is
      // checked; a refused attempt (lockout, back-off) is not checked at all.
      const sec = ctx.accountSecurity;
      const attempt = await sec.limiter.attempt([accountSubject(mail, user?.id ?? null), ipSubject(req.ip)]);
      sec.auditLockouts(req, attempt, 'password');
      // Same work and the same answer (status, body) for an unknown account, a wrong password and
      // a refused attempt: always one bcrypt comparison.
      const ok = await verifyPassword(pw, (attempt.allowed ? user?.password_hash : null) ?? ctx.dummyHash);
      const who = { email: mail.slice(0, 320), userId: user?.id ?? null };
      if (!attempt.allowed || !user || !user.password_hash || !ok)
        auditFailure(
          ctx,
          req,
          'auth.failure',
          new AppError('invalid_credentials', SIGNIN_FAILED_MESSAGE),
          who,
          attempt.allowed ? undefined : `login_${attempt.reason ?? 'locked'}`,
        );
      if (!user.active) {
        await sec.limiter.release(attempt);
        auditFailure(ctx, req, 'auth.failure', new AppError('account_inactive', 'This account is deactivated'), who);
      }
      // 2FA: a challenge instead of a session; otherwise the attempt succeeds (count cleared).
      const next = await sec.afterFirstFactor(req, user, attempt, 'password');
      if (next.challenge) return next.challenge;
      const { ip, userAgent } = clientInfo(req);
      const { token } = await ctx.db.transaction().execute(async (trx) => {
        const created = await ctx.sessions.create(trx, { userId: user.id, kind: 'password', ip, userAgent });
        await trx.updateTable('users').set({ last_active_at: Date.now() }).where('id', '=', user.id).execute();
        await ctx.audit.recordAuth(trx, {
          action: 'auth.signin',
          result: 'success',
          method: 'password',
          userId: user.id,
          email: user.email,
          ...authFromRequest(req),
        });
        return created;
      });
      setSessionCookie(ctx, reply, token);
      return { token, token_type: 'Bearer', user: presentUser(user), ...next.notices };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/auths/signout',
    auth: 'session',
    policy: 'self:signout',
    allowPending: true,
    tags: ['auth'],
    summary: 'End the current session (revoked at once)',
    handler: async (req, reply) => {
      const auth = req.auth!;
      const session = auth.session;
      if (session) {
        await ctx.db.transaction().execute(async (trx) => {
          await ctx.sessions.revoke(session.id, 'signout', { trx });
          await ctx.audit.recordAuth(trx, {
            action: 'auth.signout',
            result: 'success',
            method: session.kind,
            userId: auth.user.id,
            email: auth.user.email,
            ...authFromRequest(req),
          });
        });
        await ctx.sessions.afterUserChange(auth.user.id);
      }
      clearSessionCookie(ctx, reply);
      return { status: 'signed_out' };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/auths/',
    auth: 'session-or-key',
    policy: 'self:read',
    allowPending: true,
    viewable: true,
    tags: ['auth'],
    summary: 'The signed-in account',
    handler: async (req) => {
      const auth = req.auth!;
      return {
        ...presentUser(auth.user),
        auth_kind: auth.kind,
        session_id: auth.session?.id ?? null,
        expires_at: auth.session?.expires_at ?? null,
        impersonated_by: auth.actorId !== auth.user.id ? auth.actorId : null,
        // password_change_required / two_factor_enrolment_required: what the session must do first.
        restrictions: restrictionsOfAuth(auth),
        ...(auth.anonymous ? { anonymous: auth.anonymous } : {}),
      };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/auths/update/profile',
    auth: 'session',
    policy: 'self:update-profile',
    tags: ['auth'],
    body: z.object({ name: z.string().trim().min(1).max(200) }).strict(),
    handler: async (req) => {
      const auth = req.auth!;
      const now = Date.now();
      await ctx.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('users')
          .set({ name: req.data.body.name, updated_at: now })
          .where('id', '=', auth.user.id)
          .execute();
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'user.updated',
          resourceType: 'user',
          resourceId: auth.user.id,
          before: { name: auth.user.name },
          after: { name: req.data.body.name },
        });
      });
      await ctx.sessions.afterUserChange(auth.user.id);
      return presentUser({ ...auth.user, name: req.data.body.name, updated_at: now });
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/auths/update/password',
    auth: 'session',
    policy: 'self:change-password',
    bodyLimit: 16 * 1024,
    tags: ['auth'],
    summary: 'Change the password (every other session is revoked)',
    body: z.object({ password, new_password: password }).strict(),
    handler: async (req) => {
      if (!config.ENABLE_PASSWORD_AUTH)
        throw new AppError('password_auth_disabled', 'Password authentication is disabled on this server');
      if (!config.ENABLE_PASSWORD_CHANGE_FORM)
        throw new AppError('password_change_disabled', 'Password changes are disabled on this server');
      const auth = req.auth!;
      if (auth.actorId !== auth.user.id)
        throw new AppError('forbidden', 'Cannot change a password while impersonating');
      const current = await ctx.db
        .selectFrom('users')
        .select('password_hash')
        .where('id', '=', auth.user.id)
        .executeTakeFirst();
      // The current password is a credential like any other: guesses count on the login limiter.
      const attempt = await ctx.accountSecurity.limiter.attempt([
        accountSubject(auth.user.email, auth.user.id),
        ipSubject(req.ip),
      ]);
      ctx.accountSecurity.auditLockouts(req, attempt, 'password');
      if (!attempt.allowed) throw tooManyAttempts(attempt.retryAt, ctx.accountSecurity.clock());
      const ok = await verifyPassword(req.data.body.password, current?.password_hash ?? ctx.dummyHash);
      if (!current?.password_hash || !ok)
        auditFailure(
          ctx,
          req,
          'auth.failure',
          new AppError('invalid_credentials', 'The current password is incorrect'),
          { userId: auth.user.id, email: auth.user.email },
        );
      await ctx.accountSecurity.limiter.release(attempt);
      checkPasswordRules(config, req.data.body.new_password);
      // A forced change (temporary password set by an admin) must pick a different password.
      await ctx.accountSecurity.checkNewPassword(auth.user.id, req.data.body.new_password, current!.password_hash!);
      const hash = await hashPassword(req.data.body.new_password, config.PASSWORD_HASH_ROUNDS);
      const revoked = await ctx.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('users')
          .set({ password_hash: hash, updated_at: Date.now() })
          .where('id', '=', auth.user.id)
          .execute();
        await ctx.accountSecurity.passwordChanged(trx, auth.user.id);
        const n = await ctx.sessions.revokeAllForUser(auth.user.id, 'password_changed', {
          exceptSid: auth.session?.id,
          trx,
        });
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'user.password_changed',
          resourceType: 'user',
          resourceId: auth.user.id,
          details: { other_sessions_revoked: n },
        });
        return n;
      });
      await ctx.sessions.afterUserChange(auth.user.id);
      return { status: 'password_changed', other_sessions_revoked: revoked };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/auths/sessions',
    auth: 'session',
    policy: 'self:list-sessions',
    allowPending: true,
    tags: ['auth'],
    handler: async (req) => {
      const auth = req.auth!;
      const rows = await ctx.sessions.listForUser(auth.user.id);
      return { items: rows.map((s) => presentSession(s, auth.session?.id)) };
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/auths/sessions/:id',
    auth: 'session',
    policy: 'self:revoke-session (owner in WHERE)',
    allowPending: true,
    tags: ['auth'],
    params: z.object({ id: z.string().max(64) }),
    handler: async (req, reply) => {
      const auth = req.auth!;
      await ctx.db.transaction().execute(async (trx) => {
        const ok = await ctx.sessions.revoke(req.data.params.id, 'revoked_by_user', { userId: auth.user.id, trx });
        if (!ok) throw notFound('Session');
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'session.revoked',
          resourceType: 'session',
          resourceId: req.data.params.id,
          details: { reason: 'revoked_by_user', user_id: auth.user.id },
        });
      });
      await ctx.sessions.afterUserChange(auth.user.id);
      if (req.data.params.id === auth.session?.id) clearSessionCookie(ctx, reply);
      return { status: 'revoked' };
    },
  });
}
