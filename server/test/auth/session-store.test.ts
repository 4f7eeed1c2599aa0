/**
 * The stores sign-in sessions live in: the in-process one (embedded default) on a clock the test
 * moves, and the Redis one on a real Redis (TEST_REDIS_URL), each key under a prefix of its own.
 */
import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { memorySessionStore, redisSessionStore, type SessionStore } from '../../src/auth/session-store';
import { testRedisUrl } from '../helpers/backends';

/** A clock the test moves by hand (milliseconds). */
function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('in-process session store', () => {
  let clock: ReturnType<typeof manualClock>;
  let store: SessionStore;
  beforeEach(() => {
    clock = manualClock();
    store = memorySessionStore(clock.now);
  });

  it('keeps a value for exactly its TTL: present 1 ms before, gone at the end', async () => {
    await store.set('s', 'v', 10);
    clock.advance(9_999);
    expect(await store.get('s')).toBe('v');
    clock.advance(1);
    expect(await store.get('s')).toBeNull();
    // An expired entry stays gone when the clock is put back: it was removed, not hidden.
    clock.advance(-5_000);
    expect(await store.get('s')).toBeNull();
  });

  it('keeps a value without TTL, or with TTL 0, for ever', async () => {
    await store.set('a', '1');
    await store.set('b', '2', 0);
    clock.advance(10 * 365 * 24 * 3600 * 1000);
    expect(await store.get('a')).toBe('1');
    expect(await store.get('b')).toBe('2');
  });

  it('answers null for a key never set', async () => {
    expect(await store.get('missing')).toBeNull();
    expect(await store.getAndDelete('missing')).toBeNull();
  });

  it('getAndDelete returns the value once', async () => {
    await store.set('k', 'v', 60);
    expect(await store.getAndDelete('k')).toBe('v');
    expect(await store.get('k')).toBeNull();
    expect(await store.getAndDelete('k')).toBeNull();
  });

  it('getAndDelete of an expired value answers null', async () => {
    await store.set('k', 'v', 1);
    clock.advance(1_000);
    expect(await store.getAndDelete('k')).toBeNull();
  });

  it('delete removes a value', async () => {
    await store.set('k', 'v');
    await store.delete('k');
    expect(await store.get('k')).toBeNull();
  });

  it('counts in a fixed window from the first increment, then starts again at 1', async () => {
    expect(await store.increment('c', 10)).toBe(1);
    clock.advance(6_000);
    // A later increment does not extend the window (its TTL is ignored).
    expect(await store.increment('c', 10)).toBe(2);
    expect(await store.get('c')).toBe('2');
    clock.advance(3_999);
    expect(await store.increment('c', 10)).toBe(3);
    clock.advance(1);
    expect(await store.get('c')).toBeNull();
    expect(await store.increment('c', 10)).toBe(1);
    clock.advance(9_999);
    expect(await store.get('c')).toBe('1');
  });

  it('sweeps expired entries once it holds 100,000, keeping live ones', async () => {
    await store.set('live', 'kept', 3_600);
    for (let i = 1; i < 100_000; i++) await store.set(`old-${i}`, 'x', 1);
    clock.advance(2_000);
    await store.set('trigger', 'y');
    expect(await store.get('live')).toBe('kept');
    // Put the clock back: a swept entry is gone, where one merely expired would be readable again.
    clock.advance(-2_000);
    expect(await store.get('old-1')).toBeNull();
    expect(await store.get('old-99999')).toBeNull();
  });

  it('does not sweep below 100,000 entries', async () => {
    for (let i = 1; i < 99_999; i++) await store.set(`old-${i}`, 'x', 1);
    clock.advance(2_000);
    // 99,998 entries: this set does not sweep, so with the clock put back they are readable.
    await store.set('trigger', 'y');
    clock.advance(-2_000);
    expect(await store.get('old-1')).toBe('x');
  });

  it('replaces a value and its TTL on set', async () => {
    await store.set('k', 'old', 1);
    await store.set('k', 'new', 100);
    clock.advance(50_000);
    expect(await store.get('k')).toBe('new');
  });
});

const redisUrl = testRedisUrl();
(redisUrl ? describe : describe.skip)(`Redis session store${redisUrl ? '' : ' [skipped: TEST_REDIS_URL is not set]'}`, () => {
  let redis: Redis;
  let prefix: string;
  let store: SessionStore;
  beforeAll(() => {
    redis = new Redis(redisUrl!);
  });
  afterAll(async () => {
    await redis.quit();
  });
  beforeEach(() => {
    // A prefix per test: concurrent runs (and mutants) share the Redis database.
    prefix = `test:sessions:${randomBytes(6).toString('hex')}:`;
    store = redisSessionStore(redis, prefix);
  });
  afterEach(async () => {
    const keys = await redis.keys(prefix + '*');
    if (keys.length > 0) await redis.del(...keys);
  });

  it('stores under its prefix with the TTL rounded up to whole seconds', async () => {
    await store.set('s', 'v', 1.2);
    expect(await redis.get(prefix + 's')).toBe('v');
    const ttl = await redis.pttl(prefix + 's');
    expect(ttl).toBeGreaterThan(1_000);
    expect(ttl).toBeLessThanOrEqual(2_000);
    expect(await store.get('s')).toBe('v');
  });

  it('stores without expiry when no TTL or TTL 0 is given', async () => {
    await store.set('a', '1');
    await store.set('b', '2', 0);
    expect(await redis.ttl(prefix + 'a')).toBe(-1);
    expect(await redis.ttl(prefix + 'b')).toBe(-1);
  });

  it('uses the default prefix audit:auth: when none is given', async () => {
    const key = `test-default-${randomBytes(6).toString('hex')}`;
    await redisSessionStore(redis).set(key, 'v', 60);
    expect(await redis.get('audit:auth:' + key)).toBe('v');
    await redis.del('audit:auth:' + key);
  });

  it('getAndDelete returns the value once; delete removes it', async () => {
    await store.set('k', 'v', 60);
    expect(await store.getAndDelete('k')).toBe('v');
    expect(await redis.exists(prefix + 'k')).toBe(0);
    expect(await store.getAndDelete('k')).toBeNull();
    await store.set('d', 'v');
    await store.delete('d');
    expect(await redis.exists(prefix + 'd')).toBe(0);
  });

  it('counts in a fixed window: the TTL is set by the first increment only, at least 1 s', async () => {
    expect(await store.increment('c', 100)).toBe(1);
    expect(await redis.ttl(prefix + 'c')).toBeGreaterThan(90);
    expect(await store.increment('c', 5)).toBe(2);
    // The second increment's shorter TTL did not replace the window.
    expect(await redis.ttl(prefix + 'c')).toBeGreaterThan(90);
    // A TTL of 0 still gives the counter a window of 1 s (EXPIRE 0 would delete it at once).
    expect(await store.increment('zero', 0)).toBe(1);
    expect(await redis.pttl(prefix + 'zero')).toBeGreaterThan(0);
    expect(await redis.pttl(prefix + 'zero')).toBeLessThanOrEqual(1_000);
    // A fractional TTL is rounded up (EXPIRE takes whole seconds only).
    expect(await store.increment('frac', 1.5)).toBe(1);
    expect(await redis.pttl(prefix + 'frac')).toBeGreaterThan(1_000);
    expect(await redis.pttl(prefix + 'frac')).toBeLessThanOrEqual(2_000);
  });

  it('throws the error of a failed increment instead of counting', async () => {
    await redis.set(prefix + 'text', 'not a number');
    await expect(store.increment('text', 10)).rejects.toThrow('ERR value is not an integer or out of range');
  });
});
