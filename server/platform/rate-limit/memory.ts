import type { AcquireResult, Adjustment, LimitOp, LimiterStore, OpState } from './types.js';

/**
 * The single-instance store. JavaScript runs one request's check-and-consume to completion before
 * another starts, so every acquire is atomic without locks.
 */

interface WindowEntry {
  kind: 'window';
  /** bucket index → cost, in insertion order (= time order, barring a clock stepping back) */
  buckets: Map<number, number>;
  /** Sum of `buckets`. */
  total: number;
  expireAt: number;
}
interface LeaseEntry {
  kind: 'concurrency';
  /** lease id → expiry */
  leases: Map<string, number>;
  expireAt: number;
}
interface CounterEntry {
  kind: 'budget';
  value: number;
  expireAt: number;
}
type Entry = WindowEntry | LeaseEntry | CounterEntry;

/** Number of buckets a window counts: the current one plus ceil(window / bucket) before it. */
export function windowSpan(windowMs: number, bucketMs: number): number {
  return Math.ceil(windowMs / bucketMs) + 1;
}

export class MemoryLimiterStore implements LimiterStore {
  readonly kind = 'memory' as const;
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(sweepEveryMs = 30_000) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), sweepEveryMs);
    this.sweeper.unref();
  }

  private sweep(now: number) {
    for (const [k, e] of this.entries) if (e.expireAt <= now) this.entries.delete(k);
  }

  private get<T extends Entry['kind']>(key: string, kind: T, now: number): Extract<Entry, { kind: T }> | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expireAt <= now || e.kind !== kind) {
      this.entries.delete(key);
      return undefined;
    }
    return e as Extract<Entry, { kind: T }>;
  }

  async acquire(ops: LimitOp[], leaseId: string, now = Date.now()): Promise<AcquireResult> {
    return this.acquireSync(ops, leaseId, now);
  }

  /** Check every op, then apply every op: nothing awaits in between. */
  acquireSync(ops: LimitOp[], leaseId: string, now: number): AcquireResult {
    const states: OpState[] = [];
    const buckets: number[] = [];
    let failed: number | undefined;
    let retryAt: number | undefined;
    ops.forEach((op, i) => {
      let st: OpState;
      let ok: boolean;
      let retry = now;
      if (op.kind === 'window') {
        const cur = Math.floor(now / op.bucketMs);
        const span = windowSpan(op.windowMs, op.bucketMs);
        const first = cur - span + 1;
        const e = this.get(op.key, 'window', now);
        let used = 0;
        let oldest = cur;
        if (e) {
          // Expired buckets leave from the front; the running total avoids summing the window.
          // (After a clock step backwards an expired bucket may sit behind a newer one and be
          // counted a little longer: the safe side.)
          for (const [b, c] of e.buckets) {
            if (b >= first) {
              oldest = b;
              break;
            }
            e.buckets.delete(b);
            e.total -= c;
          }
          used = e.total;
        }
        ok = used + op.cost <= op.limit;
        st = { used, limit: op.limit, resetAt: (oldest + span) * op.bucketMs };
        if (!ok) {
          // The earliest moment enough old buckets have left the window (refusals only: sorted copy).
          const live = e ? [...e.buckets].sort((a, b) => a[0] - b[0]) : [];
          let remaining = used;
          retry = Number.POSITIVE_INFINITY;
          for (const [b, c] of live) {
            remaining -= c;
            if (remaining + op.cost <= op.limit) {
              retry = (b + span) * op.bucketMs;
              break;
            }
          }
        }
        buckets.push(cur);
      } else if (op.kind === 'concurrency') {
        const e = this.get(op.key, 'concurrency', now);
        let used = 0;
        let soonest = Number.POSITIVE_INFINITY;
        if (e)
          for (const [id, exp] of e.leases) {
            if (exp <= now) e.leases.delete(id);
            else {
              used += 1;
              soonest = Math.min(soonest, exp);
            }
          }
        ok = used + 1 <= op.limit;
        // A slot frees when a request finishes; the lease expiry is only the worst case.
        retry = ok ? now : Math.min(soonest, now + 1000);
        st = { used, limit: op.limit, resetAt: retry };
        buckets.push(0);
      } else {
        const e = this.get(op.key, 'budget', now);
        const used = e?.value ?? 0;
        ok = used + op.cost <= op.limit;
        retry = op.periodEndMs;
        st = { used, limit: op.limit, resetAt: op.periodEndMs };
        buckets.push(0);
      }
      states.push(st);
      if (!ok && failed === undefined) {
        failed = i;
        retryAt = retry;
      }
    });
    if (failed !== undefined) return { ok: false, failed, retryAt, states, buckets };

    ops.forEach((op, i) => {
      const st = states[i]!;
      if (op.kind === 'window') {
        let e = this.get(op.key, 'window', now);
        if (!e) {
          e = { kind: 'window', buckets: new Map(), total: 0, expireAt: 0 };
          this.entries.set(op.key, e);
        }
        const b = buckets[i]!;
        e.buckets.set(b, (e.buckets.get(b) ?? 0) + op.cost);
        e.total += op.cost;
        e.expireAt = (b + windowSpan(op.windowMs, op.bucketMs)) * op.bucketMs;
        st.used += op.cost;
      } else if (op.kind === 'concurrency') {
        let e = this.get(op.key, 'concurrency', now);
        if (!e) {
          e = { kind: 'concurrency', leases: new Map(), expireAt: 0 };
          this.entries.set(op.key, e);
        }
        e.leases.set(leaseId, now + op.leaseMs);
        e.expireAt = Math.max(e.expireAt, now + op.leaseMs);
        st.used += 1;
      } else {
        let e = this.get(op.key, 'budget', now);
        if (!e) {
          e = { kind: 'budget', value: 0, expireAt: op.periodEndMs };
          this.entries.set(op.key, e);
        }
        e.value += op.cost;
        st.used = e.value;
      }
    });
    return { ok: true, states, buckets };
  }

  async release(keys: string[], leaseId: string): Promise<void> {
    for (const k of keys) {
      const e = this.entries.get(k);
      if (e?.kind === 'concurrency') e.leases.delete(leaseId);
    }
  }

  async adjust(adjustments: Adjustment[]): Promise<void> {
    const now = Date.now();
    for (const a of adjustments) {
      if (a.delta === 0) continue;
      if (a.kind === 'window') {
        const e = this.get(a.key, 'window', now);
        if (e && a.bucket !== undefined && e.buckets.has(a.bucket)) {
          const before = e.buckets.get(a.bucket)!;
          const after = Math.max(0, before + a.delta);
          e.buckets.set(a.bucket, after);
          e.total += after - before;
        }
      } else {
        const e = this.get(a.key, 'budget', now);
        if (e) e.value = Math.max(0, e.value + a.delta);
      }
    }
  }

  async prime(key: string, value: number, expireAt: number): Promise<boolean> {
    const now = Date.now();
    if (this.get(key, 'budget', now)) return false;
    this.entries.set(key, { kind: 'budget', value, expireAt });
    return true;
  }

  async has(key: string): Promise<boolean> {
    return this.get(key, 'budget', Date.now()) !== undefined;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
  }
}
