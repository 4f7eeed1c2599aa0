/**
 * The read cache on its own, over the in-process LRU and (with TEST_REDIS_URL) Redis: hits and
 * misses, versioned-key invalidation under a racing reader, tenant scopes, and failures that
 * never fail a read.
 */
import { randomBytes } from 'node:crypto';
import { MemoryCacheStore, ReadCache, RedisCacheStore, type CacheObserver, type CacheStore } from '../../src/cache/read-cache';
import { openRedis } from '../../src/cache/redis';
import { testRedisUrl } from '../helpers/backends';

const STATS = { name: 'stats', group: 'log' };
const EVENT = { name: 'event', group: 'log' };

/** Counts observer calls as `cache:result`. */
function counter(): CacheObserver & { counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  const inc = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
  return { counts, hit: (c) => inc(`${c}:hit`), miss: (c) => inc(`${c}:miss`), error: (c, op) => inc(`${c}:error:${op}`) };
}

/** Resolves when `check` holds, polling (writes to the store are fire-and-forget). */
async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition never held');
}

const redisUrl = testRedisUrl();
type Made = { store: CacheStore; close: () => void };
const stores: Array<[string, () => Promise<Made>]> = [
  ['memory', () => Promise.resolve({ store: new MemoryCacheStore(1000), close: () => undefined })],
  ...(redisUrl
    ? ([
        [
          'redis',
          async () => {
            const redis = openRedis(redisUrl);
            // Commands fail until the connection is ready (no offline queue): wait for it.
            if (redis.status !== 'ready') await new Promise((r) => redis.once('ready', r));
            return { store: new RedisCacheStore(redis), close: () => redis.disconnect() };
          },
        ],
      ] as Array<[string, () => Promise<Made>]>)
    : []),
];

/** A store whose fire-and-forget writes can be awaited. */
function tracked(inner: CacheStore): CacheStore & { flush: () => Promise<void> } {
  const writes = new Set<Promise<void>>();
  return {
    read: (g, p, s) => inner.read(g, p, s),
    bump: (g) => inner.bump(g),
    write: (k, v, t) => {
      const w = inner.write(k, v, t);
      writes.add(w);
      return w.finally(() => writes.delete(w));
    },
    flush: async () => {
      await Promise.all([...writes]);
    },
  };
}

describe.each(stores)('read cache over %s', (_name, make) => {
  let store: ReturnType<typeof tracked>;
  let close: () => void;
  let cache: ReadCache;
  let obs: ReturnType<typeof counter>;
  beforeEach(async () => {
    const made = await make();
    store = tracked(made.store);
    close = made.close;
    obs = counter();
    // A prefix per test: Redis db 15 is shared by every test run.
    cache = new ReadCache(store, { ttlSeconds: 300, prefix: `test:cache:${randomBytes(6).toString('hex')}:` }, obs);
  });
  afterEach(() => {
    cache.close();
    close();
  });

  /** A cached read that records whether it reached the loader. */
  const read = async (scope: string, key: string, value: unknown, cacheDef = STATS) => {
    let loaded = false;
    const got = await cache.getOrLoad(cacheDef, scope, key, () => {
      loaded = true;
      return Promise.resolve(value);
    });
    await store.flush();
    return { got, loaded };
  };

  it('loads on a miss, then answers from the cache, counting both', async () => {
    expect(await read('org-a', 'k', { total: 1 })).toEqual({ got: { total: 1 }, loaded: true });
    expect(await read('org-a', 'k', { total: 2 })).toEqual({ got: { total: 1 }, loaded: false });
    expect(obs.counts).toEqual({ 'stats:miss': 1, 'stats:hit': 1 });
  });

  it('never serves one scope’s value to another with the same key', async () => {
    await read('org-a', 'same-id', 'a');
    expect(await read('org-b', 'same-id', 'b')).toEqual({ got: 'b', loaded: true });
    expect((await read('org-a', 'same-id', 'x')).got).toBe('a');
    expect((await read('org-b', 'same-id', 'x')).got).toBe('b');
  });

  it('invalidates every cache of a group in one scope, and only there', async () => {
    await read('org-a', 'k', 1);
    await read('org-a', 'e', 1, EVENT);
    await read('org-b', 'k', 1);
    expect(await read('org-a', 'k', 0)).toEqual({ got: 1, loaded: false });
    await cache.invalidate('log', 'org-a');
    expect(await read('org-a', 'k', 2)).toEqual({ got: 2, loaded: true });
    expect(await read('org-a', 'e', 2, EVENT)).toEqual({ got: 2, loaded: true });
    expect(await read('org-b', 'k', 2)).toEqual({ got: 1, loaded: false });
  });

  it('never stores a value loaded before an invalidation where a later read finds it', async () => {
    // A reader loads the old value, a writer commits and invalidates, then the reader stores.
    let readDone!: () => void;
    let writeDone!: () => void;
    const afterRead = new Promise<void>((r) => (readDone = r));
    const afterWrite = new Promise<void>((r) => (writeDone = r));
    const watched: CacheStore = {
      read: async (g, p, s) => {
        const r = await store.read(g, p, s);
        readDone();
        return r;
      },
      write: async (k, v, t) => {
        await store.write(k, v, t);
        writeDone();
      },
      bump: (g) => store.bump(g),
    };
    const racing = new ReadCache(watched, { ttlSeconds: 300, prefix: `test:cache:${randomBytes(6).toString('hex')}:` }, obs);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = racing.getOrLoad(STATS, 'org-a', 'race', async () => {
      await gate;
      return 'stale';
    });
    await afterRead;
    await racing.invalidate('log', 'org-a');
    release();
    expect(await slow).toBe('stale');
    await afterWrite;
    let loaded = false;
    const next = await racing.getOrLoad(STATS, 'org-a', 'race', () => {
      loaded = true;
      return Promise.resolve('fresh');
    });
    expect({ next, loaded }).toEqual({ next: 'fresh', loaded: true });
  });

  it('does not cache a failed load', async () => {
    await expect(cache.getOrLoad(STATS, 'org-a', 'fail', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await read('org-a', 'fail', 'ok')).toEqual({ got: 'ok', loaded: true });
  });
});

describe('read cache failures', () => {
  it('reads through when the store fails, counting the error, and never rejects an invalidation', async () => {
    const redis = openRedis('redis://127.0.0.1:1'); // nothing listens: every command fails at once
    redis.on('error', () => undefined);
    const obs = counter();
    const cache = new ReadCache(new RedisCacheStore(redis), { ttlSeconds: 300, retryMs: 50 }, obs);
    try {
      expect(await cache.getOrLoad(STATS, 'org-a', 'k', () => Promise.resolve(7))).toBe(7);
      expect(obs.counts['stats:error:read']).toBe(1);
      await expect(cache.invalidate('log', 'org-a')).resolves.toBeUndefined();
      expect(obs.counts['log:error:invalidate']).toBeGreaterThanOrEqual(1);
    } finally {
      cache.close();
      redis.disconnect();
    }
  });

  it('bypasses a group whose invalidation failed until a retry succeeds', async () => {
    const memory = new MemoryCacheStore(100);
    let failBumps = true;
    const store: CacheStore = {
      read: (g, p, s) => memory.read(g, p, s),
      write: (k, v, t) => memory.write(k, v, t),
      bump: (g) => (failBumps ? Promise.reject(new Error('down')) : memory.bump(g)),
    };
    const obs = counter();
    const cache = new ReadCache(store, { ttlSeconds: 300, retryMs: 20 }, obs);
    try {
      await cache.getOrLoad(STATS, 'org-a', 'k', () => Promise.resolve('old'));
      expect(await cache.getOrLoad(STATS, 'org-a', 'k', () => Promise.resolve('unused'))).toBe('old');
      await cache.invalidate('log', 'org-a'); // fails: the store still holds 'old' under the current generation
      expect(await cache.getOrLoad(STATS, 'org-a', 'k', () => Promise.resolve('new'))).toBe('new');
      failBumps = false;
      // Once a retry has bumped the generation, caching resumes; 'old' is never served again.
      await until(async () => {
        let loaded = false;
        const v = await cache.getOrLoad(STATS, 'org-a', 'k', () => {
          loaded = true;
          return Promise.resolve('newer');
        });
        expect(v).not.toBe('old');
        return !loaded;
      });
    } finally {
      cache.close();
    }
  });

  it('turns off at TTL 0 and evicts the least recently used entry past its size', async () => {
    const off = new ReadCache(new MemoryCacheStore(10), { ttlSeconds: 0 }, counter());
    expect(off.enabled).toBe(false);
    const store = new MemoryCacheStore(2);
    const cache = new ReadCache(store, { ttlSeconds: 300 }, counter());
    let loads = 0;
    const get = (k: string) => cache.getOrLoad(STATS, 'o', k, () => Promise.resolve(++loads));
    await get('a');
    await get('b');
    await get('a'); // a is now the most recently used
    await get('c'); // evicts b
    expect(store.size).toBe(2);
    const before = loads;
    await get('a');
    expect(loads).toBe(before);
    await get('b');
    expect(loads).toBe(before + 1);
  });
});
