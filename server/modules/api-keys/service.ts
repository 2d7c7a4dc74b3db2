import { hash } from 'node:crypto';
import type { AppContext } from '../../context.js';
import type { AuthEvent } from '../../platform/audit/index.js';
import type { User } from '../../platform/db/types.js';
import { AppError } from '../../platform/http/errors.js';
import { actorForUser } from '../access/actor.js';
import { holdsPermission, loadMemberships, type Membership } from '../access/permissions.js';
import type { ApiKeysTable } from '../access/tables.js';
import { hashKey, parseKey, sameDigest } from './format.js';

/**
 * API-key verification, kept cheap for the hot path and for floods of bad keys:
 *  1. format check (no hashing, no storage) — garbage is refused at once;
 *  2. SHA-256 of the presented key — the cache key (the plaintext is never kept in memory; the
 *     key's 256 random bits make the digest irreversible);
 *  3. negative cache (bounded LRU, its own map so a flood of bad keys cannot evict good entries);
 *  4. positive cache (bounded LRU): key metadata, the owner's row and groups, reused for at most
 *     SESSION_CACHE_TTL_MS and dropped at once on this instance — and through Redis on every
 *     instance — when the key, its owner (any change SessionService reports) or any group changes;
 *  5. on a miss, HMAC-SHA256 of the key with the current pepper, one primary-key query (key joined
 *     with its owner), a constant-time compare
 *     against the stored HMAC (computed with the pepper of the root key that made it; a key made
 *     before a secret-key rotation is re-hashed with the new pepper on first use).
 * The owner's state, the key's expiry and the api-keys permission are checked on every request,
 * cached or not.
 */
export interface KeyEntry {
  keyId: string;
  user: User;
  expiresAt: number | null;
  allowedEndpoints: string[] | null;
  allowedModels: string[] | null;
  memberships: Membership[];
  at: number;
}

/** Failures of a key already refused moments ago (negative cache): not audited again. */
const repeated = new WeakSet<Error>();
export function isRepeatedFailure(e: unknown): boolean {
  return e instanceof Error && repeated.has(e);
}

const MAX_POSITIVE = 10_000;
const MAX_NEGATIVE = 10_000;
const NEGATIVE_TTL_MS = 5 * 60_000;
const TOUCH_EVERY_MS = 60_000;
const CHANNEL = 'api-key-cache';

function parseList(json: string | null): string[] | null {
  if (json === null) return null;
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return []; // unreadable restriction: deny everything rather than allow everything
  }
}

export class ApiKeyService {
  private positive = new Map<string, KeyEntry>();
  private negative = new Map<string, number>();
  private touched = new Map<string, number>();
  readonly stats = { hits: 0, misses: 0, negativeHits: 0, rejectedFormat: 0 };

  constructor(private readonly ctx: AppContext) {}

  async start(): Promise<void> {
    this.ctx.sessions.onUserChange((userId) => this.dropLocal({ user: userId }));
    if (this.ctx.redis)
      await this.ctx.redis.subscribe(CHANNEL, (m) => {
        try {
          this.dropLocal(JSON.parse(m) as { key?: string; user?: string; all?: boolean });
        } catch {
          /* ignore malformed */
        }
      });
  }

  private dropLocal(msg: { key?: string; user?: string; all?: boolean }) {
    if (msg.all) {
      this.positive.clear();
      return;
    }
    for (const [h, e] of this.positive)
      if ((msg.key && e.keyId === msg.key) || (msg.user && e.user.id === msg.user)) this.positive.delete(h);
  }

  /** Forget cached facts (here and, with Redis, on every instance). Call after the change commits. */
  async invalidate(msg: { key?: string; user?: string; all?: boolean }): Promise<void> {
    this.dropLocal(msg);
    if (this.ctx.redis) await this.ctx.redis.publish(CHANNEL, JSON.stringify(msg));
  }

  private remember<V>(map: Map<string, V>, k: string, v: V, max: number) {
    map.delete(k);
    if (map.size >= max) map.delete(map.keys().next().value!);
    map.set(k, v);
  }

  /**
   * Verifies a presented key and returns its entry, or throws: api_keys_disabled (403),
   * api_key_invalid (401), api_key_expired (401), account_pending / account_inactive (403),
   * permission_required (403, a non-admin owner without the api-keys permission).
   */
  async verify(token: string, now = Date.now()): Promise<KeyEntry> {
    const { config, keyring } = this.ctx;
    if (!config.ENABLE_API_KEYS) throw new AppError('api_keys_disabled', 'API keys are disabled on this server');
    const parsed = parseKey(token);
    if (!parsed) {
      this.stats.rejectedFormat++;
      throw new AppError('api_key_invalid', 'Invalid API key');
    }
    // Cache key: SHA-256 of the presented key (one cheap hash; a 256-bit secret cannot be recovered
    // from it). The peppered HMAC is computed only on a miss, to compare with the stored hash.
    const h = hash('sha256', token, 'base64url');
    const neg = this.negative.get(h);
    if (neg !== undefined && now - neg < NEGATIVE_TTL_MS) {
      this.stats.negativeHits++;
      const e = new AppError('api_key_invalid', 'Invalid API key');
      repeated.add(e); // already audited when first seen
      throw e;
    }
    let entry = this.positive.get(h);
    if (entry && config.SESSION_CACHE_TTL_MS > 0 && now - entry.at <= config.SESSION_CACHE_TTL_MS) {
      this.stats.hits++;
      this.remember(this.positive, h, entry, MAX_POSITIVE);
    } else {
      this.stats.misses++;
      const loaded = await this.load(parsed.id, token, hashKey(keyring.current.derive('api-key-pepper'), token), now);
      if (!loaded) {
        this.remember(this.negative, h, now, MAX_NEGATIVE);
        throw new AppError('api_key_invalid', 'Invalid API key');
      }
      entry = loaded;
      this.remember(this.positive, h, entry, MAX_POSITIVE);
    }
    this.checkState(entry, now);
    this.touch(entry.keyId, now);
    return entry;
  }

  private checkState(e: KeyEntry, now: number): void {
    if (e.expiresAt !== null && e.expiresAt <= now) throw new AppError('api_key_expired', 'This API key has expired');
    if (e.user.active !== 1) throw new AppError('account_inactive', "The API key's account is deactivated");
    if (e.user.role === 'pending')
      throw new AppError('account_pending', "The API key's account is pending approval by an administrator");
    const actor = actorForUser(this.ctx, e.user, { memberships: e.memberships });
    if (!holdsPermission(actor, 'features.api_keys', e.memberships))
      throw new AppError('permission_required', 'The owner of this API key no longer has the api-keys permission', {
        permission: 'features.api_keys',
      });
  }

  private async load(id: string, token: string, h: string, now: number): Promise<KeyEntry | null> {
    const { db, keyring } = this.ctx;
    const row = await db
      .selectFrom('api_keys')
      .innerJoin('users', 'users.id', 'api_keys.user_id')
      .select([
        'api_keys.id as k_id',
        'api_keys.hash as k_hash',
        'api_keys.pepper_kid as k_pepper_kid',
        'api_keys.expires_at as k_expires_at',
        'api_keys.allowed_endpoints as k_allowed_endpoints',
        'api_keys.allowed_models as k_allowed_models',
      ])
      .selectAll('users')
      .where('api_keys.id', '=', id)
      .executeTakeFirst();
    if (!row) return null;
    const root = keyring.byKid(row.k_pepper_kid);
    if (!root) return null;
    const expected = root === keyring.current ? h : hashKey(root.derive('api-key-pepper'), token);
    if (!sameDigest(expected, row.k_hash)) return null;
    if (root !== keyring.current) {
      // Made before a secret-key rotation: store the hash under the current pepper.
      await db
        .updateTable('api_keys')
        .set({ hash: h, pepper_kid: keyring.current.kid })
        .where('id', '=', row.k_id)
        .where('hash', '=', row.k_hash)
        .execute();
    }
    const user: User = {
      id: row.id,
      email: row.email,
      name: row.name,
      role: row.role,
      active: row.active,
      password_hash: row.password_hash,
      profile_image_url: row.profile_image_url,
      settings: row.settings,
      created_at: row.created_at,
      updated_at: row.updated_at,
      last_active_at: row.last_active_at,
    };
    return {
      keyId: row.k_id,
      user,
      expiresAt: row.k_expires_at,
      allowedEndpoints: parseList(row.k_allowed_endpoints),
      allowedModels: parseList(row.k_allowed_models),
      memberships: await loadMemberships(db, user.id),
      at: now,
    };
  }

  private touch(keyId: string, now: number) {
    const last = this.touched.get(keyId) ?? 0;
    if (now - last < TOUCH_EVERY_MS) return;
    this.remember(this.touched, keyId, now, MAX_POSITIVE);
    this.ctx.db
      .updateTable('api_keys')
      .set({ last_used_at: now })
      .where('id', '=', keyId)
      .execute()
      .catch((e: Error) => this.ctx.log.debug({ err: e.message }, 'api key touch failed'));
  }
}

const services = new WeakMap<AppContext, ApiKeyService>();

/** The instance's key verifier (one per app). */
export function apiKeyService(ctx: AppContext): ApiKeyService {
  let s = services.get(ctx);
  if (!s) {
    s = new ApiKeyService(ctx);
    services.set(ctx, s);
  }
  return s;
}

export type ApiKeyRow = ApiKeysTable;

/**
 * Failed key authentications go to the audit trail one by one, except during a flood: from one
 * address, the first FAILURES_PER_WINDOW failures of a FAILURE_WINDOW_MS window are written
 * individually, the rest are counted and written as one summary event when the window closes.
 * Without this, a flood of random keys would turn into as many trail writes (disk and CPU).
 */
export const FAILURE_WINDOW_MS = 10_000;
export const FAILURES_PER_WINDOW = 20;
const MAX_ADDRESSES = 10_000;

interface FailureWindow {
  start: number;
  count: number;
  suppressed: number;
  last: AuthEvent;
}

export class FailureAudit {
  private windows = new Map<string, FailureWindow>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly ctx: Pick<AppContext, 'audit'>) {}

  report(ev: AuthEvent, now = Date.now()): void {
    const ip = ev.ip ?? 'unknown';
    let w = this.windows.get(ip);
    if (w && now - w.start >= FAILURE_WINDOW_MS) {
      this.flushOne(ip, w);
      w = undefined;
    }
    if (!w) {
      if (this.windows.size >= MAX_ADDRESSES) this.flush(now, true);
      w = { start: now, count: 0, suppressed: 0, last: ev };
      this.windows.set(ip, w);
    }
    w.count++;
    w.last = ev;
    if (w.count <= FAILURES_PER_WINDOW) this.ctx.audit.auth(ev);
    else w.suppressed++;
    if (!this.timer) {
      this.timer = setInterval(() => this.flush(Date.now(), false), FAILURE_WINDOW_MS);
      this.timer.unref();
    }
  }

  private flushOne(ip: string, w: FailureWindow) {
    this.windows.delete(ip);
    if (w.suppressed > 0)
      this.ctx.audit.auth({
        ...w.last,
        requestId: null,
        reason: `api_key failures from this address: ${w.suppressed} more in ${FAILURE_WINDOW_MS / 1000}s (last: ${w.last.reason ?? ''})`,
      });
  }

  /** Writes the summaries of closed windows (all windows when `all`). */
  flush(now = Date.now(), all = false): void {
    for (const [ip, w] of this.windows) if (all || now - w.start >= FAILURE_WINDOW_MS) this.flushOne(ip, w);
    if (this.windows.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

const failureAudits = new WeakMap<object, FailureAudit>();
export function failureAudit(ctx: AppContext): FailureAudit {
  let f = failureAudits.get(ctx);
  if (!f) {
    f = new FailureAudit(ctx);
    failureAudits.set(ctx, f);
  }
  return f;
}
