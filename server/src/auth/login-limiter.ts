/**
 * Sign-in attempts limited per client address and per account (default 5 per 15 minutes), shared
 * through Redis so every replica counts the same attempts. An attempt reserves one unit on both
 * counters before the password is checked (so parallel guesses cannot overshoot the limit) and a
 * successful sign-in gives its units back: only failures use up the allowance. The account is
 * keyed by a hash of the lower-cased address, whether or not such a user exists, so the answer
 * never tells which accounts exist. Without Redis, or while it is down, each process counts alone.
 */
import { createHash } from 'node:crypto';
import type Redis from 'ioredis';

/** The outcome of one attempt. */
export interface LoginDecision {
  allowed: boolean;
  /** Seconds until the exceeded window ends (0 when allowed). */
  retryAfterSeconds: number;
}

/** The two counters an attempt touches. */
export interface LoginKeys {
  ip: string;
  account: string;
}

const PREFIX = 'audit:login:';

// Gives back one unit on each counter that exists and is above zero. A plain DECR would recreate a
// counter whose window ended while the password was checked, at -1 and without expiry: a key that
// never expires and an extra attempt in the next window.
const GIVE_BACK = `for _, k in ipairs(KEYS) do
  local v = tonumber(redis.call('GET', k))
  if v and v > 0 then redis.call('DECR', k) end
end
return 0`;

/** Counter keys of an attempt; the address is hashed, never stored. */
export function loginKeys(ip: string, email: string): LoginKeys {
  const account = createHash('sha256').update(email.trim().toLowerCase(), 'utf8').digest('hex').slice(0, 32);
  return { ip: `${PREFIX}ip:${ip}`, account: `${PREFIX}acct:${account}` };
}

/** Fixed windows per key, created by the first failure-to-be. */
export class LoginLimiter {
  private readonly memory = new Map<string, { count: number; expires: number }>();

  constructor(
    private readonly redis: Redis | null,
    readonly maxAttempts: number,
    readonly windowSeconds: number,
    // The in-process windows' clock; tests pass their own so windows end without waiting.
    private readonly now: () => number = Date.now,
  ) {}

  /** Reserves an attempt on both counters; denied when either is over the limit. */
  async attempt(keys: LoginKeys): Promise<LoginDecision> {
    const counts = await this.incr([keys.ip, keys.account]);
    const over = counts.filter((c) => c.count > this.maxAttempts);
    if (over.length === 0) return { allowed: true, retryAfterSeconds: 0 };
    return { allowed: false, retryAfterSeconds: Math.max(1, ...over.map((c) => Math.ceil(c.ttlMs / 1000))) };
  }

  /** Gives back the units of a successful sign-in. */
  async succeeded(keys: LoginKeys): Promise<void> {
    if (this.redis) {
      try {
        await this.redis.eval(GIVE_BACK, 2, keys.ip, keys.account);
        return;
      } catch {
        /* fall through to the in-process counters */
      }
    }
    for (const k of [keys.ip, keys.account]) {
      const e = this.memory.get(k);
      if (e) e.count = Math.max(0, e.count - 1);
    }
  }

  private async incr(keys: string[]): Promise<Array<{ count: number; ttlMs: number }>> {
    if (this.redis) {
      try {
        let m = this.redis.multi();
        for (const k of keys) m = m.incr(k).expire(k, this.windowSeconds, 'NX').pttl(k);
        const res = (await m.exec()) ?? [];
        return keys.map((_, i) => ({ count: Number(res[i * 3]?.[1] ?? 0), ttlMs: Number(res[i * 3 + 2]?.[1] ?? this.windowSeconds * 1000) }));
      } catch {
        /* Redis down: count in this process */
      }
    }
    const now = this.now();
    if (this.memory.size > 100_000) for (const [k, e] of this.memory) if (e.expires <= now) this.memory.delete(k);
    return keys.map((k) => {
      let e = this.memory.get(k);
      if (!e || e.expires <= now) {
        e = { count: 0, expires: now + this.windowSeconds * 1000 };
        this.memory.set(k, e);
      }
      e.count += 1;
      return { count: e.count, ttlMs: e.expires - now };
    });
  }
}
