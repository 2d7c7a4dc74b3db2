import type { Redis } from 'ioredis';
import { AppError } from '../http/errors.js';
import type { AcquireResult, Adjustment, LimitOp, LimiterStore, OpState } from './types.js';

/**
 * The shared store: one Lua script checks every op and, only if all pass, applies them. Redis runs
 * a script atomically, so instances sharing a Redis share the limits exactly. Windows are hashes
 * (bucket → cost), concurrency is a sorted set of leases scored by expiry, budgets are counters.
 * When Redis does not answer, requests are refused (503): a limit never silently turns into "allow".
 */

const ACQUIRE = `
local now = tonumber(ARGV[1])
local lease = ARGV[2]
local n = #KEYS
local out = {1, 0, 0}
local used, limits, resets, buckets, ok = {}, {}, {}, {}, {}
local failed = 0
local retry = 0
for i = 1, n do
  local a = 2 + (i - 1) * 5
  local kind = ARGV[a + 1]
  local limit = tonumber(ARGV[a + 2])
  local p1 = tonumber(ARGV[a + 3])
  local p2 = tonumber(ARGV[a + 4])
  local cost = tonumber(ARGV[a + 5])
  local u, reset, pass, r, bucket = 0, now, true, now, 0
  if kind == 'w' then
    local cur = math.floor(now / p2)
    local span = math.ceil(p1 / p2) + 1
    local first = cur - span + 1
    local h = redis.call('HGETALL', KEYS[i])
    local live = {}
    for j = 1, #h, 2 do
      local b = tonumber(h[j])
      local c = tonumber(h[j + 1])
      if b < first then
        redis.call('HDEL', KEYS[i], h[j])
      else
        u = u + c
        live[#live + 1] = {b, c}
      end
    end
    table.sort(live, function(x, y) return x[1] < y[1] end)
    local oldest = cur
    if #live > 0 then oldest = live[1][1] end
    reset = (oldest + span) * p2
    pass = u + cost <= limit
    if not pass then
      local remaining = u
      r = -1
      for j = 1, #live do
        remaining = remaining - live[j][2]
        if remaining + cost <= limit then
          r = (live[j][1] + span) * p2
          break
        end
      end
    end
    bucket = cur
  elseif kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    u = redis.call('ZCARD', KEYS[i])
    pass = u + 1 <= limit
    if not pass then
      local soon = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
      r = now + 1000
      if #soon == 2 and tonumber(soon[2]) < r then r = tonumber(soon[2]) end
    end
    reset = r
  else
    u = tonumber(redis.call('GET', KEYS[i]) or '0')
    pass = u + cost <= limit
    reset = p1
    r = p1
  end
  used[i], limits[i], resets[i], buckets[i], ok[i] = u, limit, reset, bucket, pass
  if (not pass) and failed == 0 then
    failed = i
    retry = r
  end
end
if failed == 0 then
  for i = 1, n do
    local a = 2 + (i - 1) * 5
    local kind = ARGV[a + 1]
    local p1 = tonumber(ARGV[a + 3])
    local p2 = tonumber(ARGV[a + 4])
    local cost = tonumber(ARGV[a + 5])
    if kind == 'w' then
      local span = math.ceil(p1 / p2) + 1
      redis.call('HINCRBY', KEYS[i], string.format('%d', buckets[i]), cost)
      redis.call('PEXPIREAT', KEYS[i], string.format('%d', (buckets[i] + span) * p2))
      used[i] = used[i] + cost
    elseif kind == 'c' then
      redis.call('ZADD', KEYS[i], now + p1, lease)
      redis.call('PEXPIRE', KEYS[i], p1)
      used[i] = used[i] + 1
    else
      used[i] = redis.call('INCRBY', KEYS[i], cost)
      redis.call('PEXPIREAT', KEYS[i], string.format('%d', p1))
    end
  end
else
  out[1] = 0
  out[2] = failed
  out[3] = retry
end
for i = 1, n do
  out[#out + 1] = used[i]
  out[#out + 1] = limits[i]
  out[#out + 1] = resets[i]
  out[#out + 1] = buckets[i]
end
return out
`;

const ADJUST = `
for i = 1, #KEYS do
  local kind = ARGV[(i - 1) * 3 + 1]
  local bucket = ARGV[(i - 1) * 3 + 2]
  local delta = tonumber(ARGV[(i - 1) * 3 + 3])
  if kind == 'w' then
    if redis.call('HEXISTS', KEYS[i], bucket) == 1 then
      local v = redis.call('HINCRBY', KEYS[i], bucket, delta)
      if v < 0 then redis.call('HSET', KEYS[i], bucket, 0) end
    end
  else
    if redis.call('EXISTS', KEYS[i]) == 1 then
      local v = redis.call('INCRBY', KEYS[i], delta)
      if v < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
    end
  end
end
return 1
`;

type LimitRedis = Redis & {
  hridaLimitAcquire(numKeys: number, ...args: (string | number)[]): Promise<number[]>;
  hridaLimitAdjust(numKeys: number, ...args: (string | number)[]): Promise<number>;
};

function unavailable(e: unknown): AppError {
  return new AppError('service_unavailable', 'The rate limiter is unavailable; try again shortly', {
    reason: (e as Error).message?.slice(0, 120),
  });
}

export class RedisLimiterStore implements LimiterStore {
  readonly kind = 'redis' as const;
  private readonly r: LimitRedis;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    const r = redis as LimitRedis;
    if (typeof r.hridaLimitAcquire !== 'function') {
      r.defineCommand('hridaLimitAcquire', { lua: ACQUIRE });
      r.defineCommand('hridaLimitAdjust', { lua: ADJUST });
    }
    this.r = r;
  }

  async acquire(ops: LimitOp[], leaseId: string, now = Date.now()): Promise<AcquireResult> {
    if (ops.length === 0) return { ok: true, states: [], buckets: [] };
    const keys = ops.map((o) => this.prefix + o.key);
    const args: (string | number)[] = [now, leaseId];
    for (const o of ops) {
      if (o.kind === 'window') args.push('w', o.limit, o.windowMs, o.bucketMs, o.cost);
      else if (o.kind === 'concurrency') args.push('c', o.limit, o.leaseMs, 0, 1);
      else args.push('b', o.limit, o.periodEndMs, 0, o.cost);
    }
    let raw: number[];
    try {
      raw = await this.r.hridaLimitAcquire(keys.length, ...keys, ...args);
    } catch (e) {
      throw unavailable(e);
    }
    const states: OpState[] = [];
    const buckets: number[] = [];
    for (let i = 0; i < ops.length; i++) {
      const j = 3 + i * 4;
      states.push({ used: Number(raw[j]), limit: Number(raw[j + 1]), resetAt: Number(raw[j + 2]) });
      buckets.push(Number(raw[j + 3]));
    }
    if (Number(raw[0]) === 1) return { ok: true, states, buckets };
    const retry = Number(raw[2]);
    return {
      ok: false,
      failed: Number(raw[1]) - 1,
      retryAt: retry < 0 ? Number.POSITIVE_INFINITY : retry,
      states,
      buckets,
    };
  }

  async release(keys: string[], leaseId: string): Promise<void> {
    if (keys.length === 0) return;
    const p = this.r.multi();
    for (const k of keys) p.zrem(this.prefix + k, leaseId);
    await p.exec();
  }

  async adjust(adjustments: Adjustment[]): Promise<void> {
    const list = adjustments.filter((a) => a.delta !== 0);
    if (list.length === 0) return;
    const keys = list.map((a) => this.prefix + a.key);
    const args: (string | number)[] = [];
    for (const a of list) args.push(a.kind === 'window' ? 'w' : 'b', String(a.bucket ?? 0), Math.round(a.delta));
    await this.r.hridaLimitAdjust(keys.length, ...keys, ...args);
  }

  async prime(key: string, value: number, expireAt: number): Promise<boolean> {
    try {
      const r = await this.r.set(this.prefix + key, String(Math.round(value)), 'PXAT', expireAt, 'NX');
      return r === 'OK';
    } catch (e) {
      throw unavailable(e);
    }
  }

  async has(key: string): Promise<boolean> {
    try {
      return (await this.r.exists(this.prefix + key)) === 1;
    } catch (e) {
      throw unavailable(e);
    }
  }

  async close(): Promise<void> {}
}
