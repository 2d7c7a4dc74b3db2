import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../../config/index.js';
import { ConfigError, ConfigErrors } from '../../config/index.js';
import type { AppContext, AuthContext } from '../../context.js';
import type { Db, Trx } from '../../platform/db/index.js';
import type { User } from '../../platform/db/types.js';
import { authFromRequest, fromRequest } from '../../platform/audit/index.js';
import { AppError } from '../../platform/http/errors.js';
import { aadFor, createSecretBox, type SecretBox } from '../../platform/security/secretbox.js';
import { signToken, verifyToken } from '../../platform/security/tokens.js';
import { verifyPassword } from '../../platform/security/passwords.js';
import { isRepeatedFailure } from '../api-keys/service.js';
import { DatabaseAttemptStore, RedisAttemptStore } from './limiter-store.js';
import { accountSubject, ipSubject, LoginLimiter, policyFromConfig, type Attempt } from './limiter.js';
import {
  matchTotp,
  newRecoveryCodes,
  newTotpSecret,
  normaliseRecoveryCode,
  otpauthUri,
  recoveryCodeHashes,
  hashRecoveryCode,
} from './totp.js';
import './tables.js';

/** The JWT `typ` of a sign-in challenge token: accepted by `/api/v1/auths/2fa/verify` and nowhere else. */
export const CHALLENGE_TYP = 'hridaai-2fa-challenge+jwt';

export type Restriction = 'password_change_required' | 'two_factor_enrolment_required';

/**
 * Routes a restricted session may still call (`METHOD url-pattern`). Everything else answers 403
 * with the restriction's code. Deny by default: a new route is not reachable in these states.
 */
const ALWAYS_ALLOWED = new Set(['GET /api/v1/auths/', 'POST /api/v1/auths/signout']);
const ALLOWED_WHEN: Record<Restriction, Set<string>> = {
  password_change_required: new Set(['POST /api/v1/auths/update/password']),
  two_factor_enrolment_required: new Set([
    'GET /api/v1/auths/2fa',
    'POST /api/v1/auths/2fa/setup',
    'POST /api/v1/auths/2fa/enable',
  ]),
};
const RESTRICTION_MESSAGE: Record<Restriction, string> = {
  password_change_required: 'You must change your password before you continue (POST /api/v1/auths/update/password)',
  two_factor_enrolment_required:
    'Two-factor authentication is required on this server: set it up before you continue (POST /api/v1/auths/2fa/setup)',
};

/**
 * Session kinds that come from single sign-on. With ENFORCE_2FA they are exempt: HridaAI never
 * sees a password there and the identity provider is responsible for MFA. Every other kind
 * (password, ldap, and any kind added later) is subject to enforcement.
 */
export const SSO_SESSION_KINDS: ReadonlySet<string> = new Set([
  'oidc',
  'oauth',
  'sso',
  'trusted_header',
  'trusted-header',
]);

/** `oidc`, `oidc:<provider>`, … are single sign-on; `password`, `ldap` and anything else are not. */
export function isSsoSessionKind(kind: string): boolean {
  return SSO_SESSION_KINDS.has(kind.split(':', 1)[0]!);
}

/** The same answer for an unknown account, a wrong password and a locked account. */
export const SIGNIN_FAILED_MESSAGE =
  'Incorrect e-mail or password — or sign-in is paused after too many failed attempts: wait a few minutes and try again, or ask an administrator';

interface SecurityFlags {
  totpEnabled: boolean;
  mustChangePassword: boolean;
}

const COL_SECRET = { table: 'user_security', column: 'totp_secret_enc' } as const;
const COL_PENDING = { table: 'user_security', column: 'totp_pending_enc' } as const;
/** An enrolment must be confirmed within this time after setup. */
const PENDING_TTL_MS = 15 * 60_000;

/**
 * Refuses unsafe combinations before anything is opened: POLICY_NO_AUTH_DEFAULT=allow_all with
 * ENV=prod, ENFORCE_2FA without ENABLE_2FA. Logs a loud warning for the no-auth policies.
 */
export function checkAccountSecurityConfig(config: Config, log: Logger): void {
  const errors: ConfigError[] = [];
  if (config.POLICY_NO_AUTH_DEFAULT === 'allow_all' && config.ENV === 'prod')
    errors.push(
      new ConfigError(
        'POLICY_NO_AUTH_DEFAULT',
        'allow_all lets anyone who can reach the server act as the admin; it is refused with ENV=prod (use deny, or view_only for a read-only demo)',
      ),
    );
  if (config.ENFORCE_2FA && !config.ENABLE_2FA)
    errors.push(new ConfigError('ENFORCE_2FA', 'requires ENABLE_2FA=true (users could not enrol)'));
  if (errors.length) throw new ConfigErrors(errors);
  if (config.POLICY_NO_AUTH_DEFAULT === 'allow_all')
    log.error(
      '!!! POLICY_NO_AUTH_DEFAULT=allow_all: NO AUTHENTICATION. Anyone who can reach this server acts as the admin account. Use only on a trusted single-user machine or an isolated demo. !!!',
    );
  else if (config.POLICY_NO_AUTH_DEFAULT === 'view_only')
    log.warn(
      'POLICY_NO_AUTH_DEFAULT=view_only: anonymous visitors can read every route marked viewable, as the admin account.',
    );
}

/**
 * Account security: two-factor authentication, the login limiter, forced password change and the
 * no-authentication policy. One instance per app, at `ctx.accountSecurity`.
 */
export class AccountSecurity {
  /** The clock for TOTP steps and the limiter (tests set a fixed one). */
  clock: () => number = Date.now;
  private _limiter: LoginLimiter | null = null;
  private _box: SecretBox | null = null;
  private flagsCache = new Map<string, { flags: SecurityFlags; at: number }>();
  private adminCache: { user: User | null; at: number } | null = null;

  constructor(private readonly getCtx: () => AppContext) {}

  private get ctx(): AppContext {
    return this.getCtx();
  }
  private get db(): Db {
    return this.ctx.db;
  }
  private get config(): Config {
    return this.ctx.config;
  }

  /** Brute-force protection shared by every sign-in path (see limiter.ts for how to use it). */
  get limiter(): LoginLimiter {
    if (!this._limiter) {
      const { redis, db, config } = this.ctx;
      const store = redis ? new RedisAttemptStore(redis.cmd, redis.prefix) : new DatabaseAttemptStore(db);
      this._limiter = new LoginLimiter(store, policyFromConfig(config), () => this.clock());
    }
    return this._limiter;
  }

  get box(): SecretBox {
    if (!this._box) this._box = createSecretBox(this.ctx.keyring);
    return this._box;
  }

  /** Caches follow every per-user change, on this instance and (through Redis) on the others. */
  start(): void {
    this.ctx.sessions.onUserChange((userId) => {
      this.flagsCache.delete(userId);
      this.adminCache = null;
    });
    void this.limiter;
  }

  /** Drops cached state of a user here and on every instance. Call after the change commits. */
  async changed(userId: string): Promise<void> {
    this.flagsCache.delete(userId);
    this.adminCache = null;
    await this.ctx.sessions.afterUserChange(userId);
  }

  // ---- per-user state

  /** A user's 2FA and forced-change state; `fresh` skips the per-instance cache (sign-in decisions). */
  async flags(userId: string, opts: { fresh?: boolean } = {}): Promise<SecurityFlags> {
    const now = Date.now();
    const hit = this.flagsCache.get(userId);
    if (!opts.fresh && hit && now - hit.at <= this.config.SESSION_CACHE_TTL_MS) return hit.flags;
    const row = await this.db
      .selectFrom('user_security')
      .select(['totp_secret_enc', 'must_change_password'])
      .where('user_id', '=', userId)
      .executeTakeFirst();
    const flags = { totpEnabled: !!row?.totp_secret_enc, mustChangePassword: row?.must_change_password === 1 };
    if (this.flagsCache.size >= 10_000) this.flagsCache.delete(this.flagsCache.keys().next().value!);
    this.flagsCache.set(userId, { flags, at: now });
    return flags;
  }

  /** The restrictions on a session: forced password change, 2FA enrolment required. */
  async restrictionsFor(auth: AuthContext): Promise<Restriction[]> {
    if (auth.kind !== 'session' || !auth.session) return [];
    // An admin impersonating the user passed their own checks; the user's state is theirs to fix.
    if (auth.actorId !== auth.user.id) return [];
    const f = await this.flags(auth.user.id);
    const out: Restriction[] = [];
    const canChange = this.config.ENABLE_PASSWORD_AUTH && this.config.ENABLE_PASSWORD_CHANGE_FORM;
    if (f.mustChangePassword && canChange && auth.session.kind === 'password') out.push('password_change_required');
    if (this.config.ENFORCE_2FA && !f.totpEnabled && !isSsoSessionKind(auth.session.kind))
      out.push('two_factor_enrolment_required');
    return out;
  }

  /**
   * Called by authenticate for every authenticated request: a restricted session reaches only the
   * routes its restriction allows (plus reading the account and signing out).
   */
  async enforce(req: FastifyRequest, auth: AuthContext): Promise<void> {
    const r = await this.restrictionsFor(auth);
    restrictionsOf.set(auth, r);
    if (r.length === 0) return;
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const key = `${method} ${req.routeOptions.url}`;
    if (ALWAYS_ALLOWED.has(key) || r.some((x) => ALLOWED_WHEN[x].has(key))) return;
    throw new AppError(r[0]!, RESTRICTION_MESSAGE[r[0]!]);
  }

  // ---- no-auth policy

  /**
   * POLICY_NO_AUTH_DEFAULT for a request without credentials: `deny` → null (401);
   * `view_only` → the primary admin, only for GET/HEAD on a route declared `viewable`;
   * `allow_all` → the primary admin on every route. Null when there is no active admin yet.
   */
  async anonymousAuth(req: FastifyRequest): Promise<AuthContext | null> {
    const policy = this.config.POLICY_NO_AUTH_DEFAULT;
    if (policy === 'deny') return null;
    if (policy === 'view_only') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return null;
      if (req.routeOptions.config.viewable !== true) return null;
    }
    const admin = await this.primaryAdmin();
    if (!admin) return null;
    // viaCookie: the browser's network position is the credential, so the CSRF origin check applies.
    return { kind: 'anonymous', user: admin, session: null, actorId: admin.id, viaCookie: true, anonymous: policy };
  }

  /** The first admin account (or, if it is gone, the oldest active admin). */
  async primaryAdmin(): Promise<User | null> {
    const now = Date.now();
    if (this.adminCache && now - this.adminCache.at <= Math.max(this.config.SESSION_CACHE_TTL_MS, 1000))
      return this.adminCache.user;
    const first = await this.db
      .selectFrom('app_state')
      .select('value')
      .where('key', '=', 'first_admin')
      .executeTakeFirst();
    let user = first
      ? await this.db
          .selectFrom('users')
          .selectAll()
          .where('id', '=', first.value)
          .where('role', '=', 'admin')
          .where('active', '=', 1)
          .executeTakeFirst()
      : undefined;
    user ??= await this.db
      .selectFrom('users')
      .selectAll()
      .where('role', '=', 'admin')
      .where('active', '=', 1)
      .orderBy('created_at')
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    // Only a found admin is cached: the first sign-up must take effect at once.
    this.adminCache = user ? { user, at: now } : null;
    return user ?? null;
  }

  // ---- sign-in

  /** Audits the lockouts an attempt caused. */
  auditLockouts(
    req: FastifyRequest,
    a: { lockedNow: { kind: string; label: string; userId: string | null }[] },
    method: string,
  ) {
    for (const s of a.lockedNow)
      this.ctx.audit.auth({
        action: 'auth.lockout',
        result: 'failure',
        method,
        userId: s.userId,
        email: s.kind === 'account' ? s.label : null,
        reason: s.kind === 'account' ? 'account_locked' : `address_locked ${s.label}`,
        ...authFromRequest(req),
      });
  }

  /**
   * An API-key authentication failed: a key never seen before (`api_key_invalid`, not a repeat
   * from the key verifier's negative cache) counts as one failure of the client address. Valid
   * keys are never slowed down; rethrows the original error.
   */
  async apiKeyFailed(req: FastifyRequest, e: unknown): Promise<never> {
    if (e instanceof AppError && e.code === 'api_key_invalid' && !isRepeatedFailure(e)) {
      const r = await this.limiter.fail([ipSubject(req.ip)]);
      this.auditLockouts(req, r, 'api_key');
    }
    throw e;
  }

  /**
   * After a correct first factor (password, LDAP): when the account uses 2FA, the attempt is
   * refunded (not cleared: code failures keep counting on the account) and a challenge is
   * returned instead of a session. Otherwise the attempt succeeds and the caller creates the
   * session; `notices` tell the client what the session will be restricted to.
   */
  async afterFirstFactor(
    req: FastifyRequest,
    user: User,
    attempt: Attempt,
    kind: string,
  ): Promise<
    | { challenge: { two_factor_required: true; challenge_token: string; expires_at: number; methods: string[] } }
    | { challenge: null; notices: Record<string, true> }
  > {
    const f = await this.flags(user.id, { fresh: true });
    if (f.totpEnabled) {
      await this.limiter.release(attempt);
      const { token, expiresAt } = await this.issueChallenge(user.id, kind, req.ip ?? null);
      return {
        challenge: {
          two_factor_required: true,
          challenge_token: token,
          expires_at: expiresAt,
          methods: ['totp', 'recovery_code'],
        },
      };
    }
    await this.limiter.succeed(attempt);
    return { challenge: null, notices: this.notices(f, kind) };
  }

  /** Flags added to a sign-in answer so the client can go straight to the right form. */
  notices(f: SecurityFlags, kind: string): Record<string, true> {
    const out: Record<string, true> = {};
    if (f.mustChangePassword && kind === 'password' && this.config.ENABLE_PASSWORD_CHANGE_FORM)
      out.password_change_required = true;
    if (this.config.ENFORCE_2FA && !f.totpEnabled && !isSsoSessionKind(kind)) out.two_factor_enrolment_required = true;
    return out;
  }

  async issueChallenge(userId: string, kind: string, ip: string | null): Promise<{ token: string; expiresAt: number }> {
    const now = Date.now();
    const ttl = this.config.TWO_FACTOR_CHALLENGE_TTL;
    const id = randomUUID();
    // Expired challenges are removed as new ones are made.
    await this.db
      .deleteFrom('two_factor_challenges')
      .where('expires_at', '<', now - 60_000)
      .execute();
    await this.db
      .insertInto('two_factor_challenges')
      .values({ id, user_id: userId, kind, created_at: now, expires_at: now + ttl, attempts: 0, consumed_at: null, ip })
      .execute();
    const token = await signToken(this.ctx.keyring, { sub: userId, sid: id }, ttl, CHALLENGE_TYP, now);
    return { token, expiresAt: now + ttl };
  }

  /**
   * Second step of a sign-in: the challenge token (its own `typ`; a session token is refused) and
   * a TOTP code or a recovery code. Each try spends one of the challenge's attempts and counts on
   * the login limiter. Returns the user and the session kind to create.
   */
  async verifyChallenge(
    req: FastifyRequest,
    input: { challengeToken: string; code?: string; recoveryCode?: string },
  ): Promise<{ user: User; kind: string; method: 'totp' | 'recovery_code'; remainingRecoveryCodes: number | null }> {
    const invalid = () =>
      new AppError('two_factor_challenge_invalid', 'This sign-in has expired or was used up; sign in again');
    const v = await verifyToken(this.ctx.keyring, input.challengeToken, { requireExp: true, typ: CHALLENGE_TYP });
    if (!v.ok) throw invalid();
    const now = Date.now();
    const spent = await this.db
      .updateTable('two_factor_challenges')
      .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
      .where('id', '=', v.claims.sid)
      .where('user_id', '=', v.claims.sub)
      .where('consumed_at', 'is', null)
      .where('expires_at', '>', now)
      .where('attempts', '<', this.config.TWO_FACTOR_MAX_ATTEMPTS)
      .executeTakeFirst();
    if (Number(spent.numUpdatedRows) !== 1) throw invalid();
    const challenge = await this.db
      .selectFrom('two_factor_challenges')
      .select(['kind', 'attempts'])
      .where('id', '=', v.claims.sid)
      .executeTakeFirstOrThrow();
    const user = await this.db.selectFrom('users').selectAll().where('id', '=', v.claims.sub).executeTakeFirst();
    if (!user || !user.active) throw invalid();

    const method = input.recoveryCode !== undefined ? 'recovery_code' : 'totp';
    const attempt = await this.limiter.attempt([accountSubject(user.email, user.id), ipSubject(req.ip)]);
    this.auditLockouts(req, attempt, method);
    const fail = (reason: string): never => {
      this.ctx.audit.auth({
        action: 'auth.2fa',
        result: 'failure',
        method,
        userId: user.id,
        email: user.email,
        reason,
        ...authFromRequest(req),
      });
      if (!attempt.allowed) throw tooManyAttempts(attempt.retryAt, this.clock());
      throw new AppError('two_factor_code_invalid', 'The code is not correct', {
        attempts_left: Math.max(this.config.TWO_FACTOR_MAX_ATTEMPTS - Number(challenge.attempts), 0),
      });
    };
    if (!attempt.allowed) fail(attempt.reason === 'locked' ? 'locked' : 'backoff');

    let ok: boolean;
    if (method === 'recovery_code') ok = await this.useRecoveryCode(user.id, input.recoveryCode ?? '');
    else ok = await this.useTotp(user.id, input.code ?? '');
    if (!ok) fail(method === 'totp' ? 'wrong_totp_code' : 'wrong_recovery_code');

    const consumed = await this.db
      .updateTable('two_factor_challenges')
      .set({ consumed_at: now })
      .where('id', '=', v.claims.sid)
      .where('consumed_at', 'is', null)
      .executeTakeFirst();
    if (Number(consumed.numUpdatedRows) !== 1) throw invalid();
    await this.limiter.succeed(attempt);
    const remaining =
      method === 'recovery_code'
        ? Number(
            (
              await this.db
                .selectFrom('recovery_codes')
                .select((eb) => eb.fn.countAll<number>().as('n'))
                .where('user_id', '=', user.id)
                .where('used_at', 'is', null)
                .executeTakeFirstOrThrow()
            ).n,
          )
        : null;
    return { user, kind: challenge.kind, method, remainingRecoveryCodes: remaining };
  }

  // ---- TOTP and recovery codes

  private async securityRow(userId: string, db: Db | Trx = this.db) {
    return db.selectFrom('user_security').selectAll().where('user_id', '=', userId).executeTakeFirst();
  }

  /** Makes sure the user's row exists (inside `trx`). */
  private async ensureRow(trx: Db | Trx, userId: string): Promise<void> {
    await trx
      .insertInto('user_security')
      .values({ user_id: userId, totp_last_step: 0, must_change_password: 0, updated_at: Date.now() })
      .onConflict((oc) => oc.column('user_id').doNothing())
      .execute();
  }

  /**
   * Accepts a TOTP code at most once: only for a time step later than the last accepted one, and
   * the step is recorded with a conditional update, so two requests with the same code cannot
   * both pass.
   */
  async useTotp(userId: string, code: string): Promise<boolean> {
    const row = await this.securityRow(userId);
    if (!row?.totp_secret_enc) return false;
    const secret = this.box.open(row.totp_secret_enc, aadFor(COL_SECRET, userId));
    const step = matchTotp(code, secret, this.clock());
    if (step === null || step <= Number(row.totp_last_step)) return false;
    const r = await this.db
      .updateTable('user_security')
      .set({ totp_last_step: step, updated_at: Date.now() })
      .where('user_id', '=', userId)
      .where('totp_last_step', '<', step)
      .where('totp_secret_enc', '=', row.totp_secret_enc)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Spends one recovery code (single use, also under concurrency). */
  async useRecoveryCode(userId: string, input: string): Promise<boolean> {
    const canonical = normaliseRecoveryCode(input);
    if (!canonical) return false;
    const row = await this.db
      .selectFrom('recovery_codes')
      .select('id')
      .where('user_id', '=', userId)
      .where('code_hash', 'in', recoveryCodeHashes(this.ctx.keyring, canonical))
      .where('used_at', 'is', null)
      .executeTakeFirst();
    if (!row) return false;
    const r = await this.db
      .updateTable('recovery_codes')
      .set({ used_at: Date.now() })
      .where('id', '=', row.id)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async status(userId: string) {
    const row = await this.securityRow(userId);
    const { n } = await this.db
      .selectFrom('recovery_codes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .executeTakeFirstOrThrow();
    return {
      available: this.config.ENABLE_2FA,
      enforced: this.config.ENFORCE_2FA,
      enabled: !!row?.totp_secret_enc,
      enabled_at: row?.totp_enabled_at ?? null,
      pending_setup: !row?.totp_secret_enc && !!row?.totp_pending_enc,
      recovery_codes_remaining: row?.totp_secret_enc ? Number(n) : 0,
    };
  }

  /** Starts an enrolment: a new secret, sealed, waiting for its first code. */
  async setup(user: User): Promise<{ secret: string; otpauth_uri: string; expires_at: number }> {
    if (!this.config.ENABLE_2FA) throw twoFactorDisabled();
    const row = await this.securityRow(user.id);
    if (row?.totp_secret_enc)
      throw new AppError('two_factor_already_enabled', 'Two-factor authentication is already on for this account');
    const secret = newTotpSecret();
    const now = Date.now();
    await this.ensureRow(this.db, user.id);
    await this.db
      .updateTable('user_security')
      .set({
        totp_pending_enc: this.box.seal(secret, aadFor(COL_PENDING, user.id)),
        totp_pending_at: now,
        updated_at: now,
      })
      .where('user_id', '=', user.id)
      .where('totp_secret_enc', 'is', null)
      .execute();
    return {
      secret,
      otpauth_uri: otpauthUri(secret, user.email, this.config.TWO_FACTOR_ISSUER ?? 'HridaAI'),
      expires_at: now + PENDING_TTL_MS,
    };
  }

  /** Confirms an enrolment with a first code; returns the ten recovery codes (shown once). */
  async enable(req: FastifyRequest, user: User, code: string): Promise<string[]> {
    if (!this.config.ENABLE_2FA) throw twoFactorDisabled();
    const row = await this.securityRow(user.id);
    if (row?.totp_secret_enc)
      throw new AppError('two_factor_already_enabled', 'Two-factor authentication is already on for this account');
    if (!row?.totp_pending_enc || !row.totp_pending_at || Date.now() - row.totp_pending_at > PENDING_TTL_MS)
      throw new AppError('two_factor_setup_required', 'Start the set-up first (POST /api/v1/auths/2fa/setup)');
    const secret = this.box.open(row.totp_pending_enc, aadFor(COL_PENDING, user.id));
    const step = matchTotp(code, secret, this.clock());
    if (step === null) throw new AppError('two_factor_code_invalid', 'The code is not correct');
    const codes = newRecoveryCodes();
    const now = Date.now();
    await this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('user_security')
        .set({
          totp_secret_enc: this.box.seal(secret, aadFor(COL_SECRET, user.id)),
          totp_enabled_at: now,
          totp_pending_enc: null,
          totp_pending_at: null,
          totp_last_step: step,
          updated_at: now,
        })
        .where('user_id', '=', user.id)
        .where('totp_pending_enc', '=', row.totp_pending_enc!)
        .where('totp_secret_enc', 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1)
        throw new AppError('two_factor_setup_required', 'The set-up changed meanwhile; start it again');
      await this.replaceRecoveryCodes(trx, user.id, codes, now);
      await this.ctx.audit.record(trx, {
        ...fromRequest(req),
        action: 'two_factor.enabled',
        resourceType: 'user',
        resourceId: user.id,
        details: { method: 'totp', recovery_codes: codes.length },
      });
    });
    await this.changed(user.id);
    return codes;
  }

  private async replaceRecoveryCodes(trx: Trx, userId: string, codes: string[], now: number) {
    await trx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
    const root = this.ctx.keyring.current;
    await trx
      .insertInto('recovery_codes')
      .values(
        codes.map((c) => ({
          id: randomUUID(),
          user_id: userId,
          code_hash: hashRecoveryCode(root, normaliseRecoveryCode(c)!),
          kid: root.kid,
          created_at: now,
          used_at: null,
        })),
      )
      .execute();
  }

  /** Checks a current TOTP code (or, when allowed, a recovery code) of a signed-in user; counted by the limiter. */
  async confirmSecondFactor(
    req: FastifyRequest,
    user: User,
    input: { code?: string; recoveryCode?: string },
    allowRecovery: boolean,
  ): Promise<void> {
    const method = input.recoveryCode !== undefined && allowRecovery ? 'recovery_code' : 'totp';
    const attempt = await this.limiter.attempt([accountSubject(user.email, user.id), ipSubject(req.ip)]);
    this.auditLockouts(req, attempt, method);
    let ok = false;
    if (attempt.allowed)
      ok =
        method === 'recovery_code'
          ? await this.useRecoveryCode(user.id, input.recoveryCode ?? '')
          : await this.useTotp(user.id, input.code ?? '');
    if (!ok) {
      this.ctx.audit.auth({
        action: 'auth.2fa',
        result: 'failure',
        method,
        userId: user.id,
        email: user.email,
        reason: attempt.allowed ? 'wrong_code' : 'locked',
        ...authFromRequest(req),
      });
      if (!attempt.allowed) throw tooManyAttempts(attempt.retryAt, this.clock());
      throw new AppError('two_factor_code_invalid', 'The code is not correct');
    }
    await this.limiter.succeed(attempt);
  }

  /** Checks the current password of an account that has one (re-authentication for sensitive changes). */
  async confirmPassword(user: User, password: string | undefined): Promise<void> {
    const row = await this.db.selectFrom('users').select('password_hash').where('id', '=', user.id).executeTakeFirst();
    if (!row?.password_hash) return;
    const ok = await verifyPassword(password ?? '', row.password_hash);
    if (!ok) throw new AppError('invalid_credentials', 'The current password is incorrect');
  }

  /** Turns 2FA off for a user (by themselves or by an admin). */
  async removeTwoFactor(trx: Trx, userId: string): Promise<boolean> {
    const r = await trx
      .updateTable('user_security')
      .set({
        totp_secret_enc: null,
        totp_enabled_at: null,
        totp_pending_enc: null,
        totp_pending_at: null,
        updated_at: Date.now(),
      })
      .where('user_id', '=', userId)
      .where((eb) => eb.or([eb('totp_secret_enc', 'is not', null), eb('totp_pending_enc', 'is not', null)]))
      .executeTakeFirst();
    await trx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
    await trx.deleteFrom('two_factor_challenges').where('user_id', '=', userId).execute();
    return Number(r.numUpdatedRows) > 0;
  }

  async regenerateRecoveryCodes(req: FastifyRequest, user: User): Promise<string[]> {
    const codes = newRecoveryCodes();
    await this.db.transaction().execute(async (trx) => {
      await this.replaceRecoveryCodes(trx, user.id, codes, Date.now());
      await this.ctx.audit.record(trx, {
        ...fromRequest(req),
        action: 'two_factor.recovery_codes_regenerated',
        resourceType: 'user',
        resourceId: user.id,
        details: { recovery_codes: codes.length },
      });
    });
    return codes;
  }

  // ---- forced password change

  /** Sets or clears the forced-password-change flag (inside the caller's transaction). */
  async setMustChangePassword(trx: Trx, userId: string, required: boolean, resetBy?: string | null): Promise<void> {
    await this.ensureRow(trx, userId);
    await trx
      .updateTable('user_security')
      .set({
        must_change_password: required ? 1 : 0,
        ...(resetBy !== undefined ? { password_reset_by: resetBy, password_reset_at: Date.now() } : {}),
        updated_at: Date.now(),
      })
      .where('user_id', '=', userId)
      .execute();
  }

  /**
   * Before a user changes their own password: when the change is forced, the new password must
   * differ from the temporary one.
   */
  async checkNewPassword(userId: string, newPassword: string, currentHash: string): Promise<void> {
    const f = await this.flags(userId);
    if (f.mustChangePassword && (await verifyPassword(newPassword, currentHash)))
      throw new AppError('password_reuse', 'Choose a new password, different from the temporary one');
  }

  /**
   * After a password change (by the user or an admin; inside the transaction): the requirement is
   * met, and sign-ins half-way through (open 2FA challenges) made with the old password end.
   */
  async passwordChanged(trx: Trx, userId: string): Promise<void> {
    await trx.deleteFrom('two_factor_challenges').where('user_id', '=', userId).execute();
    await trx
      .updateTable('user_security')
      .set({ must_change_password: 0, updated_at: Date.now() })
      .where('user_id', '=', userId)
      .where('must_change_password', '=', 1)
      .execute();
    this.flagsCache.delete(userId);
  }
}

const restrictionsOf = new WeakMap<AuthContext, Restriction[]>();

/** The restrictions found for a request's auth by `enforce` (empty when none). */
export function restrictionsOfAuth(auth: AuthContext | null): Restriction[] {
  return auth ? (restrictionsOf.get(auth) ?? []) : [];
}

function twoFactorDisabled() {
  return new AppError('two_factor_disabled', 'Two-factor authentication is turned off on this server (ENABLE_2FA)');
}

export function tooManyAttempts(retryAt: number | null, now = Date.now()): AppError {
  const secs = retryAt ? Math.max(1, Math.ceil((retryAt - now) / 1000)) : null;
  return new AppError(
    'rate_limited',
    secs
      ? `Too many failed attempts; try again in ${secs >= 120 ? `${Math.ceil(secs / 60)} minutes` : `${secs} seconds`}`
      : 'Too many failed attempts; try again later',
    secs ? { retry_after: secs } : undefined,
  );
}
