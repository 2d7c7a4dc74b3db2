/**
 * The atomic limiter. A request asks for several limits at once (requests per minute of the user,
 * of the key, of the model; tokens per minute; concurrent requests; token budgets) and gets all of
 * them or none: no partial consumption, no check-then-act race, in memory and in Redis alike.
 *
 * - `window`: a rolling window of `windowMs` split into buckets of `bucketMs`. The sum over the
 *   window's buckets (the current one plus the `windowMs / bucketMs` before it — never less than
 *   the full window) plus `cost` must stay within `limit`. `cost` is 1 for a request, the reserved
 *   tokens for a token limit (settled later with `adjust`).
 * - `concurrency`: at most `limit` leases at once; each lease expires after `leaseMs` so a crashed
 *   instance cannot hold slots forever.
 * - `budget`: a counter for one period (a day, a month) that expires at `periodEndMs`; `cost` is
 *   reserved up front and settled with `adjust` once the real figure is known.
 */
export type LimitOp =
  | { kind: 'window'; key: string; limit: number; windowMs: number; bucketMs: number; cost: number }
  | { kind: 'concurrency'; key: string; limit: number; leaseMs: number }
  | { kind: 'budget'; key: string; limit: number; periodEndMs: number; cost: number };

export interface OpState {
  /** Used after this request (or at the time of refusal). */
  used: number;
  limit: number;
  /** When the consumption that blocks (or the oldest counted) leaves the window; ms since epoch. */
  resetAt: number;
}

export interface AcquireResult {
  ok: boolean;
  /** Index of the first op that refused. */
  failed?: number;
  /** When the refused op could succeed again (ms since epoch). */
  retryAt?: number;
  states: OpState[];
  /** Where window costs were recorded (bucket index per op), for `adjust`. */
  buckets: number[];
}

export interface Adjustment {
  kind: 'window' | 'budget';
  key: string;
  /** Bucket index returned by `acquire` (windows only). */
  bucket?: number;
  delta: number;
}

export interface LimiterStore {
  readonly kind: 'memory' | 'redis';
  acquire(ops: LimitOp[], leaseId: string, now?: number): Promise<AcquireResult>;
  /** Frees the concurrency leases of a request. */
  release(keys: string[], leaseId: string): Promise<void>;
  /** Settles reservations (may be negative). A bucket that has left its window is ignored. */
  adjust(adjustments: Adjustment[]): Promise<void>;
  /** Sets a budget counter when it does not exist yet (seeded from recorded usage). Returns true when set. */
  prime(key: string, value: number, expireAt: number): Promise<boolean>;
  /** True when a budget counter exists. */
  has(key: string): Promise<boolean>;
  close(): Promise<void>;
}
