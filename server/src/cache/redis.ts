/**
 * The Redis connection. Commands fail fast while Redis is down (no offline queue) so callers can
 * fall back at once instead of stalling requests.
 */
import Redis from 'ioredis';

/** Opens a Redis client for `url`; it connects in the background and reconnects forever. */
export function openRedis(url: string): Redis {
  return new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    retryStrategy: (times) => Math.min(times * 200, 5_000),
  });
}

/** Resolves when Redis answers PING, rejects otherwise (for /ready). */
export async function pingRedis(redis: Redis): Promise<void> {
  const answer = await redis.ping();
  if (answer !== 'PONG') throw new Error(`unexpected PING answer ${String(answer)}`);
}
