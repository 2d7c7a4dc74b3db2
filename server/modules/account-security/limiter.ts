import { createHash } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import type { Config } from '../../config/index.js';
import { AppError } from '../../platform/http/errors.js';
import type { AttemptStore, StoredAttempt } from './limiter-store.js';

/**
 * The login limiter: brute-force protection for every way of proving who you are (password,
 * LDAP, 2FA codes, recovery codes, API keys).
 *
 * Two kinds of subject are counted: an **account** (the identifier the client submitted — counted
 * whether or not such an account exists, so a lockout tells nothing about existence) and a
 * **client address** (`req.ip`, which is taken from X-Forwarded-For only when the peer is a
 * trusted proxy; an IPv6 address counts as its /64). Each subject has a failure count with an
 * exponential back-off between failures and a lockout after a threshold; repeated lockouts double.
 *
 * An attempt is counted *before* it is processed (`attempt()` reserves one failure on every
 * subject, atomically per subject) and refunded when it succeeds, so concurrent attempts can never
 * exceed the threshold: with N allowed failures, at most N attempts are ever processed between two
 * lockouts. A success clears the account's count but only refunds the address's own reservation —
 * a client can never reset an address's count (with or without a forged X-Forwarded-For).
 *
 * Storage is the database (default) or Redis when REDIS_URL is set, so every worker and instance
 * shares the counts and they survive a restart.
 *
 * Usage from other modules (`ctx.accountSecurity.limiter`):
 *
 *     const subjects = [accountSubject(email, user?.id), ipSubject(req.ip)];
 *     const attempt = await limiter.attempt(subjects);   // counts the attempt
 *     if (!attempt.allowed) → refuse without checking the credential
 *     ...check the credential...
 *     ok ? await limiter.succeed(attempt) : (nothing to do: already counted)
 *
 *   or, after the fact (API keys, where only failures matter):
 *
 *     if (!(await limiter.check([ipSubject(req.ip)])).allowed) → refuse
 *     on an invalid key: await limiter.fail([ipSubject(req.ip)])
 */

export type SubjectKind = 'account' | 'ip';

export interface LimitSubject {
  /** Storage id: `a_…` or `i_…` (a hash, so identifiers of any length fit). */
  readonly id: string;
  readonly kind: SubjectKind;
  /** What an admin sees: the identifier or the address (IPv6: its /64). */
  readonly label: string;
  readonly userId: string | null;
}

export interface AttemptState {
  failures: number;
  lockouts: number;
  refused: number;
  lastFailureAt: number;
  nextAt: number;
  lockedUntil: number;
}

export interface LimiterPolicy {
  accountMax: number;
  ipMax: number;
  lockoutMs: number;
  lockoutMaxMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  windowMs: number;
}

export function policyFromConfig(c: Config): LimiterPolicy {
  return {
    accountMax: c.LOGIN_MAX_ATTEMPTS,
    ipMax: c.LOGIN_IP_MAX_ATTEMPTS,
    lockoutMs: c.LOGIN_LOCKOUT_DURATION,
    lockoutMaxMs: Math.max(c.LOGIN_LOCKOUT_MAX_DURATION, c.LOGIN_LOCKOUT_DURATION),
    backoffBaseMs: c.LOGIN_BACKOFF_BASE,
    backoffMaxMs: c.LOGIN_BACKOFF_MAX,
    windowMs: c.LOGIN_ATTEMPT_WINDOW,
  };
}

const hash = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 40);

/** The account subject for an identifier (e-mail, LDAP user name…): trimmed, lower-cased. */
export function accountSubject(identifier: string, userId: string | null = null): LimitSubject {
  const norm = identifier.trim().toLowerCase();
  return { id: `a_${hash(`account\0${norm}`)}`, kind: 'account', label: norm.slice(0, 320), userId };
}

/** How a client address is counted: IPv4 as is (also when IPv4-mapped), IPv6 by its /64. */
export function clientAddressKey(ip: string | null | undefined): string {
  if (!ip) return 'unknown';
  let a: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    a = ipaddr.parse(ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip);
  } catch {
    return ip.slice(0, 64);
  }
  if (a.kind() === 'ipv6') {
    const v6 = a as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
    return `${v6.parts
      .slice(0, 4)
      .map((p) => p.toString(16))
      .join(':')}::/64`;
  }
  return a.toString();
}

export function ipSubject(ip: string | null | undefined): LimitSubject {
  const label = clientAddressKey(ip);
  return { id: `i_${hash(`ip\0${label}`)}`, kind: 'ip', label, userId: null };
}

// ---- the state machine (pure)

export const FRESH: Readonly<AttemptState> = Object.freeze({
  failures: 0,
  lockouts: 0,
  refused: 0,
  lastFailureAt: 0,
  nextAt: 0,
  lockedUntil: 0,
});

/** The state as of `now`: ended lockouts and back-offs cleared, everything forgotten after the window. */
export function normalise(s: AttemptState | null, now: number, p: LimiterPolicy): AttemptState {
  if (!s) return { ...FRESH };
  if (now - Math.max(s.lastFailureAt, s.lockedUntil) > p.windowMs) return { ...FRESH };
  return {
    ...s,
    lockedUntil: s.lockedUntil > now ? s.lockedUntil : 0,
    nextAt: s.nextAt > now ? s.nextAt : 0,
  };
}

export function isEmpty(s: AttemptState): boolean {
  return s.failures === 0 && s.lockouts === 0 && s.lockedUntil === 0 && s.nextAt === 0 && s.refused === 0;
}

/** An attempt refused without being checked: counted as refused (it also keeps the record alive). */
export function refuse(s: AttemptState, now: number): AttemptState {
  return { ...s, refused: s.refused + 1, lastFailureAt: Math.max(s.lastFailureAt, now) };
}

export function threshold(kind: SubjectKind, p: LimiterPolicy): number {
  return kind === 'account' ? p.accountMax : p.ipMax;
}

/**
 * Delay required after the `failures`-th failure: none for the first half of the allowed failures
 * (a user mistyping), then the base, doubling with each further failure, up to the maximum.
 */
export function backoffMs(kind: SubjectKind, failures: number, p: LimiterPolicy): number {
  const free = Math.max(1, Math.floor(threshold(kind, p) / 2));
  if (p.backoffBaseMs <= 0 || failures <= free) return 0;
  return Math.min(p.backoffBaseMs * 2 ** Math.min(failures - free - 1, 40), p.backoffMaxMs);
}

export function lockoutMs(lockouts: number, p: LimiterPolicy): number {
  return Math.min(p.lockoutMs * 2 ** Math.min(Math.max(lockouts - 1, 0), 40), p.lockoutMaxMs);
}

/** When a subject refuses attempts (0: it does not). */
export function blockedUntil(s: AttemptState, now: number): { until: number; reason: 'locked' | 'backoff' | null } {
  if (s.lockedUntil > now) return { until: s.lockedUntil, reason: 'locked' };
  if (s.nextAt > now) return { until: s.nextAt, reason: 'backoff' };
  return { until: 0, reason: null };
}

/** Counts one failure (in advance); locks when the threshold is reached. */
export function reserve(
  s: AttemptState,
  now: number,
  kind: SubjectKind,
  p: LimiterPolicy,
): { state: AttemptState; lockedNow: boolean } {
  const failures = s.failures + 1;
  if (failures >= threshold(kind, p)) {
    const lockouts = s.lockouts + 1;
    return {
      state: { ...s, failures: 0, lockouts, lastFailureAt: now, nextAt: 0, lockedUntil: now + lockoutMs(lockouts, p) },
      lockedNow: true,
    };
  }
  const delay = backoffMs(kind, failures, p);
  return {
    state: { ...s, failures, lastFailureAt: now, nextAt: delay > 0 ? now + delay : 0 },
    lockedNow: false,
  };
}

/** Gives back a reservation (the attempt succeeded). */
export function refund(s: AttemptState, lockedNow: boolean, kind: SubjectKind, p: LimiterPolicy): AttemptState {
  if (lockedNow && s.lockouts > 0 && s.lockedUntil > 0)
    return { ...s, lockouts: s.lockouts - 1, lockedUntil: 0, failures: Math.max(threshold(kind, p) - 1, 0), nextAt: 0 };
  return { ...s, failures: Math.max(s.failures - 1, 0), nextAt: 0 };
}

/** When a stored state can be forgotten. */
export function expiryOf(s: AttemptState, p: LimiterPolicy): number {
  return Math.max(s.lastFailureAt, s.lockedUntil, s.nextAt) + p.windowMs;
}

// ---- the limiter

interface Reservation {
  subject: LimitSubject;
  lockedNow: boolean;
}

export interface Attempt {
  allowed: boolean;
  /** Refused: when an attempt may be made again (ms since epoch). */
  retryAt: number | null;
  reason: 'locked' | 'backoff' | null;
  /** The subjects that refused. */
  blockedBy: LimitSubject[];
  /** The subjects this attempt locked (the threshold was reached by it). */
  lockedNow: LimitSubject[];
  readonly reservations: Reservation[];
}

export interface LockoutEntry {
  id: string;
  kind: SubjectKind;
  label: string;
  user_id: string | null;
  failures: number;
  lockouts: number;
  refused: number;
  locked: boolean;
  locked_until: number | null;
  next_attempt_at: number | null;
  last_failure_at: number | null;
  expires_at: number;
}

const MAX_CAS_ROUNDS = 100;
const PURGE_EVERY_MS = 5 * 60_000;

export class LoginLimiter {
  private lastPurge = 0;

  constructor(
    readonly store: AttemptStore,
    readonly policy: LimiterPolicy,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Read-modify-write of one subject with compare-and-swap (atomic across workers and instances). */
  private async update<T>(
    subject: LimitSubject,
    now: number,
    fn: (s: AttemptState) => { next: AttemptState; out: T },
  ): Promise<T> {
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const cur = await this.store.get(subject.id);
      const { next, out } = fn(normalise(cur?.state ?? null, now, this.policy));
      const empty = isEmpty(next);
      if (!cur && empty) return out;
      const ok = await this.store.cas(subject, cur, empty ? null : next, expiryOf(next, this.policy), now);
      if (ok) return out;
      if (round >= 2) await new Promise((r) => setTimeout(r, Math.random() * Math.min(round, 20)));
    }
    throw new AppError('service_unavailable', 'The login limiter is busy; try again');
  }

  private maybePurge(now: number) {
    if (now - this.lastPurge < PURGE_EVERY_MS) return;
    this.lastPurge = now;
    this.store.purgeExpired(now).catch(() => undefined);
  }

  /**
   * Counts an attempt on every subject before it is processed. Refused (`allowed: false`) when a
   * subject is locked or in back-off; then nothing is counted as a failure (only as refused) and
   * the credential must not be checked.
   */
  async attempt(subjects: LimitSubject[]): Promise<Attempt> {
    const now = this.clock();
    this.maybePurge(now);
    const res: Attempt = { allowed: true, retryAt: null, reason: null, blockedBy: [], lockedNow: [], reservations: [] };
    for (const subject of subjects) {
      const r = await this.update(subject, now, (s) => {
        const b = blockedUntil(s, now);
        // Refused: every subject records it (the same writes as a counted failure: equal timing).
        if (b.reason || !res.allowed)
          return { next: refuse(s, now), out: { blocked: b, reserved: false, lockedNow: false } };
        const { state, lockedNow } = reserve(s, now, subject.kind, this.policy);
        return { next: state, out: { blocked: b, reserved: true, lockedNow } };
      });
      if (r.blocked.reason) {
        res.allowed = false;
        res.blockedBy.push(subject);
        if (res.retryAt === null || r.blocked.until > res.retryAt) {
          res.retryAt = r.blocked.until;
          res.reason = r.blocked.reason;
        }
      } else if (r.reserved) {
        res.reservations.push({ subject, lockedNow: r.lockedNow });
        if (r.lockedNow) res.lockedNow.push(subject);
      }
    }
    if (!res.allowed && res.reservations.length) {
      // A later subject refused: the reservations made before are not failures after all.
      await this.settle(res.reservations, now, 'refund', true);
      res.reservations.length = 0;
      res.lockedNow.length = 0;
    }
    return res;
  }

  /** The attempt succeeded: the account's count is cleared, the address's reservation refunded. */
  async succeed(a: Attempt): Promise<void> {
    await this.settle(a.reservations, this.clock(), 'succeed', false);
    a.reservations.length = 0;
  }

  /** The attempt was not a failure (e.g. a right password that still needs a 2FA code): refund it. */
  async release(a: Attempt): Promise<void> {
    await this.settle(a.reservations, this.clock(), 'refund', false);
    a.reservations.length = 0;
  }

  private async settle(list: Reservation[], now: number, how: 'succeed' | 'refund', asRefused: boolean) {
    for (const { subject, lockedNow } of list) {
      await this.update(subject, now, (s) => {
        if (how === 'succeed' && subject.kind === 'account') return { next: { ...FRESH }, out: null };
        const next = refund(s, lockedNow, subject.kind, this.policy);
        return { next: asRefused ? refuse(next, now) : next, out: null };
      });
    }
  }

  /** Read-only: would an attempt be allowed now? */
  async check(subjects: LimitSubject[]): Promise<Pick<Attempt, 'allowed' | 'retryAt' | 'reason' | 'blockedBy'>> {
    const now = this.clock();
    const out = {
      allowed: true,
      retryAt: null as number | null,
      reason: null as Attempt['reason'],
      blockedBy: [] as LimitSubject[],
    };
    for (const subject of subjects) {
      const cur = await this.store.get(subject.id);
      const b = blockedUntil(normalise(cur?.state ?? null, now, this.policy), now);
      if (b.reason) {
        out.allowed = false;
        out.blockedBy.push(subject);
        if (out.retryAt === null || b.until > out.retryAt) {
          out.retryAt = b.until;
          out.reason = b.reason;
        }
      }
    }
    return out;
  }

  /** Counts a failure after the fact (API keys). A subject already refusing counts it as refused. */
  async fail(subjects: LimitSubject[]): Promise<{ lockedNow: LimitSubject[] }> {
    const now = this.clock();
    this.maybePurge(now);
    const lockedNow: LimitSubject[] = [];
    for (const subject of subjects) {
      const locked = await this.update(subject, now, (s) => {
        if (blockedUntil(s, now).reason) return { next: refuse(s, now), out: false };
        const r = reserve(s, now, subject.kind, this.policy);
        return { next: r.state, out: r.lockedNow };
      });
      if (locked) lockedNow.push(subject);
    }
    return { lockedNow };
  }

  /** A subject's current entry (null when it has nothing recorded). */
  async get(id: string): Promise<LockoutEntry | null> {
    const cur = await this.store.get(id);
    return cur ? this.present(cur, this.clock()) : null;
  }

  /** Subjects with failures or a lockout, locked ones first. */
  async list(opts: { lockedOnly?: boolean; limit?: number } = {}): Promise<LockoutEntry[]> {
    const now = this.clock();
    await this.store.purgeExpired(now);
    const rows = await this.store.list(now, 5000);
    return rows
      .map((r) => this.present(r, now))
      .filter((e) => (opts.lockedOnly ? e.locked : e.failures > 0 || e.locked || e.lockouts > 0 || e.refused > 0))
      .sort((a, b) => Number(b.locked) - Number(a.locked) || (b.last_failure_at ?? 0) - (a.last_failure_at ?? 0))
      .slice(0, opts.limit ?? 500);
  }

  /** Clears a subject (admin). Returns the entry as it was, or null when there was none. */
  async clear(id: string): Promise<LockoutEntry | null> {
    const removed = await this.store.remove(id);
    return removed ? this.present(removed, this.clock()) : null;
  }

  /** Clears the account subject of an identifier (admin password reset). */
  async clearAccount(identifier: string): Promise<void> {
    await this.store.remove(accountSubject(identifier).id);
  }

  private present(r: StoredAttempt, now: number): LockoutEntry {
    const s = normalise(r.state, now, this.policy);
    return {
      id: r.id,
      kind: r.kind,
      label: r.label,
      user_id: r.userId,
      failures: s.failures,
      lockouts: s.lockouts,
      refused: s.refused,
      locked: s.lockedUntil > now,
      locked_until: s.lockedUntil || null,
      next_attempt_at: s.nextAt || null,
      last_failure_at: s.lastFailureAt || null,
      expires_at: r.expiresAt,
    };
  }
}
