import type { RedisHandle } from '../redis/index.js';
import { MemoryLimiterStore } from './memory.js';
import { RedisLimiterStore } from './redis.js';
import type { LimiterStore } from './types.js';

export type { AcquireResult, Adjustment, LimitOp, LimiterStore, OpState } from './types.js';
export { MemoryLimiterStore, windowSpan } from './memory.js';
export { RedisLimiterStore } from './redis.js';

/** In memory on one instance; in Redis (shared by every instance) when REDIS_URL is set. */
export function createLimiterStore(redis: RedisHandle | null): LimiterStore {
  return redis ? new RedisLimiterStore(redis.cmd, `${redis.prefix}rl:`) : new MemoryLimiterStore();
}

/** `x-ratelimit-reset-*` value in the OpenAI form: `1s`, `6m0s`, `250ms`. */
export function formatReset(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0s';
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${r}s`;
}
