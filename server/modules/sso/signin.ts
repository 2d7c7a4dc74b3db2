import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import { authFromRequest, fromRequest } from '../../platform/audit/index.js';
import type { Trx } from '../../platform/db/index.js';
import type { User } from '../../platform/db/types.js';
import { AppError } from '../../platform/http/errors.js';
import { otherActiveAdmins, provisionUser } from '../auth/accounts.js';
import { apiKeyService } from '../api-keys/service.js';
import { setProfileImage, validateProfileImage } from '../profile-images/validate.js';
import { syncGroupMemberships } from './group-sync.js';

/**
 * Signs in someone an external source vouched for (an OAuth provider, the LDAP directory). The
 * account is found by the identity (provider, subject) — never by e-mail alone. A first sign-in
 * whose e-mail belongs to an existing account is linked only when `mergeByEmail` (OAuth:
 * OAUTH_MERGE_ACCOUNTS_BY_EMAIL=true and the provider asserted `email_verified`); otherwise it is
 * refused. New accounts go through `provisionUser` (the one first-admin rule). Everything — account,
 * identity, role change, group sync, the session, the session limit and the audit trail — happens in
 * one transaction.
 */
type ManagedRole = 'admin' | 'user' | null;

export interface ExternalIdentity {
  /** identities.provider: oidc | google | microsoft | github | ldap */
  provider: string;
  /** Audit method: oidc | ldap */
  method: 'oidc' | 'ldap';
  subject: string;
  email: string;
  name: string;
  picture: string | null;
  /**
   * Role decided by the source at this sign-in, or null (the source does not manage roles). A
   * function gets the account's current role (null for a new account).
   */
  role: ManagedRole | ((current: User['role'] | null) => ManagedRole);
  /** Group names for membership sync, or null (no sync). */
  groups: string[] | null;
  createGroups: boolean;
  mergeByEmail: boolean;
  /** Whether an unknown person gets an account (the first account of a fresh install always does). */
  allowSignup: boolean;
  sessionKind: string;
  /** Concurrent sessions of this kind per user; the oldest are revoked beyond it. */
  maxSessions: number | null;
  /** The provider's session id (`sid`), for back-channel logout. */
  idpSid: string | null;
}

export interface SignInResult {
  user: User;
  /** null when no session was requested. */
  token: string | null;
  sessionId: string | null;
  created: boolean;
}

function roleFor(x: ExternalIdentity, current: User['role'] | null): ManagedRole {
  return typeof x.role === 'function' ? x.role(current) : x.role;
}

async function signInOnce(ctx: AppContext, req: FastifyRequest, x: ExternalIdentity, withSession: boolean) {
  return ctx.db.transaction().execute(async (trx: Trx) => {
    const linked = await trx
      .selectFrom('identities')
      .innerJoin('users', 'users.id', 'identities.user_id')
      .selectAll('users')
      .where('identities.provider', '=', x.provider)
      .where('identities.subject', '=', x.subject)
      .executeTakeFirst();
    let user: User;
    let created = false;
    if (linked) user = linked;
    else {
      const byEmail = await trx.selectFrom('users').selectAll().where('email', '=', x.email).executeTakeFirst();
      if (byEmail) {
        if (!x.mergeByEmail)
          throw new AppError(
            'oauth_account_exists',
            x.method === 'ldap'
              ? 'An account with this e-mail already exists and is not linked to this directory account; ask an administrator'
              : 'An account with this e-mail already exists and is not linked to this provider; ask an administrator',
          );
        await trx
          .insertInto('identities')
          .values({
            id: randomUUID(),
            user_id: byEmail.id,
            provider: x.provider,
            subject: x.subject,
            created_at: Date.now(),
          })
          .execute();
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'identity.linked',
          actorId: byEmail.id,
          subjectId: byEmail.id,
          resourceType: 'user',
          resourceId: byEmail.id,
          details: { provider: x.provider, subject: x.subject, by: 'verified_email' },
        });
        user = byEmail;
      } else {
        user = await provisionUser(trx, {
          email: x.email,
          name: x.name,
          passwordHash: null,
          provider: x.provider,
          subject: x.subject,
          roleIfNotFirst: x.allowSignup ? (roleFor(x, null) ?? ctx.config.DEFAULT_USER_ROLE) : null,
        });
        if (x.picture) {
          // The one profile-image validator; a picture it refuses is simply not used.
          let ok = true;
          try {
            validateProfileImage(ctx.config, x.picture);
          } catch {
            ok = false;
          }
          if (ok) {
            await setProfileImage(trx, ctx.config, user.id, x.picture);
            user = (await trx.selectFrom('users').selectAll().where('id', '=', user.id).executeTakeFirst()) ?? user;
          }
        }
        created = true;
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'user.created',
          actorId: null,
          subjectId: user.id,
          resourceType: 'user',
          resourceId: user.id,
          after: { email: user.email, name: user.name, role: user.role },
          details: { via: x.method, provider: x.provider },
        });
      }
    }
    if (!user.active) throw new AppError('account_inactive', 'This account is deactivated');

    let userChanged = false;
    const wanted = roleFor(x, user.role);
    if (wanted !== null && user.role !== wanted) {
      const demotesAdmin = user.role === 'admin';
      if (demotesAdmin && (await otherActiveAdmins(trx, ctx.dbKind, user.id)) === 0) {
        ctx.log.warn(
          { user_id: user.id, provider: x.provider },
          'The identity provider no longer makes this user an admin, but they are the last active admin: role kept',
        );
        await ctx.audit.record(trx, {
          action: 'user.role_change_refused',
          actorId: null,
          subjectId: user.id,
          resourceType: 'user',
          resourceId: user.id,
          result: 'failure',
          before: { role: user.role },
          after: { role: wanted },
          details: { via: x.provider, reason: 'last_admin' },
        });
      } else {
        await trx
          .updateTable('users')
          .set({ role: wanted, updated_at: Date.now() })
          .where('id', '=', user.id)
          .execute();
        const revoked = await ctx.sessions.revokeAllForUser(user.id, 'role_changed', { trx });
        await ctx.audit.record(trx, {
          action: 'user.role_changed',
          actorId: null,
          subjectId: user.id,
          resourceType: 'user',
          resourceId: user.id,
          before: { role: user.role },
          after: { role: wanted },
          details: { via: x.provider, sessions_revoked: revoked },
        });
        user = { ...user, role: wanted };
        userChanged = true;
      }
    }

    let groupsChanged = false;
    if (x.groups !== null) {
      const r = await syncGroupMemberships(ctx, trx, {
        userId: user.id,
        source: `idp:${x.provider}`,
        names: x.groups,
        create: x.createGroups,
      });
      groupsChanged = r.added.length + r.removed.length > 0;
    }

    let opened: { token: string; sessionId: string; trimmed: number } | null = null;
    if (withSession) opened = await openSession(ctx, req, trx, user, x, created);
    return {
      user,
      token: opened?.token ?? null,
      sessionId: opened?.sessionId ?? null,
      created,
      userChanged: userChanged || (opened?.trimmed ?? 0) > 0,
      groupsChanged,
    };
  });
}

/** Creates the HridaAI session of an external sign-in (with its IdP link and the session limit). */
async function openSession(
  ctx: AppContext,
  req: FastifyRequest,
  trx: Trx,
  user: User,
  x: Pick<ExternalIdentity, 'provider' | 'method' | 'subject' | 'sessionKind' | 'maxSessions' | 'idpSid'>,
  created: boolean,
): Promise<{ token: string; sessionId: string; trimmed: number }> {
  const ua = req.headers['user-agent'];
  const { token, session } = await ctx.sessions.create(trx, {
    userId: user.id,
    kind: x.sessionKind,
    ip: req.ip ?? null,
    userAgent: typeof ua === 'string' ? ua : null,
  });
  await trx
    .insertInto('sso_sessions')
    .values({
      session_id: session.id,
      user_id: user.id,
      provider: x.provider,
      subject: x.subject,
      idp_sid: x.idpSid,
      created_at: session.created_at,
    })
    .execute();

  let trimmed = 0;
  if (x.maxSessions !== null) {
    const now = Date.now();
    const active = await trx
      .selectFrom('sessions')
      .select('id')
      .where('user_id', '=', user.id)
      .where('kind', '=', x.sessionKind)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    const excess = active.filter((s) => s.id !== session.id).slice(Math.max(0, x.maxSessions - 1));
    for (const s of excess) if (await ctx.sessions.revoke(s.id, 'session_limit', { trx })) trimmed++;
  }

  await trx.updateTable('users').set({ last_active_at: Date.now() }).where('id', '=', user.id).execute();
  await ctx.audit.recordAuth(trx, {
    action: created ? 'auth.signup' : 'auth.signin',
    result: 'success',
    method: x.method,
    userId: user.id,
    email: user.email,
    ...authFromRequest(req),
  });
  return { token, sessionId: session.id, trimmed };
}

export interface SignInOptions {
  /** false: resolve the account (and apply role and groups) but open no session yet (2FA first). */
  session?: boolean;
}

export async function signInExternal(
  ctx: AppContext,
  req: FastifyRequest,
  x: ExternalIdentity,
  opts: SignInOptions = {},
): Promise<SignInResult> {
  const withSession = opts.session !== false;
  let r;
  try {
    r = await signInOnce(ctx, req, x, withSession);
  } catch (e) {
    // Two first sign-ins of the same person at once: the loser finds the winner's account.
    if (e instanceof AppError && e.code === 'email_taken') r = await signInOnce(ctx, req, x, withSession);
    else throw e;
  }
  if (r.userChanged) await ctx.sessions.afterUserChange(r.user.id);
  if (r.groupsChanged) await apiKeyService(ctx).invalidate({ user: r.user.id });
  return { user: r.user, token: r.token, sessionId: r.sessionId, created: r.created };
}

/** Opens the session of an external sign-in whose account was resolved earlier (after a 2FA check). */
export async function openExternalSession(
  ctx: AppContext,
  req: FastifyRequest,
  user: User,
  x: Pick<ExternalIdentity, 'provider' | 'method' | 'subject' | 'sessionKind' | 'maxSessions' | 'idpSid'>,
  created = false,
): Promise<{ token: string; sessionId: string }> {
  const r = await ctx.db.transaction().execute((trx) => openSession(ctx, req, trx, user, x, created));
  if (r.trimmed) await ctx.sessions.afterUserChange(user.id);
  return r;
}

/** Audits a refused external sign-in (always written, whatever the audit filters) and rethrows. */
export function auditSignInFailure(
  ctx: AppContext,
  req: FastifyRequest,
  method: string,
  e: unknown,
  who: { email?: string | null; userId?: string | null } = {},
): void {
  ctx.audit.auth({
    action: 'auth.signin',
    result: 'failure',
    method,
    reason: e instanceof AppError ? e.code : 'internal_error',
    email: who.email ?? null,
    userId: who.userId ?? null,
    ...authFromRequest(req),
  });
}
