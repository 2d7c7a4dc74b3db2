import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { hashPassword, verifyPassword } from '../../platform/security/passwords.js';
import { presentUser } from '../users/presenter.js';
import { checkPasswordRules, provisionUser } from './accounts.js';
import { AUTH_COOKIE } from './authenticate.js';
import { presentSession } from './sessions.js';

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
      if (!config.ENABLE_PASSWORD_AUTH)
        throw new AppError('password_auth_disabled', 'Password authentication is disabled on this server');
      if (!config.ENABLE_LOGIN_FORM)
        throw new AppError('login_form_disabled', 'Local sign-up is disabled; use single sign-on');
      const { name, email: mail, password: pw } = req.data.body;
      checkPasswordRules(config, pw);
      const hash = await hashPassword(pw, config.PASSWORD_HASH_ROUNDS);
      const { ip, userAgent } = clientInfo(req);
      const { user, token } = await ctx.db.transaction().execute(async (trx) => {
        const user = await provisionUser(trx, {
          email: mail,
          name,
          passwordHash: hash,
          provider: 'password',
          subject: null,
          roleIfNotFirst: config.ENABLE_SIGNUP ? config.DEFAULT_USER_ROLE : null,
        });
        const { token } = await ctx.sessions.create(trx, { userId: user.id, kind: 'password', ip, userAgent });
        return { user, token };
      });
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
        throw new AppError('password_auth_disabled', 'Password authentication is disabled on this server');
      const mail = req.data.body.email.toLowerCase();
      const pw = req.data.body.password;
      const user = await ctx.db.selectFrom('users').selectAll().where('email', '=', mail).executeTakeFirst();
      // Same work whether or not the account exists: always one bcrypt comparison.
      const ok = await verifyPassword(pw, user?.password_hash ?? ctx.dummyHash);
      if (!user || !user.password_hash || !ok)
        throw new AppError('invalid_credentials', 'Incorrect e-mail or password');
      if (!user.active) throw new AppError('account_inactive', 'This account is deactivated');
      const { ip, userAgent } = clientInfo(req);
      const { token } = await ctx.sessions.create(ctx.db, { userId: user.id, kind: 'password', ip, userAgent });
      await ctx.db.updateTable('users').set({ last_active_at: Date.now() }).where('id', '=', user.id).execute();
      setSessionCookie(ctx, reply, token);
      return { token, token_type: 'Bearer', user: presentUser(user) };
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
      if (auth.session) await ctx.sessions.revoke(auth.session.id, 'signout');
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
      await ctx.db
        .updateTable('users')
        .set({ name: req.data.body.name, updated_at: now })
        .where('id', '=', auth.user.id)
        .execute();
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
      const ok = await verifyPassword(req.data.body.password, current?.password_hash ?? ctx.dummyHash);
      if (!current?.password_hash || !ok)
        throw new AppError('invalid_credentials', 'The current password is incorrect');
      checkPasswordRules(config, req.data.body.new_password);
      const hash = await hashPassword(req.data.body.new_password, config.PASSWORD_HASH_ROUNDS);
      const revoked = await ctx.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('users')
          .set({ password_hash: hash, updated_at: Date.now() })
          .where('id', '=', auth.user.id)
          .execute();
        return ctx.sessions.revokeAllForUser(auth.user.id, 'password_changed', { exceptSid: auth.session?.id, trx });
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
      const ok = await ctx.sessions.revoke(req.data.params.id, 'revoked_by_user', { userId: auth.user.id });
      if (!ok) throw notFound('Session');
      if (req.data.params.id === auth.session?.id) clearSessionCookie(ctx, reply);
      return { status: 'revoked' };
    },
  });
}
