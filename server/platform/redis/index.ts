import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Optional Redis: one connection for commands/publishing and one for subscriptions. Failures are
 * logged and never turn into "allow": callers fall back to the database.
 */
export interface RedisHandle {
  prefix: string;
  cmd: Redis;
  sub: Redis;
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
  close(): Promise<void>;
}

export async function connectRedis(url: string, prefix: string, log: Logger): Promise<RedisHandle> {
  const opts = {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2000,
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
  };
  // Loaded only when REDIS_URL is set.
  const { Redis } = await import('ioredis');
  const cmd = new Redis(url, opts);
  const sub = new Redis(url, { ...opts, enableOfflineQueue: true, maxRetriesPerRequest: null });
  let warned = false;
  for (const c of [cmd, sub])
    c.on('error', (e: Error) => {
      if (!warned) log.warn({ err: e.message }, 'Redis unreachable; the database decides until it is back');
      warned = true;
    });
  cmd.on('ready', () => (warned = false));
  await Promise.all([cmd.connect(), sub.connect()]).catch((e: Error) => {
    log.warn({ err: e.message }, 'Redis not reachable at start; continuing with the database as the source of truth');
  });
  const handlers = new Map<string, (m: string) => void>();
  sub.on('message', (channel: string, message: string) => handlers.get(channel)?.(message));
  return {
    prefix,
    cmd,
    sub,
    async publish(channel, message) {
      try {
        await cmd.publish(prefix + channel, message);
      } catch (e) {
        log.warn({ err: (e as Error).message, channel }, 'Redis publish failed');
      }
    },
    async subscribe(channel, onMessage) {
      handlers.set(prefix + channel, onMessage);
      try {
        await sub.subscribe(prefix + channel);
      } catch (e) {
        log.warn({ err: (e as Error).message, channel }, 'Redis subscribe failed; will retry on reconnect');
      }
    },
    async close() {
      cmd.disconnect();
      sub.disconnect();
    },
  };
}
