/**
 * The Redis connection: one Redis at `REDIS_URL`, or the primary of a Sentinel group
 * (`REDIS_SENTINELS`, docs/operations.md "Redis Sentinel"). Commands fail fast while Redis is
 * down (no offline queue) so callers can fall back at once instead of stalling requests.
 */
import Redis, { type RedisOptions } from 'ioredis';

/** A Redis Sentinel group: the sentinels to ask, and the name they monitor the primary under. */
export interface RedisSentinelEndpoint {
  /**
   * `redis[s]://[user:password@]host[:port][/db]`: the credentials, database and TLS of the data
   * nodes (`rediss:` = TLS to data nodes and sentinels alike); host and port are not used.
   */
  url: string;
  /** The sentinels, any one of which names the current primary. */
  sentinels: Array<{ host: string; port: number }>;
  /** The name the sentinels monitor the primary under (`sentinel monitor <name> …`). */
  masterName: string;
  /** The sentinels' own `requirepass`, when set. */
  sentinelPassword?: string | undefined;
}

/** Where Redis is: a URL, or a Sentinel group. */
export type RedisEndpoint = string | RedisSentinelEndpoint;

/** The Redis settings of the configuration (config.ts). */
export interface RedisSettings {
  REDIS_URL?: string | undefined;
  REDIS_SENTINELS?: string[] | undefined;
  REDIS_SENTINEL_MASTER: string;
  REDIS_SENTINEL_PASSWORD?: string | undefined;
}

/** The endpoint the configuration names, or undefined without `REDIS_URL`. */
export function redisEndpointOf(config: RedisSettings): RedisEndpoint | undefined {
  if (!config.REDIS_URL) return undefined;
  if (!config.REDIS_SENTINELS || config.REDIS_SENTINELS.length === 0) return config.REDIS_URL;
  return {
    url: config.REDIS_URL,
    sentinels: config.REDIS_SENTINELS.map(parseHostPort),
    masterName: config.REDIS_SENTINEL_MASTER,
    sentinelPassword: config.REDIS_SENTINEL_PASSWORD,
  };
}

/** `host:port` (a bracketed IPv6 host too) → `{ host, port }`; the port defaults to 26379. */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/.exec(text.trim());
  const port = m?.[3] === undefined ? 26379 : Number(m[3]);
  if (!m || port < 1 || port > 65535) throw new RangeError(`"${text}" is not host:port`);
  return { host: m[1] ?? m[2]!, port };
}

/**
 * ioredis options for an endpoint (BullMQ takes the same): a URL is passed as its parts; a
 * Sentinel group becomes ioredis' sentinel mode, which asks the sentinels for the primary and
 * reconnects to the new one after a failover (the old primary, now a replica, answers READONLY
 * and is left: `reconnectOnError`).
 */
export function redisConnectionOptions(endpoint: RedisEndpoint): RedisOptions {
  const url = new URL(typeof endpoint === 'string' ? endpoint : endpoint.url);
  const tls = url.protocol === 'rediss:';
  const db = Number(url.pathname.replace(/^\//, '') || '0');
  const auth = {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    db,
  };
  if (typeof endpoint === 'string') {
    return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379), ...auth, ...(tls ? { tls: {} } : {}) };
  }
  return {
    sentinels: endpoint.sentinels,
    name: endpoint.masterName,
    ...auth,
    ...(endpoint.sentinelPassword ? { sentinelPassword: endpoint.sentinelPassword } : {}),
    ...(tls ? { tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
    // A write that reaches a demoted primary: reconnect, which asks the sentinels again.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    sentinelRetryStrategy: (times) => Math.min(times * 200, 5_000),
  };
}

/** Opens a Redis client for `endpoint`; it connects in the background and reconnects forever. */
export function openRedis(endpoint: RedisEndpoint): Redis {
  return new Redis({
    ...redisConnectionOptions(endpoint),
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
