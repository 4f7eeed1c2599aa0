/**
 * Sign-in attempt limits: counter keys (the address hashed, never stored), the in-process windows
 * on a clock the test moves, and the shared counters on a real Redis (TEST_REDIS_URL), including
 * the fall-back to in-process counting when Redis cannot be reached.
 */
import { createHash, randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { LoginLimiter, loginKeys, type LoginKeys } from '../../src/auth/login-limiter';
import { testRedisUrl } from '../helpers/backends';
import { freePort } from '../helpers/process';

function manualClock(start = 5_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const allowed = { allowed: true, retryAfterSeconds: 0 };
const denied = (retryAfterSeconds: number) => ({ allowed: false, retryAfterSeconds });

describe('login counter keys', () => {
  it('keys the client address as given and the account by a hash of the trimmed, lower-cased address', () => {
    const hash = createHash('sha256').update('alice@example.org', 'utf8').digest('hex').slice(0, 32);
    expect(loginKeys('203.0.113.7', '  Alice@Example.ORG ')).toEqual({ ip: 'audit:login:ip:203.0.113.7', account: `audit:login:acct:${hash}` });
    expect(loginKeys('::1', 'alice@example.org').account).toBe(`audit:login:acct:${hash}`);
    expect(loginKeys('::1', 'bob@example.org').account).not.toBe(`audit:login:acct:${hash}`);
  });
});

describe('login limiter, in process', () => {
  let clock: ReturnType<typeof manualClock>;
  let limiter: LoginLimiter;
  const a = loginKeys('198.51.100.1', 'a@example.org');
  beforeEach(() => {
    clock = manualClock();
    limiter = new LoginLimiter(null, 3, 60, clock.now);
  });

  it('allows maxAttempts attempts per window, then denies until the window ends', async () => {
    for (let i = 0; i < 3; i++) expect(await limiter.attempt(a)).toEqual(allowed);
    expect(await limiter.attempt(a)).toEqual(denied(60));
    clock.advance(30_500);
    expect(await limiter.attempt(a)).toEqual(denied(30));
    clock.advance(29_499);
    expect(await limiter.attempt(a)).toEqual(denied(1));
    clock.advance(1);
    // The window ended exactly now: a new one starts with this attempt.
    expect(await limiter.attempt(a)).toEqual(allowed);
    expect(await limiter.attempt(a)).toEqual(allowed);
    expect(await limiter.attempt(a)).toEqual(allowed);
    expect(await limiter.attempt(a)).toEqual(denied(60));
  });

  it('counts the address and the account separately: either over the limit denies', async () => {
    for (let i = 0; i < 3; i++) await limiter.attempt(a);
    // Same address, another account: the address is over.
    expect(await limiter.attempt(loginKeys('198.51.100.1', 'other@example.org'))).toEqual(denied(60));
    // Same account from another address: the account is over.
    expect(await limiter.attempt(loginKeys('198.51.100.2', 'A@example.org'))).toEqual(denied(60));
    // Neither: allowed.
    expect(await limiter.attempt(loginKeys('198.51.100.3', 'c@example.org'))).toEqual(allowed);
  });

  it('answers the longest remaining window of the counters over the limit', async () => {
    const ipOnly = loginKeys('198.51.100.9', 'first@example.org');
    for (let i = 0; i < 3; i++) await limiter.attempt(ipOnly);
    clock.advance(20_000);
    // The address's window (started 20 s ago) has 40 s left; this account's starts now: 60 s.
    const both = loginKeys('198.51.100.9', 'second@example.org');
    for (let i = 0; i < 3; i++) expect(await limiter.attempt(both)).toEqual(denied(40));
    expect(await limiter.attempt(both)).toEqual(denied(60));
  });

  it('gives back the units of a successful sign-in, never below zero', async () => {
    for (let i = 0; i < 10; i++) {
      expect(await limiter.attempt(a)).toEqual(allowed);
      await limiter.succeeded(a);
    }
    await limiter.succeeded(a);
    await limiter.succeeded(a);
    // Two extra give-backs did not bank extra attempts.
    for (let i = 0; i < 3; i++) expect(await limiter.attempt(a)).toEqual(allowed);
    expect(await limiter.attempt(a)).toEqual(denied(60));
  });

  it('gives back nothing for keys it never counted', async () => {
    await limiter.succeeded(loginKeys('192.0.2.1', 'nobody@example.org'));
    for (let i = 0; i < 3; i++) expect(await limiter.attempt(loginKeys('192.0.2.1', 'nobody@example.org'))).toEqual(allowed);
    expect(await limiter.attempt(loginKeys('192.0.2.1', 'nobody@example.org'))).toEqual(denied(60));
  });

  // Fills the limiter to exactly 100,000 counters: x's two, and 49,999 other pairs.
  async function fillTo100k(one: LoginLimiter, x: LoginKeys): Promise<void> {
    await one.attempt(x);
    for (let i = 0; i < 49_999; i++) await one.attempt({ ip: `fill-ip-${i}`, account: `fill-acct-${i}` });
  }

  it('sweeps expired windows once it holds over 100,000 counters, keeping live ones', async () => {
    const one = new LoginLimiter(null, 1, 60, clock.now);
    const x = loginKeys('192.0.2.10', 'x@example.org');
    const y = loginKeys('192.0.2.11', 'y@example.org');
    await fillTo100k(one, x);
    clock.advance(30_000);
    // 100,000 counters, none expired: no sweep; y's two make 100,002.
    await one.attempt(y);
    clock.advance(31_000);
    // All but y's expired: this attempt sweeps them, and y's count stays.
    await one.attempt(loginKeys('192.0.2.12', 'z@example.org'));
    expect((await one.attempt(y)).allowed).toBe(false);
    // Put the clock back into x's old window: x's counter was removed, so x starts afresh.
    clock.advance(-60_000);
    expect(await one.attempt(x)).toEqual(allowed);
  });

  it('does not sweep at 100,000 counters, only above', async () => {
    const one = new LoginLimiter(null, 1, 60, clock.now);
    const x = loginKeys('192.0.2.20', 'x@example.org');
    await fillTo100k(one, x);
    clock.advance(61_000);
    // Every counter expired, and exactly 100,000 of them: nothing is swept.
    await one.attempt(loginKeys('192.0.2.21', 'w@example.org'));
    // Back in x's window, x's counter is still there: its second attempt is over the limit.
    clock.advance(-60_000);
    expect((await one.attempt(x)).allowed).toBe(false);
  });

  it('exposes its limit and window', () => {
    expect(limiter.maxAttempts).toBe(3);
    expect(limiter.windowSeconds).toBe(60);
  });
});

describe('login limiter with Redis unreachable', () => {
  let redis: Redis;
  beforeAll(async () => {
    // Nothing listens on this port; with no offline queue every command fails at once.
    redis = new Redis({ port: await freePort(), lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  });
  afterAll(() => {
    redis.disconnect();
  });

  it('counts and gives back in process instead', async () => {
    const clock = manualClock();
    const limiter = new LoginLimiter(redis, 2, 30, clock.now);
    const k = loginKeys('192.0.2.50', 'down@example.org');
    expect(await limiter.attempt(k)).toEqual(allowed);
    await limiter.succeeded(k);
    expect(await limiter.attempt(k)).toEqual(allowed);
    expect(await limiter.attempt(k)).toEqual(allowed);
    clock.advance(10_000);
    expect(await limiter.attempt(k)).toEqual(denied(20));
  });
});

const redisUrl = testRedisUrl();
(redisUrl ? describe : describe.skip)(`login limiter on Redis${redisUrl ? '' : ' [skipped: TEST_REDIS_URL is not set]'}`, () => {
  let redis: Redis;
  const used: string[] = [];
  beforeAll(() => {
    redis = new Redis(redisUrl!);
  });
  afterAll(async () => {
    if (used.length > 0) await redis.del(...used);
    await redis.quit();
  });
  /** Keys no other test (or concurrent run) touches. */
  function freshKeys(): LoginKeys {
    const k = loginKeys(`test-${randomBytes(6).toString('hex')}`, `${randomBytes(6).toString('hex')}@example.org`);
    used.push(k.ip, k.account);
    return k;
  }

  it('counts on Redis with a window of windowSeconds set by the first attempt', async () => {
    // The in-process clock is frozen: only Redis's own TTLs can end this window.
    const limiter = new LoginLimiter(redis, 2, 120, () => 0);
    const k = freshKeys();
    expect(await limiter.attempt(k)).toEqual(allowed);
    expect(await redis.get(k.ip)).toBe('1');
    expect(await redis.get(k.account)).toBe('1');
    const ttl = await redis.ttl(k.ip);
    expect(ttl).toBeGreaterThan(110);
    expect(ttl).toBeLessThanOrEqual(120);
    expect(await limiter.attempt(k)).toEqual(allowed);
    const third = await limiter.attempt(k);
    expect(third.allowed).toBe(false);
    // Redis's remaining TTL, rounded up: within the window, at least 110 s (no test waits that long).
    expect(third.retryAfterSeconds).toBeGreaterThan(110);
    expect(third.retryAfterSeconds).toBeLessThanOrEqual(120);
  });

  it('shares counts between limiters (replicas) and gives back units on Redis', async () => {
    const one = new LoginLimiter(redis, 2, 60);
    const two = new LoginLimiter(redis, 2, 60);
    const k = freshKeys();
    await one.attempt(k);
    await one.succeeded(k);
    expect(await redis.get(k.ip)).toBe('0');
    expect(await redis.get(k.account)).toBe('0');
    await one.attempt(k);
    await two.attempt(k);
    expect((await one.attempt(k)).allowed).toBe(false);
  });

  it('gives back nothing for a window that has ended: no counter below zero, none without expiry', async () => {
    // A sign-in whose window ended while its password was checked (the counters expired): giving
    // back must not create a counter at -1 without TTL, which would never expire and would grant
    // an extra attempt in the next window.
    const limiter = new LoginLimiter(redis, 2, 60);
    const k = freshKeys();
    await limiter.succeeded(k);
    expect(await redis.exists(k.ip, k.account)).toBe(0);
    for (let i = 0; i < 2; i++) expect(await limiter.attempt(k)).toEqual(allowed);
    expect((await limiter.attempt(k)).allowed).toBe(false);
    // At zero it stays at zero, with the window's TTL.
    const z = freshKeys();
    await limiter.attempt(z);
    await limiter.succeeded(z);
    await limiter.succeeded(z);
    expect(await redis.get(z.ip)).toBe('0');
    expect(await redis.get(z.account)).toBe('0');
    expect(await redis.ttl(z.ip)).toBeGreaterThan(50);
  });

  it('answers retry-after from the counter over the limit only', async () => {
    const limiter = new LoginLimiter(redis, 1, 300);
    const k = freshKeys();
    // The account counter has a short window; only the address is over the limit.
    await redis.set(k.ip, '5', 'EX', 200);
    const d = await limiter.attempt(k);
    expect(d.allowed).toBe(false);
    expect(d.retryAfterSeconds).toBeGreaterThan(190);
    expect(d.retryAfterSeconds).toBeLessThanOrEqual(200);
    // And the other way round: only the account is over, with its own window.
    const a = freshKeys();
    await redis.set(a.account, '5', 'EX', 100);
    const e = await limiter.attempt(a);
    expect(e.allowed).toBe(false);
    expect(e.retryAfterSeconds).toBeGreaterThan(90);
    expect(e.retryAfterSeconds).toBeLessThanOrEqual(100);
  });
});
