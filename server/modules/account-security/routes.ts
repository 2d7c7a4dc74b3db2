import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import type { User } from '../../platform/db/types.js';
import { authFromRequest, fromRequest } from '../../platform/audit/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { hashPassword } from '../../platform/security/passwords.js';
import { checkPasswordRules } from '../auth/accounts.js';
import { setSessionCookie } from '../auth/routes.js';
import { presentUser } from '../users/presenter.js';
import { accountSubject, ipSubject } from './limiter.js';
import { tooManyAttempts } from './service.js';

const idParam = z.object({ id: z.string().min(1).max(64) });
const code = z.string().trim().max(16);
const recoveryCode = z.string().trim().max(32);
const password = z.string().max(1024);

export function registerAccountSecurityRoutes(app: FastifyInstance, ctx: AppContext) {
  const sec = ctx.accountSecurity;
  sec.start();

  async function currentUser(req: FastifyRequest): Promise<User> {
    const auth = req.auth!;
    if (auth.kind === 'anonymous' && auth.anonymous !== 'allow_all')
      throw new AppError('unauthenticated', 'Sign in first');
    if (auth.actorId !== auth.user.id)
      throw new AppError('forbidden', 'Two-factor settings cannot be changed while impersonating');
    const u = await ctx.db.selectFrom('users').selectAll().where('id', '=', auth.user.id).executeTakeFirst();
    if (!u) throw new AppError('session_revoked', 'This account no longer exists');
    return u;
  }

  /**
   * Re-authentication for sensitive changes: the current password when the account has one,
   * counted by the login limiter like a sign-in.
   */
  async function reauthenticate(req: FastifyRequest, user: User, pw: string | undefined) {
    if (!user.password_hash) return;
    const attempt = await sec.limiter.attempt([accountSubject(user.email, user.id), ipSubject(req.ip)]);
    sec.auditLockouts(req, attempt, 'password');
    if (!attempt.allowed) throw tooManyAttempts(attempt.retryAt, sec.clock());
    try {
      await sec.confirmPassword(user, pw);
    } catch (e) {
      ctx.audit.auth({
        action: 'auth.reauthentication',
        result: 'failure',
        method: 'password',
        userId: user.id,
        email: user.email,
        reason: 'wrong_password',
        ...authFromRequest(req),
      });
      throw e;
    }
    await sec.limiter.release(attempt);
  }

  // ---- the user's own 2FA

  route(app, {
    method: 'GET',
    url: '/api/v1/auths/2fa',
    auth: 'session',
    policy: 'self:2fa.read',
    tags: ['account security'],
    summary: 'Two-factor status of the signed-in account',
    handler: async (req) => sec.status((await currentUser(req)).id),
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/auths/2fa/setup',
    auth: 'session',
    policy: 'self:2fa.setup (re-authenticated)',
    bodyLimit: 16 * 1024,
    tags: ['account security'],
    summary: 'Start enrolment: a new TOTP secret and its otpauth URI (for the QR code); confirm with /enable',
    body: z.object({ password: password.optional() }).strict().default({}),
    handler: async (req) => {
      const user = await currentUser(req);
      if (!ctx.config.ENABLE_2FA)
        throw new AppError(
          'two_factor_disabled',
          'Two-factor authentication is turned off on this server (ENABLE_2FA)',
        );
      await reauthenticate(req, user, req.data.body.password);
      return sec.setup(user);
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/auths/2fa/enable',
    auth: 'session',
    policy: 'self:2fa.enable (first code)',
    tags: ['account security'],
    summary: 'Confirm enrolment with a first code; answers the ten recovery codes, shown once',
    body: z.object({ code }).strict(),
    handler: async (req) => {
      const user = await currentUser(req);
      const codes = await sec.enable(req, user, req.data.body.code);
      ctx.audit.auth({
        action: 'auth.2fa',
        result: 'success',
        method: 'totp',
        userId: user.id,
        email: user.email,
        reason: 'enrolled',
        ...authFromRequest(req),
      });
      return { enabled: true, recovery_codes: codes };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/auths/2fa/disable',
    auth: 'session',
    policy: 'self:2fa.disable (password + second factor)',
    bodyLimit: 16 * 1024,
    tags: ['account security'],
    summary: 'Turn 2FA off: current password and a code (or a recovery code)',
    body: z
      .object({ password: password.optional(), code: code.optional(), recovery_code: recoveryCode.optional() })
      .strict(),
    handler: async (req) => {
      const user = await currentUser(req);
      if (ctx.config.ENFORCE_2FA)
        throw new AppError('two_factor_enforced', 'Two-factor authentication is required on this server (ENFORCE_2FA)');
      if (!(await sec.flags(user.id)).totpEnabled)
        throw new AppError('two_factor_not_enabled', 'Two-factor authentication is not on for this account');
      const { password: pw, code: c, recovery_code: rc } = req.data.body;
      await reauthenticate(req, user, pw);
      await sec.confirmSecondFactor(req, user, { code: c, recoveryCode: rc }, true);
      await ctx.db.transaction().execute(async (trx) => {
        await sec.removeTwoFactor(trx, user.id);
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'two_factor.disabled',
          resourceType: 'user',
          resourceId: user.id,
          details: { by: 'user' },
        });
      });
      await sec.changed(user.id);
      return { enabled: false };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/auths/2fa/recovery-codes',
    auth: 'session',
    policy: 'self:2fa.recovery-codes (current code)',
    tags: ['account security'],
    summary: 'Replace the recovery codes (a current TOTP code is required); the old ones stop working',
    body: z.object({ code }).strict(),
    handler: async (req) => {
      const user = await currentUser(req);
      if (!(await sec.flags(user.id)).totpEnabled)
        throw new AppError('two_factor_not_enabled', 'Two-factor authentication is not on for this account');
      await sec.confirmSecondFactor(req, user, { code: req.data.body.code }, false);
      return { recovery_codes: await sec.regenerateRecoveryCodes(req, user) };
    },
  });

  // ---- the second step of a sign-in

  route(app, {
    method: 'POST',
    url: '/api/v1/auths/2fa/verify',
    auth: 'none',
    policy: 'public:signin-2fa (challenge token)',
    setsSession: true,
    bodyLimit: 16 * 1024,
    tags: ['account security'],
    summary: 'Exchange the sign-in challenge token and a TOTP or recovery code for a session',
    body: z
      .object({
        challenge_token: z.string().min(1).max(4096),
        code: code.optional(),
        recovery_code: recoveryCode.optional(),
      })
      .strict()
      .refine((b) => (b.code === undefined) !== (b.recovery_code === undefined), {
        message: 'send exactly one of code and recovery_code',
      }),
    handler: async (req, reply) => {
      const b = req.data.body;
      const r = await sec.verifyChallenge(req, {
        challengeToken: b.challenge_token,
        code: b.code,
        recoveryCode: b.recovery_code,
      });
      const { user, kind, method } = r;
      const ua = req.headers['user-agent'];
      const { token } = await ctx.db.transaction().execute(async (trx) => {
        const created = await ctx.sessions.create(trx, {
          userId: user.id,
          kind,
          ip: req.ip ?? null,
          userAgent: typeof ua === 'string' ? ua : null,
        });
        await trx.updateTable('users').set({ last_active_at: Date.now() }).where('id', '=', user.id).execute();
        await ctx.audit.recordAuth(trx, {
          action: 'auth.signin',
          result: 'success',
          method: `${kind}+${method}`,
          userId: user.id,
          email: user.email,
          ...authFromRequest(req),
        });
        return created;
      });
      ctx.audit.auth({
        action: 'auth.2fa',
        result: 'success',
        method,
        userId: user.id,
        email: user.email,
        ...authFromRequest(req),
      });
      setSessionCookie(ctx, reply, token);
      return {
        token,
        token_type: 'Bearer',
        user: presentUser(user),
        ...sec.notices(await sec.flags(user.id), kind),
        ...(r.remainingRecoveryCodes !== null ? { recovery_codes_remaining: r.remainingRecoveryCodes } : {}),
      };
    },
  });

  // ---- administration

  async function loadUser(id: string): Promise<User> {
    const u = await ctx.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    if (!u) throw notFound('User');
    return u;
  }

  route(app, {
    method: 'GET',
    url: '/api/v1/users/:id/security',
    auth: 'admin',
    policy: 'admin:users.security.read',
    tags: ['account security'],
    summary: 'A user’s 2FA state, forced-password-change flag and sign-in lockout',
    params: idParam,
    handler: async (req) => {
      const user = await loadUser(req.data.params.id);
      const row = await ctx.db
        .selectFrom('user_security')
        .select(['must_change_password', 'password_reset_at', 'password_reset_by'])
        .where('user_id', '=', user.id)
        .executeTakeFirst();
      const st = await sec.status(user.id);
      return {
        user_id: user.id,
        two_factor: {
          enabled: st.enabled,
          enabled_at: st.enabled_at,
          recovery_codes_remaining: st.recovery_codes_remaining,
        },
        must_change_password: row?.must_change_password === 1,
        password_reset_at: row?.password_reset_at ?? null,
        password_reset_by: row?.password_reset_by ?? null,
        lockout: await sec.limiter.get(accountSubject(user.email).id),
      };
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/users/:id/2fa',
    auth: 'admin',
    policy: 'admin:users.2fa.reset',
    tags: ['account security'],
    summary: 'Reset a user’s 2FA (lost device): secret, recovery codes and pending challenges removed',
    params: idParam,
    handler: async (req) => {
      const user = await loadUser(req.data.params.id);
      const removed = await ctx.db.transaction().execute(async (trx) => {
        const removed = await sec.removeTwoFactor(trx, user.id);
        if (removed)
          await ctx.audit.record(trx, {
            ...fromRequest(req),
            action: 'two_factor.reset',
            resourceType: 'user',
            resourceId: user.id,
            details: { by: 'admin' },
          });
        return removed;
      });
      if (!removed) throw new AppError('two_factor_not_enabled', 'This user does not use two-factor authentication');
      await sec.changed(user.id);
      return { status: 'two_factor_reset' };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/users/:id/password',
    auth: 'admin',
    policy: 'admin:users.password.reset',
    bodyLimit: 16 * 1024,
    tags: ['account security'],
    summary: 'Set a temporary password (changed at next sign-in by default); every session of the user is revoked',
    params: idParam,
    body: z.object({ password, require_change: z.boolean().default(true) }).strict(),
    handler: async (req) => {
      const { config } = ctx;
      if (!config.ENABLE_PASSWORD_AUTH)
        throw new AppError('password_auth_disabled', 'Password authentication is disabled on this server');
      const { password: pw, require_change } = req.data.body;
      if (require_change && !config.ENABLE_PASSWORD_CHANGE_FORM)
        throw new AppError(
          'password_change_disabled',
          'Password changes are disabled (ENABLE_PASSWORD_CHANGE_FORM=false): the user could not change it; send require_change=false',
        );
      const user = await loadUser(req.data.params.id);
      checkPasswordRules(config, pw);
      const hash = await hashPassword(pw, config.PASSWORD_HASH_ROUNDS);
      const revoked = await ctx.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('users')
          .set({ password_hash: hash, updated_at: Date.now() })
          .where('id', '=', user.id)
          .execute();
        await sec.passwordChanged(trx, user.id);
        await sec.setMustChangePassword(trx, user.id, require_change, req.auth!.actorId);
        const revoked = await ctx.sessions.revokeAllForUser(user.id, 'password_reset', { trx });
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'user.password_reset',
          resourceType: 'user',
          resourceId: user.id,
          details: { require_change, sessions_revoked: revoked },
        });
        return revoked;
      });
      await sec.changed(user.id);
      // The user must be able to sign in with the new password at once.
      await sec.limiter.clearAccount(user.email);
      return { status: 'password_reset', must_change_password: require_change, sessions_revoked: revoked };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/users/:id/require-password-change',
    auth: 'admin',
    policy: 'admin:users.password.require-change',
    tags: ['account security'],
    summary: 'Require (or stop requiring) a password change; applies at once to the user’s password sessions',
    params: idParam,
    body: z
      .object({ required: z.boolean().default(true) })
      .strict()
      .default({ required: true }),
    handler: async (req) => {
      const { required } = req.data.body;
      if (required && (!ctx.config.ENABLE_PASSWORD_CHANGE_FORM || !ctx.config.ENABLE_PASSWORD_AUTH))
        throw new AppError('password_change_disabled', 'Password changes are disabled on this server');
      const user = await loadUser(req.data.params.id);
      if (required && !user.password_hash)
        throw new AppError('conflict', 'This account has no password (it signs in with single sign-on)');
      await ctx.db.transaction().execute(async (trx) => {
        await sec.setMustChangePassword(trx, user.id, required);
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: required ? 'user.password_change_required' : 'user.password_change_waived',
          resourceType: 'user',
          resourceId: user.id,
        });
      });
      await sec.changed(user.id);
      return { must_change_password: required };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/admin/lockouts',
    auth: 'admin',
    policy: 'admin:lockouts.list',
    tags: ['account security'],
    summary: 'Accounts and client addresses with failed sign-ins or a lockout (locked first)',
    query: z.object({
      locked_only: z
        .enum(['true', 'false'])
        .default('false')
        .transform((v) => v === 'true'),
      limit: z.coerce.number().int().min(1).max(500).default(100),
    }),
    handler: async (req) => {
      const items = await sec.limiter.list({ lockedOnly: req.data.query.locked_only, limit: req.data.query.limit });
      return { items, store: sec.limiter.store.kind };
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/admin/lockouts/:id',
    auth: 'admin',
    policy: 'admin:lockouts.clear',
    tags: ['account security'],
    summary: 'Clear the failures and lockout of one account or address',
    params: z.object({ id: z.string().regex(/^[ai]_[0-9a-f]{40}$/, 'must be a lockout id') }),
    handler: async (req) => {
      const entry = await sec.limiter.clear(req.data.params.id);
      if (!entry) throw notFound('Lockout');
      await ctx.audit.record(ctx.db, {
        ...fromRequest(req),
        action: 'login_lockout.cleared',
        resourceType: 'login_lockout',
        resourceId: entry.id,
        before: { kind: entry.kind, label: entry.label, failures: entry.failures, locked: entry.locked },
        details: entry.user_id ? { user_id: entry.user_id } : undefined,
      });
      return { status: 'cleared', entry };
    },
  });
}
