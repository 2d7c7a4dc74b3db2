import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../../config/index.js';
import type { Db, Trx } from '../../platform/db/index.js';
import type { Session, User } from '../../platform/db/types.js';
import { AppError } from '../../platform/http/errors.js';
import type { Keyring } from '../../platform/security/keyring.js';
import { signToken, verifyToken, type SessionClaims } from '../../platform/security/tokens.js';
import type { RedisHandle } from '../../platform/redis/index.js';

/**
 * Every token belongs to a row in `sessions`; the row decides. Revocation (sign-out, password
 * change, deactivation, deletion, role change) updates the row, so it takes effect at once with
 * no Redis. A small per-instance cache (SESSION_CACHE_TTL_MS) saves the lookup on hot paths; it is
 * dropped at once on this instance and, through Redis when configured, on every other instance.
 */
export interface SessionCheck {
  session: Session;
  user: User;
  claims: SessionClaims;
}

interface CacheEntry {
  session: Session;
  user: User;
  at: number;
}

const CHANNEL = 'session-revocations';
const MAX_CACHE = 10_000;
const TOUCH_EVERY_MS = 60_000;

export class SessionService {
  private cache = new Map<string, CacheEntry>();

  constructor(
    private readonly db: Db,
    private readonly config: Config,
    private readonly keyring: Keyring,
    private readonly redis: RedisHandle | null,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    if (this.redis)
      await this.redis.subscribe(CHANNEL, (m) => {
        try {
          const msg = JSON.parse(m) as { sid?: string; user?: string };
          if (msg.sid) this.cache.delete(msg.sid);
          if (msg.user) this.dropUser(msg.user);
        } catch {
          /* ignore malformed */
        }
      });
  }

  private userListeners: ((userId: string) => void)[] = [];

  /** Other per-user caches (API keys) follow every drop, local or broadcast through Redis. */
  onUserChange(listener: (userId: string) => void): void {
    this.userListeners.push(listener);
  }

  private dropUser(userId: string) {
    for (const [sid, e] of this.cache) if (e.user.id === userId) this.cache.delete(sid);
    for (const l of this.userListeners) l(userId);
  }

  /** Creates a session row and its token. */
  async create(
    db: Db | Trx,
    input: {
      userId: string;
      actorId?: string | null;
      kind: string;
      ip: string | null;
      userAgent: string | null;
      ttlMs?: number | null;
    },
  ): Promise<{ token: string; session: Session }> {
    const now = Date.now();
    const ttl = input.ttlMs === undefined ? this.config.JWT_EXPIRES_IN : input.ttlMs;
    const session: Session = {
      id: randomUUID(),
      user_id: input.userId,
      actor_id: input.actorId ?? null,
      kind: input.kind,
      created_at: now,
      expires_at: ttl === null ? null : now + ttl,
      last_used_at: now,
      revoked_at: null,
      revoked_reason: null,
      ip: input.ip,
      user_agent: input.userAgent ? input.userAgent.slice(0, 512) : null,
    };
    await db.insertInto('sessions').values(session).execute();
    const token = await signToken(
      this.keyring,
      { sub: input.userId, sid: session.id, ...(input.actorId ? { act: input.actorId } : {}) },
      ttl,
      undefined,
      now,
    );
    return { token, session };
  }

  /** Verifies a token and its session. Throws a 401 AppError on any failure. */
  async check(token: string): Promise<SessionCheck> {
    const v = await verifyToken(this.keyring, token, { requireExp: this.config.JWT_EXPIRES_IN !== null });
    if (!v.ok) {
      if (v.reason === 'expired') throw new AppError('token_expired', 'Your session has expired; sign in again');
      throw new AppError('token_invalid', 'Invalid session token');
    }
    const { claims } = v;
    const now = Date.now();
    let entry = this.cache.get(claims.sid);
    if (!entry || now - entry.at > this.config.SESSION_CACHE_TTL_MS) {
      const row = await this.db
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_id')
        .selectAll('sessions')
        .select([
          'users.email as u_email',
          'users.name as u_name',
          'users.role as u_role',
          'users.active as u_active',
          'users.password_hash as u_password_hash',
          'users.profile_image_url as u_profile_image_url',
          'users.settings as u_settings',
          'users.created_at as u_created_at',
          'users.updated_at as u_updated_at',
          'users.last_active_at as u_last_active_at',
        ])
        .where('sessions.id', '=', claims.sid)
        .executeTakeFirst();
      if (!row) {
        this.cache.delete(claims.sid);
        throw new AppError('session_revoked', 'This session has ended; sign in again');
      }
      const session: Session = {
        id: row.id,
        user_id: row.user_id,
        actor_id: row.actor_id,
        kind: row.kind,
        created_at: row.created_at,
        expires_at: row.expires_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
        revoked_reason: row.revoked_reason,
        ip: row.ip,
        user_agent: row.user_agent,
      };
      const user: User = {
        id: row.user_id,
        email: row.u_email,
        name: row.u_name,
        role: row.u_role,
        active: row.u_active,
        password_hash: row.u_password_hash,
        profile_image_url: row.u_profile_image_url,
        settings: row.u_settings,
        created_at: row.u_created_at,
        updated_at: row.u_updated_at,
        last_active_at: row.u_last_active_at,
      };
      entry = { session, user, at: now };
      if (session.revoked_at === null) {
        if (this.cache.size >= MAX_CACHE) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(claims.sid, entry);
      }
      if (session.revoked_at === null && now - session.last_used_at > TOUCH_EVERY_MS) {
        this.db
          .updateTable('sessions')
          .set({ last_used_at: now })
          .where('id', '=', session.id)
          .execute()
          .catch((e: Error) => this.log.debug({ err: e.message }, 'session touch failed'));
      }
    }
    const { session, user } = entry;
    if (session.revoked_at !== null) throw new AppError('session_revoked', 'This session has ended; sign in again');
    if (session.user_id !== claims.sub || (session.actor_id ?? undefined) !== claims.act)
      throw new AppError('token_invalid', 'Invalid session token');
    if (session.expires_at !== null && session.expires_at <= now) {
      throw new AppError('token_expired', 'Your session has expired; sign in again');
    }
    if (!user.active) throw new AppError('session_revoked', 'This account is deactivated');
    return { session, user, claims };
  }

  /** Revokes one session. Returns false when it does not exist (or belongs to someone else). */
  async revoke(sid: string, reason: string, opts: { userId?: string; trx?: Trx } = {}): Promise<boolean> {
    let q = (opts.trx ?? this.db)
      .updateTable('sessions')
      .set({ revoked_at: Date.now(), revoked_reason: reason })
      .where('id', '=', sid)
      .where('revoked_at', 'is', null);
    if (opts.userId) q = q.where('user_id', '=', opts.userId);
    const r = await q.executeTakeFirst();
    this.cache.delete(sid);
    if (!opts.trx) await this.broadcast({ sid });
    return Number(r.numUpdatedRows) > 0;
  }

  /** Revokes every session of a user (optionally keeping one). Call `afterCommit` if inside a transaction. */
  async revokeAllForUser(
    userId: string,
    reason: string,
    opts: { exceptSid?: string; trx?: Trx } = {},
  ): Promise<number> {
    let q = (opts.trx ?? this.db)
      .updateTable('sessions')
      .set({ revoked_at: Date.now(), revoked_reason: reason })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null);
    if (opts.exceptSid) q = q.where('id', '!=', opts.exceptSid);
    const r = await q.executeTakeFirst();
    this.dropUser(userId);
    if (!opts.trx) await this.broadcast({ user: userId });
    return Number(r.numUpdatedRows);
  }

  /** After a transaction that revoked or changed a user commits: drop caches here and elsewhere. */
  async afterUserChange(userId: string): Promise<void> {
    this.dropUser(userId);
    await this.broadcast({ user: userId });
  }

  private async broadcast(msg: { sid?: string; user?: string }) {
    if (msg.user) this.dropUser(msg.user);
    if (msg.sid) this.cache.delete(msg.sid);
    if (this.redis) await this.redis.publish(CHANNEL, JSON.stringify(msg));
  }

  async listForUser(userId: string): Promise<Session[]> {
    return this.db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', Date.now())]))
      .orderBy('created_at', 'desc')
      .limit(500)
      .execute();
  }
}

export function presentSession(s: Session, currentSid?: string) {
  return {
    id: s.id,
    kind: s.kind,
    created_at: s.created_at,
    last_used_at: s.last_used_at,
    expires_at: s.expires_at,
    ip: s.ip,
    user_agent: s.user_agent,
    current: s.id === currentSid,
    impersonated_by: s.actor_id,
  };
}
