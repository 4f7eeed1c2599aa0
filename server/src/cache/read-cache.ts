/**
 * Cache-aside for reads that are frequent and change rarely, in Redis (shared by every replica)
 * or, on the embedded default, an in-process LRU. Invalidation uses versioned keys: every value
 * key embeds the current generation of its group (`<prefix><scope>:<group>:g`), read in the same
 * round trip as the value, and a write path bumps the generation after its COMMIT. A value loaded
 * before a write but stored after it lands under the old generation and is never read again, so
 * no interleaving of readers and writers on any replica can resurrect a stale value, and an
 * invalidation is effective on every replica as soon as the bump returns. Scopes are tenant ids
 * taken from credentials (or `global` for data that belongs to no tenant), so a key always names
 * the organization whose value it holds.
 *
 * A cache failure never fails a request: a read error reads through to the database, a write
 * error is dropped, and a failed bump is retried in the background while this process bypasses
 * the group (docs/architecture.md §5); each is counted by the observer.
 */
import { createHash } from 'node:crypto';
import type Redis from 'ioredis';

/** A named cache and the invalidation group its generation belongs to. */
export interface CacheDefinition {
  /** Metric label and part of the key. */
  name: string;
  /** Caches sharing a group are invalidated together (one generation per scope and group). */
  group: string;
}

/** Where values live; every method may reject (the cache treats that as a miss). */
export interface CacheStore {
  /** The generation stored at `genKey` (`0` when absent) and the value at `prefix + gen + suffix`, in one round trip. */
  read(genKey: string, prefix: string, suffix: string): Promise<{ gen: string; value: string | null }>;
  /** Stores a value for `ttlSeconds`. */
  write(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Advances a generation: every value stored under an older one becomes unreachable. */
  bump(genKey: string): Promise<void>;
}

/** Counts what the cache does, per cache name. */
export interface CacheObserver {
  hit(cache: string): void;
  miss(cache: string): void;
  error(cache: string, operation: 'read' | 'write' | 'invalidate'): void;
}

/** The key prefix of every cache key (Redis is shared with rate limits and other deployments' tests). */
export const CACHE_KEY_PREFIX = 'audit:cache:';

/** A short, collision-resistant key part for arbitrary arguments (never the raw value). */
export function digestKey(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('base64url');
}

/** Options of {@link ReadCache}. */
export interface ReadCacheOptions {
  /** Seconds a value may be served after it was stored; 0 turns the cache off. */
  ttlSeconds: number;
  /** Key prefix (default {@link CACHE_KEY_PREFIX}); tests give each run its own. */
  prefix?: string;
  /** How often a failed invalidation is retried (ms). */
  retryMs?: number;
}

/** Cache-aside reads with versioned-key invalidation; see the module comment. */
export class ReadCache {
  private readonly prefix: string;
  /** Groups whose bump failed: read through until it succeeds. */
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly store: CacheStore | null,
    private readonly options: ReadCacheOptions,
    private readonly observer: CacheObserver,
  ) {
    this.prefix = options.prefix ?? CACHE_KEY_PREFIX;
  }

  /** Whether values are cached at all. */
  get enabled(): boolean {
    return this.store !== null && this.options.ttlSeconds > 0;
  }

  private genKey(group: string, scope: string): string {
    return `${this.prefix}${scope}:${group}:g`;
  }

  /**
   * The cached value of (`cache`, `scope`, `key`), or `load()`'s result, stored for the TTL.
   * Errors of `load` propagate and are never cached.
   */
  async getOrLoad<T>(cache: CacheDefinition, scope: string, key: string, load: () => Promise<T>): Promise<T> {
    const store = this.store;
    const genKey = this.genKey(cache.group, scope);
    if (!store || this.options.ttlSeconds <= 0 || this.pending.has(genKey)) return load();
    const prefix = `${this.prefix}${scope}:${cache.group}:`;
    const suffix = `:${cache.name}:${key}`;
    let gen: string;
    try {
      const found = await store.read(genKey, prefix, suffix);
      if (found.value !== null) {
        this.observer.hit(cache.name);
        return JSON.parse(found.value) as T;
      }
      gen = found.gen;
    } catch {
      this.observer.error(cache.name, 'read');
      return load();
    }
    this.observer.miss(cache.name);
    const value = await load();
    if (value !== undefined) {
      store.write(prefix + gen + suffix, JSON.stringify(value), this.options.ttlSeconds).catch(() => this.observer.error(cache.name, 'write'));
    }
    return value;
  }

  /**
   * Makes every value of `group` in `scope` unreachable on every replica; call it after the
   * write's COMMIT. Never rejects: a failure is counted and retried until it succeeds, and this
   * process reads through meanwhile.
   */
  async invalidate(group: string, scope: string): Promise<void> {
    if (!this.store || this.options.ttlSeconds <= 0) return;
    const genKey = this.genKey(group, scope);
    try {
      await this.store.bump(genKey);
      const timer = this.pending.get(genKey);
      if (timer) clearInterval(timer);
      this.pending.delete(genKey);
    } catch {
      this.observer.error(group, 'invalidate');
      if (this.pending.has(genKey)) return;
      const store = this.store;
      const timer = setInterval(() => {
        store.bump(genKey).then(
          () => {
            clearInterval(timer);
            this.pending.delete(genKey);
          },
          () => this.observer.error(group, 'invalidate'),
        );
      }, this.options.retryMs ?? 500);
      timer.unref();
      this.pending.set(genKey, timer);
    }
  }

  /** Stops background retries (shutdown). */
  close(): void {
    for (const timer of this.pending.values()) clearInterval(timer);
    this.pending.clear();
  }
}

/** Reads the generation and the value under it atomically (one round trip). */
const READ_SCRIPT = `local g = redis.call('GET', KEYS[1]) or '0'
return {g, redis.call('GET', ARGV[1] .. g .. ARGV[2])}`;

/** Values in Redis, shared by every replica. */
export class RedisCacheStore implements CacheStore {
  constructor(private readonly redis: Redis) {
    if (!('auditCacheRead' in redis)) redis.defineCommand('auditCacheRead', { numberOfKeys: 1, lua: READ_SCRIPT });
  }

  async read(genKey: string, prefix: string, suffix: string): Promise<{ gen: string; value: string | null }> {
    const r = this.redis as Redis & { auditCacheRead(key: string, prefix: string, suffix: string): Promise<[string, string | null]> };
    const [gen, value] = await r.auditCacheRead(genKey, prefix, suffix);
    return { gen, value };
  }

  async write(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.redis.set(key, value, 'EX', ttlSeconds);
  }

  async bump(genKey: string): Promise<void> {
    await this.redis.incr(genKey);
  }
}

/** An in-process LRU (the embedded default: one process, so nothing to share). */
export class MemoryCacheStore implements CacheStore {
  private readonly values = new Map<string, { value: string; expires: number }>();
  private readonly gens = new Map<string, number>();

  constructor(private readonly maxEntries: number) {}

  read(genKey: string, prefix: string, suffix: string): Promise<{ gen: string; value: string | null }> {
    const gen = String(this.gens.get(genKey) ?? 0);
    const key = prefix + gen + suffix;
    const entry = this.values.get(key);
    if (!entry) return Promise.resolve({ gen, value: null });
    this.values.delete(key);
    if (entry.expires <= Date.now()) return Promise.resolve({ gen, value: null });
    this.values.set(key, entry); // most recently used last
    return Promise.resolve({ gen, value: entry.value });
  }

  write(key: string, value: string, ttlSeconds: number): Promise<void> {
    this.values.delete(key);
    this.values.set(key, { value, expires: Date.now() + ttlSeconds * 1000 });
    while (this.values.size > this.maxEntries) this.values.delete(this.values.keys().next().value!);
    return Promise.resolve();
  }

  bump(genKey: string): Promise<void> {
    this.gens.set(genKey, (this.gens.get(genKey) ?? 0) + 1);
    return Promise.resolve();
  }

  /** Entries held (for tests). */
  get size(): number {
    return this.values.size;
  }
}
