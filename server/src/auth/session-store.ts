/**
 * Where sign-in sessions live (the library's "secondary storage"): Redis when REDIS_URL is set, so
 * every replica sees a session, and its revocation, at once; an in-process map on the embedded
 * default (one process, sessions end with it). Keys are namespaced under `audit:auth:`.
 */
import type Redis from 'ioredis';

/** The storage interface the sign-in library calls (TTLs in seconds). */
export interface SessionStore {
  get(key: string): Promise<string | null>;
  getAndDelete(key: string): Promise<string | null>;
  increment(key: string, ttlSeconds: number): Promise<number>;
  set(key: string, value: string, ttlSeconds?: number): Promise<void>;
  delete(key: string): Promise<void>;
}

const PREFIX = 'audit:auth:';

/** Sessions in Redis, shared by every replica. Errors propagate: a session that cannot be read is not valid. */
export function redisSessionStore(redis: Redis, prefix = PREFIX): SessionStore {
  return {
    get: (key) => redis.get(prefix + key),
    getAndDelete: (key) => redis.getdel(prefix + key),
    async increment(key, ttlSeconds) {
      // The TTL is set only when the counter is created: a fixed window from the first hit.
      const res = await redis.multi().incr(prefix + key).expire(prefix + key, Math.max(1, Math.ceil(ttlSeconds)), 'NX').exec();
      const [err, value] = res?.[0] ?? [new Error('redis transaction aborted'), null];
      if (err) throw err;
      return Number(value);
    },
    async set(key, value, ttlSeconds) {
      if (ttlSeconds !== undefined && ttlSeconds > 0) await redis.set(prefix + key, value, 'EX', Math.ceil(ttlSeconds));
      else await redis.set(prefix + key, value);
    },
    async delete(key) {
      await redis.del(prefix + key);
    },
  };
}

/** Sessions in this process (the embedded default), with expiry. */
export function memorySessionStore(now: () => number = Date.now): SessionStore {
  const entries = new Map<string, { value: string; expires: number }>();
  const read = (key: string): string | null => {
    const e = entries.get(key);
    if (!e) return null;
    if (e.expires <= now()) {
      entries.delete(key);
      return null;
    }
    return e.value;
  };
  const sweep = () => {
    if (entries.size < 100_000) return;
    const t = now();
    for (const [k, e] of entries) if (e.expires <= t) entries.delete(k);
  };
  return {
    get: (key) => Promise.resolve(read(key)),
    getAndDelete(key) {
      const v = read(key);
      entries.delete(key);
      return Promise.resolve(v);
    },
    increment(key, ttlSeconds) {
      const current = read(key);
      const next = Number(current ?? 0) + 1;
      const expires = current === null ? now() + ttlSeconds * 1000 : entries.get(key)!.expires;
      entries.set(key, { value: String(next), expires });
      return Promise.resolve(next);
    },
    set(key, value, ttlSeconds) {
      sweep();
      entries.set(key, { value, expires: ttlSeconds !== undefined && ttlSeconds > 0 ? now() + ttlSeconds * 1000 : Number.POSITIVE_INFINITY });
      return Promise.resolve();
    },
    delete(key) {
      entries.delete(key);
      return Promise.resolve();
    },
  };
}
