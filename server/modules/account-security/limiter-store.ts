import type { Redis } from 'ioredis';
import type { Db } from '../../platform/db/index.js';
import { AppError } from '../../platform/http/errors.js';
import type { AttemptState, LimitSubject, SubjectKind } from './limiter.js';
import './tables.js';

/**
 * Where the login limiter keeps its counts. Both stores offer compare-and-swap on one subject, so
 * concurrent attempts on any number of workers and instances update a subject one at a time.
 */
export interface StoredAttempt {
  id: string;
  kind: SubjectKind;
  label: string;
  userId: string | null;
  state: AttemptState;
  expiresAt: number;
  /** Opaque: the row version (database) or the stored text (Redis). */
  version: number | string;
}

export interface AttemptStore {
  readonly kind: 'database' | 'redis';
  get(id: string): Promise<StoredAttempt | null>;
  /** Writes `next` (deletes when null) only if the subject is still at `prev` (null: absent). */
  cas(
    subject: LimitSubject,
    prev: StoredAttempt | null,
    next: AttemptState | null,
    expiresAt: number,
    now: number,
  ): Promise<boolean>;
  list(now: number, limit: number): Promise<StoredAttempt[]>;
  /** Deletes a subject; returns what it was. */
  remove(id: string): Promise<StoredAttempt | null>;
  purgeExpired(now: number): Promise<void>;
}

// ---- database

type Row = {
  id: string;
  kind: string;
  label: string;
  user_id: string | null;
  failures: number;
  lockouts: number;
  refused: number;
  last_failure_at: number;
  next_at: number;
  locked_until: number;
  expires_at: number;
  version: number;
};

function fromRow(r: Row): StoredAttempt {
  return {
    id: r.id,
    kind: r.kind === 'ip' ? 'ip' : 'account',
    label: r.label,
    userId: r.user_id,
    expiresAt: Number(r.expires_at),
    version: Number(r.version),
    state: {
      failures: Number(r.failures),
      lockouts: Number(r.lockouts),
      refused: Number(r.refused),
      lastFailureAt: Number(r.last_failure_at),
      nextAt: Number(r.next_at),
      lockedUntil: Number(r.locked_until),
    },
  };
}

const cols = (s: AttemptState) => ({
  failures: s.failures,
  lockouts: s.lockouts,
  refused: Math.min(s.refused, 2_000_000_000),
  last_failure_at: s.lastFailureAt,
  next_at: s.nextAt,
  locked_until: s.lockedUntil,
});

export class DatabaseAttemptStore implements AttemptStore {
  readonly kind = 'database' as const;
  constructor(private readonly db: Db) {}

  async get(id: string) {
    const r = await this.db.selectFrom('login_attempts').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? fromRow(r) : null;
  }

  async cas(
    subject: LimitSubject,
    prev: StoredAttempt | null,
    next: AttemptState | null,
    expiresAt: number,
    now: number,
  ) {
    if (!prev) {
      if (!next) return true;
      const r = await this.db
        .insertInto('login_attempts')
        .values({
          id: subject.id,
          kind: subject.kind,
          label: subject.label,
          user_id: subject.userId,
          ...cols(next),
          expires_at: expiresAt,
          version: 1,
          updated_at: now,
        })
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
    }
    if (!next) {
      const r = await this.db
        .deleteFrom('login_attempts')
        .where('id', '=', subject.id)
        .where('version', '=', prev.version as number)
        .executeTakeFirst();
      return Number(r.numDeletedRows) === 1;
    }
    const r = await this.db
      .updateTable('login_attempts')
      .set({
        ...cols(next),
        ...(subject.userId ? { user_id: subject.userId } : {}),
        expires_at: expiresAt,
        version: (prev.version as number) + 1,
        updated_at: now,
      })
      .where('id', '=', subject.id)
      .where('version', '=', prev.version as number)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async list(now: number, limit: number) {
    const rows = await this.db
      .selectFrom('login_attempts')
      .selectAll()
      .where('expires_at', '>', now)
      .orderBy('updated_at', 'desc')
      .limit(limit)
      .execute();
    return rows.map(fromRow);
  }

  async remove(id: string) {
    const cur = await this.get(id);
    if (!cur) return null;
    await this.db.deleteFrom('login_attempts').where('id', '=', id).execute();
    return cur;
  }

  async purgeExpired(now: number) {
    await this.db.deleteFrom('login_attempts').where('expires_at', '<=', now).execute();
  }
}

// ---- Redis

const CAS = `
local cur = redis.call('GET', KEYS[1])
if not cur then cur = '' end
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
end
return 1
`;

type CasRedis = Redis & { hridaLoginCas(numKeys: number, ...args: (string | number)[]): Promise<number> };

interface Stored {
  k: SubjectKind;
  l: string;
  u: string | null;
  s: AttemptState;
  e: number;
}

function unavailable(e: unknown): AppError {
  return new AppError('service_unavailable', 'The login limiter is unavailable; try again shortly', {
    reason: String((e as Error)?.message ?? e).slice(0, 120),
  });
}

/** One key per subject (JSON), plus a sorted set of subject ids by expiry for the admin list. */
export class RedisAttemptStore implements AttemptStore {
  readonly kind = 'redis' as const;
  private readonly r: CasRedis;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    const r = redis as CasRedis;
    if (typeof r.hridaLoginCas !== 'function') r.defineCommand('hridaLoginCas', { lua: CAS });
    this.r = r;
  }

  private key(id: string) {
    return `${this.prefix}login:${id}`;
  }
  private get index() {
    return `${this.prefix}login:index`;
  }

  private parse(id: string, raw: string | null): StoredAttempt | null {
    if (!raw) return null;
    try {
      const v = JSON.parse(raw) as Stored;
      return { id, kind: v.k, label: v.l, userId: v.u, state: v.s, expiresAt: v.e, version: raw };
    } catch {
      return null;
    }
  }

  async get(id: string) {
    try {
      return this.parse(id, await this.r.get(this.key(id)));
    } catch (e) {
      throw unavailable(e);
    }
  }

  async cas(subject: LimitSubject, prev: StoredAttempt | null, next: AttemptState | null, expiresAt: number) {
    const raw = next
      ? JSON.stringify({
          k: subject.kind,
          l: prev?.label ?? subject.label,
          u: subject.userId ?? prev?.userId ?? null,
          s: next,
          e: expiresAt,
        } satisfies Stored)
      : '';
    try {
      const ok = await this.r.hridaLoginCas(
        2,
        this.key(subject.id),
        this.index,
        prev ? String(prev.version) : '',
        raw,
        Math.ceil(expiresAt),
        subject.id,
      );
      return Number(ok) === 1;
    } catch (e) {
      throw unavailable(e);
    }
  }

  async list(now: number, limit: number) {
    try {
      const ids = await this.r.zrangebyscore(this.index, now, '+inf', 'LIMIT', 0, limit);
      if (ids.length === 0) return [];
      const raws = await this.r.mget(...ids.map((id) => this.key(id)));
      return ids.map((id, i) => this.parse(id, raws[i] ?? null)).filter((x): x is StoredAttempt => x !== null);
    } catch (e) {
      throw unavailable(e);
    }
  }

  async remove(id: string) {
    const cur = await this.get(id);
    try {
      await this.r.multi().del(this.key(id)).zrem(this.index, id).exec();
    } catch (e) {
      throw unavailable(e);
    }
    return cur;
  }

  async purgeExpired(now: number) {
    try {
      await this.r.zremrangebyscore(this.index, '-inf', `(${now}`);
    } catch (e) {
      throw unavailable(e);
    }
  }
}
