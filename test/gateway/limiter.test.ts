import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MemoryLimiterStore,
  RedisLimiterStore,
  type LimiterStore,
  type LimitOp,
} from '../../server/platform/rate-limit/index.js';
import { REDIS_TEST_URL, services } from '../harness.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0); // bucket-aligned

const rpm = (key: string, limit: number, cost = 1): LimitOp => ({
  kind: 'window',
  key,
  limit,
  windowMs: 60_000,
  bucketMs: 1000,
  cost,
});

function suite(name: string, make: () => Promise<{ a: LimiterStore; b: LimiterStore; done: () => Promise<void> }>) {
  describe(name, () => {
    let a: LimiterStore;
    let b: LimiterStore;
    let done: () => Promise<void>;
    beforeAll(async () => {
      ({ a, b, done } = await make());
    });
    afterAll(async () => done?.());

    it('a window admits exactly its limit under concurrency, from two stores sharing state', async () => {
      const key = `w:${randomUUID()}`;
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, i) => (i % 2 ? a : b).acquire([rpm(key, 100)], randomUUID(), T0 + (i % 50))),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(100);
      const refused = results.find((r) => !r.ok)!;
      expect(refused.failed).toBe(0);
      // The oldest bucket (T0) leaves a 60 s window after 61 buckets: never early.
      expect(refused.retryAt).toBe(T0 + 61_000);
      expect((await a.acquire([rpm(key, 100)], 'x', T0 + 60_999)).ok).toBe(false);
      expect((await a.acquire([rpm(key, 100)], 'x', T0 + 61_000)).ok).toBe(true);
    });

    it('never admits more than the limit in any rolling minute (sliding across buckets)', async () => {
      const key = `w:${randomUUID()}`;
      let admitted: number[] = [];
      for (let t = 0; t < 180_000; t += 250)
        if ((await a.acquire([rpm(key, 10)], randomUUID(), T0 + t)).ok) admitted.push(t);
      admitted = admitted.sort((x, y) => x - y);
      for (let i = 0; i + 10 < admitted.length; i++)
        expect(admitted[i + 10]! - admitted[i]!).toBeGreaterThanOrEqual(60_000);
      expect(admitted.length).toBeGreaterThanOrEqual(20);
    });

    it('is all-or-nothing: a refused op consumes nothing from the others', async () => {
      const k1 = `w:${randomUUID()}`;
      const k2 = `w:${randomUUID()}`;
      expect((await a.acquire([rpm(k2, 1)], 'l0', T0)).ok).toBe(true);
      const r = await a.acquire([rpm(k1, 5), rpm(k2, 1)], 'l1', T0);
      expect(r.ok).toBe(false);
      expect(r.failed).toBe(1);
      expect(r.states[0]!.used).toBe(0);
      const again = await a.acquire([rpm(k1, 5)], 'l2', T0);
      expect(again.states[0]!.used).toBe(1);
    });

    it('settles a token reservation in the bucket it was taken from', async () => {
      const key = `t:${randomUUID()}`;
      const r = await a.acquire([rpm(key, 1000, 800)], 'l', T0);
      expect(r.ok).toBe(true);
      expect((await a.acquire([rpm(key, 1000, 300)], 'm', T0)).ok).toBe(false);
      await a.adjust([{ kind: 'window', key, bucket: r.buckets[0], delta: -700 }]);
      expect((await b.acquire([rpm(key, 1000, 300)], 'm', T0)).ok).toBe(true);
    });

    it('concurrency leases: limit at once, freed on release, expire on their own', async () => {
      const key = `c:${randomUUID()}`;
      const op: LimitOp = { kind: 'concurrency', key, limit: 2, leaseMs: 10_000 };
      expect((await a.acquire([op], 'l1', T0)).ok).toBe(true);
      expect((await b.acquire([op], 'l2', T0)).ok).toBe(true);
      const third = await a.acquire([op], 'l3', T0);
      expect(third.ok).toBe(false);
      await a.release([key], 'l1');
      expect((await a.acquire([op], 'l3', T0)).ok).toBe(true);
      expect((await a.acquire([op], 'l4', T0 + 5000)).ok).toBe(false);
      // Both leases expire 10 s after they were taken (a crashed instance cannot hold slots).
      expect((await a.acquire([op], 'l4', T0 + 10_001)).ok).toBe(true);
    });

    it('budgets: reserved up front, settled after, primed once from the ledger', async () => {
      const key = `b:${randomUUID()}`;
      const end = T0 + 3_600_000;
      expect(await a.prime(key, 900, end)).toBe(true);
      expect(await b.prime(key, 0, end)).toBe(false); // already there: not overwritten
      expect(await a.has(key)).toBe(true);
      const op = (cost: number): LimitOp => ({ kind: 'budget', key, limit: 1000, periodEndMs: end, cost });
      const r = await a.acquire([op(100)], 'x', T0);
      expect(r.ok).toBe(true);
      expect(r.states[0]!.used).toBe(1000);
      const refused = await b.acquire([op(1)], 'y', T0);
      expect(refused.ok).toBe(false);
      expect(refused.retryAt).toBe(end);
      await a.adjust([{ kind: 'budget', key, delta: -60 }]); // used 40 of the 100 reserved
      expect((await b.acquire([op(60)], 'y', T0)).ok).toBe(true);
      expect((await b.acquire([op(1)], 'z', T0)).ok).toBe(false);
    });
  });
}

suite('memory', async () => {
  const m = new MemoryLimiterStore();
  return { a: m, b: m, done: () => m.close() };
});

if (services.redis) {
  suite('redis (two instances sharing one Redis)', async () => {
    const prefix = `test:${randomUUID()}:rl:`;
    const r1 = new Redis(REDIS_TEST_URL);
    const r2 = new Redis(REDIS_TEST_URL);
    return {
      a: new RedisLimiterStore(r1, prefix),
      b: new RedisLimiterStore(r2, prefix),
      done: async () => {
        const keys = await r1.keys(`${prefix}*`);
        if (keys.length) await r1.del(...keys);
        r1.disconnect();
        r2.disconnect();
      },
    };
  });
} else {
  describe.skip('redis limiter — skipped: Redis not reachable', () => undefined);
}
