import type { FastifyReply } from 'fastify';
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import type { Actor } from '../access/index.js';
import { ensureMemberships } from '../access/permissions.js';
import { AppError } from '../../platform/http/errors.js';
import {
  formatReset,
  MemoryLimiterStore,
  type LimitOp,
  type LimiterStore,
  type OpState,
} from '../../platform/rate-limit/index.js';
import type { GatewayLimitsTable } from './tables.js';

/**
 * Which limits apply to a gateway request, and taking them atomically.
 *
 * Subjects: the user, the API key (when the request carries one), every model of the preset chain,
 * and the user's groups. Values come from `gateway_limits` rows:
 *  - user: the user's row; a field left null falls back to the most generous value among the
 *    user's groups' rows (0 = unlimited is the most generous), then to the GATEWAY_USER_* setting;
 *  - key and model: that row only (null or no row: no limit of that kind). Model limits are shared
 *    by everyone using the model (they protect the upstream);
 *  - group: requests/tokens per minute and concurrency are per-member defaults (above); the
 *    token budgets of a group row are one pool shared by all its members.
 * Windows are rolling minutes with 1-second buckets; budgets are UTC days and calendar months,
 * reserved before dispatch and settled after with the real figure.
 */

export const WINDOW_MS = 60_000;
export const BUCKET_MS = 1000;

type LimitFields = Pick<
  GatewayLimitsTable,
  'requests_per_minute' | 'tokens_per_minute' | 'concurrent_requests' | 'tokens_per_day' | 'tokens_per_month'
>;
export interface LimitSubject {
  userId: string;
  keyId: string | null;
  groupIds: readonly string[];
  modelIds: readonly string[];
}

type Dimension = 'requests' | 'tokens' | 'concurrency' | 'budget_day' | 'budget_month';

interface PlannedOp {
  op: LimitOp;
  dim: Dimension;
  /** user | key | model:<id> | group:<id> */
  who: string;
}

export interface Lease {
  id: string;
  ops: PlannedOp[];
  buckets: number[];
  reserved: number;
  states: OpState[];
  settled: boolean;
}

/** UTC day and month periods: key suffix and end. */
export function periods(now: number): {
  day: { id: string; start: number; end: number };
  month: { id: string; start: number; end: number };
} {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const dayStart = Date.UTC(y, m, d.getUTCDate());
  const monthStart = Date.UTC(y, m, 1);
  const pad = (n: number) => String(n).padStart(2, '0');
  return {
    day: { id: `${y}${pad(m + 1)}${pad(d.getUTCDate())}`, start: dayStart, end: dayStart + 86_400_000 },
    month: { id: `${y}${pad(m + 1)}`, start: monthStart, end: Date.UTC(y, m + 1, 1) },
  };
}

type Periods = ReturnType<typeof periods>;
let lastPeriods: Periods | null = null;

/** periods(now), reused while `now` stays within the same UTC day. */
function periodsAt(now: number): Periods {
  const p = lastPeriods;
  if (p && now >= p.day.start && now < p.day.end) return p;
  lastPeriods = periods(now);
  return lastPeriods;
}

/** The limits of one subject as read from the rows (before a request's cost is known). */
interface Template {
  parts: { who: string; keyBase: string; v: LimitFields }[];
  tokenLimited: boolean;
}

const ROWS_TTL_MS = 2000;
const PRIME_RECHECK_MS = 60_000;
const CHANNEL = 'gateway-limits';

export class LimitService {
  private rows: { at: number; map: Map<string, GatewayLimitsTable>; hasGroups: boolean } | null = null;
  /** Templates per subject, valid for one snapshot of the rows. */
  private templates = new Map<string, Template>();
  private templatesOf: Map<string, GatewayLimitsTable> | null = null;
  private loading: Promise<Map<string, GatewayLimitsTable>> | null = null;
  private primed = new Map<string, number>();
  private generation = 0;

  constructor(
    private readonly ctx: AppContext,
    readonly store: LimiterStore,
    /** Writes buffered usage so budget seeding sees it. */
    private readonly flushUsage: () => Promise<void>,
  ) {}

  async start(): Promise<void> {
    if (this.ctx.redis) await this.ctx.redis.subscribe(CHANNEL, () => this.dropLocal());
  }

  private dropLocal() {
    this.generation += 1;
    this.rows = null;
  }

  async invalidate(): Promise<void> {
    this.dropLocal();
    if (this.ctx.redis) await this.ctx.redis.publish(CHANNEL, '1');
  }

  /** The rows when the snapshot is fresh (no promise on the hot path), else null. */
  private fresh(): { map: Map<string, GatewayLimitsTable>; hasGroups: boolean } | null {
    return this.rows && Date.now() - this.rows.at < ROWS_TTL_MS ? this.rows : null;
  }

  private async table(): Promise<Map<string, GatewayLimitsTable>> {
    const f = this.fresh();
    if (f) return f.map;
    if (this.loading) return this.loading;
    const gen = this.generation;
    this.loading = this.ctx.db
      .selectFrom('gateway_limits')
      .selectAll()
      .execute()
      .then((list) => {
        const map = new Map(list.map((r) => [`${r.scope}\u0000${r.subject_id}`, r]));
        if (gen === this.generation)
          this.rows = { at: Date.now(), map, hasGroups: list.some((r) => r.scope === 'group') };
        return map;
      })
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  private groups = new Map<string, { at: number; ids: string[] }>();

  /**
   * The groups whose limits apply to the caller: the memberships already on the actor (API keys
   * carry them), else a lookup reused for ROWS_TTL_MS (a membership change counts within 2 s).
   */
  async groupsOf(actor: Actor, ctx: Pick<AppContext, 'db'>): Promise<string[]> {
    if (actor.memberships) return actor.memberships.map((m) => m.groupId);
    const now = Date.now();
    const hit = this.groups.get(actor.userId);
    if (hit && now - hit.at < ROWS_TTL_MS) return hit.ids;
    const ids = (await ensureMemberships(ctx.db, actor)).map((m) => m.groupId);
    if (this.groups.size > 50_000) this.groups.clear();
    this.groups.set(actor.userId, { at: now, ids });
    return ids;
  }

  /** True when some group row exists (only then are the caller's groups looked up). */
  async usesGroups(): Promise<boolean> {
    const f = this.fresh();
    if (f) return f.hasGroups;
    for (const r of (await this.table()).values()) if (r.scope === 'group') return true;
    return false;
  }

  /** True when a token limit or budget applies to the subject (max_tokens is then enforced). */
  async tokenLimited(s: LimitSubject): Promise<boolean> {
    const map = this.fresh()?.map ?? (await this.table());
    return this.template(map, s).tokenLimited;
  }

  /** The subject's limits from one snapshot of the rows, computed once per snapshot. */
  private template(map: Map<string, GatewayLimitsTable>, s: LimitSubject): Template {
    if (this.templatesOf !== map) {
      this.templates.clear();
      this.templatesOf = map;
    }
    const k = `${s.userId}\u0000${s.keyId ?? ''}\u0000${s.modelIds.join('\u0001')}\u0000${s.groupIds.join('\u0001')}`;
    let t = this.templates.get(k);
    if (t) return t;
    const c = this.ctx.config;
    const parts: Template['parts'] = [];
    parts.push({
      who: 'user',
      keyBase: `u:${s.userId}`,
      v: {
        requests_per_minute: this.userValue(map, s, 'requests_per_minute', c.GATEWAY_USER_REQUESTS_PER_MINUTE),
        tokens_per_minute: this.userValue(map, s, 'tokens_per_minute', c.GATEWAY_USER_TOKENS_PER_MINUTE),
        concurrent_requests: this.userValue(map, s, 'concurrent_requests', c.GATEWAY_USER_CONCURRENT_REQUESTS),
        tokens_per_day: this.userValue(map, s, 'tokens_per_day', c.GATEWAY_USER_TOKENS_PER_DAY),
        tokens_per_month: this.userValue(map, s, 'tokens_per_month', c.GATEWAY_USER_TOKENS_PER_MONTH),
      },
    });
    if (s.keyId) {
      const k = map.get(`key\u0000${s.keyId}`);
      if (k) parts.push({ who: 'key', keyBase: `k:${s.keyId}`, v: k });
    }
    for (const m of new Set(s.modelIds)) {
      const r = map.get(`model\u0000${m}`);
      if (r) parts.push({ who: `model:${m}`, keyBase: `m:${m}`, v: r });
    }
    for (const g of s.groupIds) {
      const r = map.get(`group\u0000${g}`);
      if (r && (r.tokens_per_day || r.tokens_per_month))
        parts.push({
          who: `group:${g}`,
          keyBase: `g:${g}`,
          v: {
            requests_per_minute: null,
            tokens_per_minute: null,
            concurrent_requests: null,
            tokens_per_day: r.tokens_per_day,
            tokens_per_month: r.tokens_per_month,
          },
        });
    }
    t = {
      parts,
      tokenLimited: parts.some((p) => !!(p.v.tokens_per_minute || p.v.tokens_per_day || p.v.tokens_per_month)),
    };
    if (this.templates.size >= 10_000) this.templates.clear();
    this.templates.set(k, t);
    return t;
  }

  /**
   * The user's effective value of one field (see the module comment). 0 = unlimited. Group rows
   * give defaults for the per-minute and concurrency limits only (their budgets are pools).
   */
  private userValue(
    map: Map<string, GatewayLimitsTable>,
    s: LimitSubject,
    field: keyof LimitFields,
    def: number,
  ): number {
    const own = map.get(`user\u0000${s.userId}`)?.[field];
    if (own !== null && own !== undefined) return own;
    if (field === 'tokens_per_day' || field === 'tokens_per_month') return def;
    let best: number | null = null;
    for (const g of s.groupIds) {
      const v = map.get(`group\u0000${g}`)?.[field];
      if (v === null || v === undefined) continue;
      if (v === 0) return 0;
      best = best === null ? v : Math.max(best, v);
    }
    return best ?? def;
  }

  /** The ops of one request. `tokens` is the reservation (prompt estimate + max_tokens). */
  async plan(s: LimitSubject, tokens: number, now = Date.now()): Promise<{ ops: PlannedOp[]; tokenLimited: boolean }> {
    const map = this.fresh()?.map ?? (await this.table());
    const t = this.template(map, s);
    const leaseMs = this.ctx.config.GATEWAY_REQUEST_TIMEOUT * 1000 + 5000;
    const p = periodsAt(now);
    const ops: PlannedOp[] = [];
    for (const { who, keyBase, v } of t.parts) {
      if (v.requests_per_minute)
        ops.push({
          who,
          dim: 'requests',
          op: {
            kind: 'window',
            key: `rpm:${keyBase}`,
            limit: v.requests_per_minute,
            windowMs: WINDOW_MS,
            bucketMs: BUCKET_MS,
            cost: 1,
          },
        });
      if (v.tokens_per_minute)
        ops.push({
          who,
          dim: 'tokens',
          op: {
            kind: 'window',
            key: `tpm:${keyBase}`,
            limit: v.tokens_per_minute,
            windowMs: WINDOW_MS,
            bucketMs: BUCKET_MS,
            cost: tokens,
          },
        });
      if (v.concurrent_requests)
        ops.push({
          who,
          dim: 'concurrency',
          op: { kind: 'concurrency', key: `cc:${keyBase}`, limit: v.concurrent_requests, leaseMs },
        });
      if (v.tokens_per_day)
        ops.push({
          who,
          dim: 'budget_day',
          op: {
            kind: 'budget',
            key: `bd:${keyBase}:${p.day.id}`,
            limit: v.tokens_per_day,
            periodEndMs: p.day.end,
            cost: tokens,
          },
        });
      if (v.tokens_per_month)
        ops.push({
          who,
          dim: 'budget_month',
          op: {
            kind: 'budget',
            key: `bm:${keyBase}:${p.month.id}`,
            limit: v.tokens_per_month,
            periodEndMs: p.month.end,
            cost: tokens,
          },
        });
    }
    return { ops, tokenLimited: t.tokenLimited };
  }

  /** Seeds budget counters that the store does not hold yet from the usage ledger (after a restart). */
  private async prime(ops: PlannedOp[], s: LimitSubject, now: number): Promise<void> {
    const budgets = ops.filter((o) => o.op.kind === 'budget');
    if (!budgets.length) return;
    const p = periods(now);
    let flushed = false;
    for (const b of budgets) {
      const key = b.op.key;
      const last = this.primed.get(key);
      if (last !== undefined && now - last < PRIME_RECHECK_MS) continue;
      if (await this.store.has(key)) {
        this.primed.set(key, now);
        continue;
      }
      if (!flushed) {
        await this.flushUsage();
        flushed = true;
      }
      const since = b.dim === 'budget_day' ? p.day.start : p.month.start;
      let q = this.ctx.db
        .selectFrom('gateway_usage')
        .select(sql<number>`coalesce(sum(total_tokens), 0)`.as('used'))
        .where('created_at', '>=', since);
      if (b.who === 'user') q = q.where('user_id', '=', s.userId);
      else if (b.who === 'key') q = q.where('key_id', '=', s.keyId);
      else if (b.who.startsWith('group:'))
        q = q.where('user_id', 'in', (eb) =>
          eb
            .selectFrom('group_members')
            .select('group_members.user_id')
            .where('group_members.group_id', '=', b.who.slice(6)),
        );
      else {
        const m = b.who.slice(6);
        q = q.where((eb) => eb.or([eb('model_id', '=', m), eb('base_model_id', '=', m)]));
      }
      const row = await q.executeTakeFirst();
      await this.store.prime(key, Number(row?.used ?? 0), (b.op as { periodEndMs: number }).periodEndMs);
      if (this.primed.size > 50_000) this.primed.clear();
      this.primed.set(key, now);
    }
  }

  /**
   * Takes every limit of the request at once, or throws 429 with Retry-After and x-ratelimit-*
   * headers set on `reply`. Returns the lease to settle and release when the request ends.
   */
  async acquire(reply: FastifyReply | null, s: LimitSubject, tokens: number, leaseId: string): Promise<Lease> {
    const now = Date.now();
    const { ops } = await this.plan(s, tokens, now);
    if (ops.some((o) => o.op.kind === 'budget')) await this.prime(ops, s, now);
    const list = ops.map((o) => o.op);
    // The in-memory store decides synchronously (no promise on the hot path).
    const r =
      this.store instanceof MemoryLimiterStore
        ? this.store.acquireSync(list, leaseId, now)
        : await this.store.acquire(list, leaseId, now);
    if (reply) this.headers(reply, ops, r.states, now);
    if (!r.ok) {
      const failed = ops[r.failed!]!;
      const retryMs = Number.isFinite(r.retryAt!) ? Math.max(0, r.retryAt! - now) : WINDOW_MS;
      reply?.header('retry-after', String(Math.max(1, Math.ceil(retryMs / 1000))));
      throw refusal(failed, tokens);
    }
    return { id: leaseId, ops, buckets: r.buckets, reserved: tokens, states: r.states, settled: false };
  }

  private headers(reply: FastifyReply, ops: PlannedOp[], states: OpState[], now: number) {
    const pick = (dim: Dimension) => {
      let best: { st: OpState; remaining: number } | null = null;
      ops.forEach((o, i) => {
        if (o.dim !== dim) return;
        const st = states[i]!;
        const remaining = Math.max(0, st.limit - st.used);
        if (!best || remaining < best.remaining) best = { st, remaining };
      });
      return best as { st: OpState; remaining: number } | null;
    };
    const req = pick('requests');
    if (req) {
      reply.header('x-ratelimit-limit-requests', String(req.st.limit));
      reply.header('x-ratelimit-remaining-requests', String(req.remaining));
      reply.header('x-ratelimit-reset-requests', formatReset(req.st.resetAt - now));
    }
    const tok = pick('tokens');
    if (tok) {
      reply.header('x-ratelimit-limit-tokens', String(tok.st.limit));
      reply.header('x-ratelimit-remaining-tokens', String(tok.remaining));
      reply.header('x-ratelimit-reset-tokens', formatReset(tok.st.resetAt - now));
    }
  }

  /** Settles token reservations with the real figure and frees the concurrency slots. */
  async finish(lease: Lease, actualTokens: number): Promise<void> {
    if (lease.settled) return;
    lease.settled = true;
    // Nothing to settle or release (request-count windows only): no work, no promises.
    if (!lease.ops.some((o) => o.dim !== 'requests')) return;
    const delta = actualTokens - lease.reserved;
    const adjustments = lease.ops.flatMap((o, i) =>
      o.dim === 'tokens' || o.dim === 'budget_day' || o.dim === 'budget_month'
        ? [
            {
              kind: o.op.kind === 'window' ? ('window' as const) : ('budget' as const),
              key: o.op.key,
              bucket: lease.buckets[i],
              delta,
            },
          ]
        : [],
    );
    const slots = lease.ops.filter((o) => o.op.kind === 'concurrency').map((o) => o.op.key);
    try {
      await Promise.all([
        adjustments.length ? this.store.adjust(adjustments) : undefined,
        slots.length ? this.store.release(slots, lease.id) : undefined,
      ]);
    } catch (e) {
      // Slots expire on their own (GATEWAY_REQUEST_TIMEOUT); reservations stay counted (safe side).
      this.ctx.log.warn({ err: (e as Error).message }, 'Limiter settle failed');
    }
  }
}

function describe(who: string): string {
  if (who === 'user') return 'your account';
  if (who === 'key') return 'this API key';
  if (who.startsWith('model:')) return `the model ${who.slice(6)}`;
  return 'your group';
}

function refusal(o: PlannedOp, tokens: number): AppError {
  const op = o.op;
  if (op.kind === 'concurrency')
    return new AppError(
      'concurrency_limited',
      `Too many requests in flight: ${op.limit} at once for ${describe(o.who)}`,
    );
  if (op.kind === 'budget')
    return new AppError(
      'budget_exceeded',
      `Token budget reached for ${describe(o.who)}: ${op.limit} tokens per ${o.dim === 'budget_day' ? 'day' : 'month'} (this request reserves ${tokens})`,
    );
  return new AppError(
    'rate_limited',
    o.dim === 'requests'
      ? `Rate limit reached: ${op.limit} requests per minute for ${describe(o.who)}`
      : `Rate limit reached: ${op.limit} tokens per minute for ${describe(o.who)} (this request reserves ${tokens})`,
  );
}
