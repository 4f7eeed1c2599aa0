/**
 * Fixed-window rate limiting per API key. With Redis the window is shared by every replica
 * (INCR + PEXPIRE in one MULTI); without Redis, or while Redis is down, each process counts on
 * its own — a Redis outage degrades limits, it never blocks writes (docs/architecture.md §2, §5).
 */
import type Redis from 'ioredis';

/** Decision for one request. */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  resetSeconds: number;
}

/** Counts requests per key per minute. */
export interface RateLimiter {
  /** Counts `cost` requests (default 1: a tRPC batch counts each of its calls). */
  hit(key: string, cost?: number): Promise<RateDecision>;
}

const WINDOW_MS = 60_000;

/** In-process fixed windows (embedded default and Redis fallback). */
export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();
  constructor(private readonly limit: number) {}

  hit(key: string, cost = 1): Promise<RateDecision> {
    const now = Date.now();
    const start = now - (now % WINDOW_MS);
    let w = this.windows.get(key);
    if (!w || w.start !== start) {
      if (this.windows.size > 100_000) this.windows.clear();
      w = { start, count: 0 };
      this.windows.set(key, w);
    }
    w.count += cost;
    return Promise.resolve(decide(this.limit, w.count, start + WINDOW_MS - now));
  }
}

/** Redis fixed windows shared by all replicas, falling back to memory on errors. */
export class RedisRateLimiter implements RateLimiter {
  private readonly fallback: MemoryRateLimiter;
  constructor(
    private readonly redis: Redis,
    private readonly limit: number,
  ) {
    this.fallback = new MemoryRateLimiter(limit);
  }

  async hit(key: string, cost = 1): Promise<RateDecision> {
    const now = Date.now();
    const start = now - (now % WINDOW_MS);
    const k = `audit:rl:${key}:${start}`;
    try {
      const res = await this.redis.multi().incrby(k, cost).pexpire(k, WINDOW_MS * 2).exec();
      const count = Number(res?.[0]?.[1] ?? 0);
      return decide(this.limit, count, start + WINDOW_MS - now);
    } catch {
      return this.fallback.hit(key, cost);
    }
  }
}

function decide(limit: number, count: number, resetMs: number): RateDecision {
  return {
    allowed: count <= limit,
    limit,
    remaining: Math.max(0, limit - count),
    resetSeconds: Math.ceil(resetMs / 1000),
  };
}
