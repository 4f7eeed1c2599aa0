/**
 * Sliding-window sums for the detectors: per key, the weights added in the last `windowMs`
 * (the window is `(now - windowMs, now]`). In Redis (shared by every replica, expiring with the
 * window) when configured, in process otherwise; both behind {@link WindowStore}.
 *
 * Each key holds a list of buckets `[time, weight]`, newest first, and their running sum. A hit
 * adds to the newest bucket when it falls in the same `resolutionMs` slot (the bucket then takes
 * the hit's time), or starts a new one; buckets whose time has left the window are dropped from
 * the old end. So a key holds at most `windowMs / resolutionMs + 1` buckets and each hit costs
 * O(1) amortized (every bucket is pushed once and popped once). With hits at least `resolutionMs`
 * apart the sum is exact; hits closer together share the newest one's time, so they leave the
 * window together — never early, at most `resolutionMs` late (a detector errs towards alerting).
 */
import { createHash } from 'node:crypto';
import type Redis from 'ioredis';

/** One hit on a window. */
export interface WindowOp {
  key: string;
  windowMs: number;
  weight: number;
  /** The event id kept with the key (the last `keepIds` ids are returned). */
  id: string;
  keepIds: number;
}

/** A window's state after a hit. */
export interface WindowResult {
  sum: number;
  /** The last ids added, newest first (at most `keepIds`). */
  ids: string[];
}

/** Where the windows live. */
export interface WindowStore {
  /** Applies the hits in order (one round trip for a batch); `now` is the caller's clock. */
  hit(ops: WindowOp[], now: number): Promise<WindowResult[]>;
}

/** The slot width of the buckets of a window (1 s, coarser for windows over 5 minutes). */
export function resolutionOf(windowMs: number): number {
  return Math.max(1000, Math.ceil(windowMs / 300));
}

interface MemoryWindow {
  /** Buckets oldest first: times and weights. */
  times: number[];
  weights: number[];
  sum: number;
  ids: string[];
  expiresAt: number;
}

/**
 * In-process windows (embedded default, and the fallback while Redis fails). At most `maxKeys`
 * keys: the least recently hit is dropped first, and expired keys are swept as they are met.
 */
export class MemoryWindowStore implements WindowStore {
  private readonly windows = new Map<string, MemoryWindow>();

  constructor(private readonly maxKeys = 100_000) {}

  /** Keys held now (tests and metrics). */
  get size(): number {
    return this.windows.size;
  }

  hit(ops: WindowOp[], now: number): Promise<WindowResult[]> {
    return Promise.resolve(ops.map((op) => this.one(op, now)));
  }

  private one(op: WindowOp, now: number): WindowResult {
    let w = this.windows.get(op.key);
    if (w) this.windows.delete(op.key); // re-inserted below: the Map's order is recency
    if (!w || w.expiresAt <= now) w = { times: [], weights: [], sum: 0, ids: [], expiresAt: 0 };
    const from = now - op.windowMs;
    let drop = 0;
    while (drop < w.times.length && w.times[drop]! <= from) w.sum -= w.weights[drop++]!;
    if (drop > 0) {
      w.times.splice(0, drop);
      w.weights.splice(0, drop);
    }
    const res = resolutionOf(op.windowMs);
    const last = w.times.length - 1;
    if (last >= 0 && Math.floor(w.times[last]! / res) === Math.floor(now / res) && w.times[last]! <= now) {
      w.times[last] = now;
      w.weights[last] = w.weights[last]! + op.weight;
    } else {
      w.times.push(now);
      w.weights.push(op.weight);
    }
    w.sum += op.weight;
    if (op.keepIds > 0) {
      w.ids.unshift(op.id);
      if (w.ids.length > op.keepIds) w.ids.length = op.keepIds;
    }
    w.expiresAt = now + op.windowMs;
    this.windows.set(op.key, w);
    this.evict(now);
    return { sum: w.sum, ids: [...w.ids] };
  }

  /** Drops the least recently hit keys beyond `maxKeys`, and up to two expired ones (O(1) per hit). */
  private evict(now: number): void {
    let checked = 0;
    for (const [key, w] of this.windows) {
      if (this.windows.size > this.maxKeys || (checked < 2 && w.expiresAt <= now)) this.windows.delete(key);
      else return;
      checked++;
    }
  }
}

// KEYS: buckets list (newest first, "time:weight"), sum, ids list.
// ARGV: now, windowMs, resolutionMs, weight, keepIds, id.
const HIT_SCRIPT = `
local now = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local res = tonumber(ARGV[3])
local w = tonumber(ARGV[4])
local keep = tonumber(ARGV[5])
local sum = tonumber(redis.call('GET', KEYS[2]) or '0')
if redis.call('EXISTS', KEYS[1]) == 0 then sum = 0 end
while true do
  local tail = redis.call('LINDEX', KEYS[1], -1)
  if not tail then break end
  local sep = string.find(tail, ':', 1, true)
  if tonumber(string.sub(tail, 1, sep - 1)) > now - win then break end
  redis.call('RPOP', KEYS[1])
  sum = sum - tonumber(string.sub(tail, sep + 1))
end
local merged = false
local head = redis.call('LINDEX', KEYS[1], 0)
if head then
  local sep = string.find(head, ':', 1, true)
  local t = tonumber(string.sub(head, 1, sep - 1))
  if math.floor(t / res) == math.floor(now / res) and t <= now then
    redis.call('LSET', KEYS[1], 0, now .. ':' .. (tonumber(string.sub(head, sep + 1)) + w))
    merged = true
  end
end
if not merged then redis.call('LPUSH', KEYS[1], now .. ':' .. w) end
sum = sum + w
redis.call('SET', KEYS[2], sum, 'PX', win)
redis.call('PEXPIRE', KEYS[1], win)
local ids = {}
if keep > 0 then
  redis.call('LPUSH', KEYS[3], ARGV[6])
  redis.call('LTRIM', KEYS[3], 0, keep - 1)
  redis.call('PEXPIRE', KEYS[3], win)
  ids = redis.call('LRANGE', KEYS[3], 0, keep - 1)
end
return {sum, ids}
`;

type HitCommand = (bucketsKey: string, sumKey: string, idsKey: string, ...args: Array<string | number>) => unknown;

/**
 * Windows in Redis, shared by every replica: one script call per hit, a batch of hits in one
 * pipeline (one round trip). While Redis fails, hits go to an in-process store (each replica
 * then counts on its own) and `onError` is told.
 */
export class RedisWindowStore implements WindowStore {
  private readonly fallback = new MemoryWindowStore();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    if (!('auditAlertWindowHit' in redis)) redis.defineCommand('auditAlertWindowHit', { numberOfKeys: 3, lua: HIT_SCRIPT });
  }

  /** The Redis key of a window (long subjects are hashed to bound key size). */
  private keyOf(key: string): string {
    return key.length <= 120 ? `${this.prefix}alerts:w:${key}` : `${this.prefix}alerts:w:#${createHash('sha256').update(key).digest('hex')}`;
  }

  async hit(ops: WindowOp[], now: number): Promise<WindowResult[]> {
    if (ops.length === 0) return [];
    try {
      const pipeline = this.redis.pipeline();
      for (const op of ops) {
        const k = this.keyOf(op.key);
        (pipeline as unknown as { auditAlertWindowHit: HitCommand }).auditAlertWindowHit(
          `${k}:b`,
          `${k}:s`,
          `${k}:i`,
          now,
          op.windowMs,
          resolutionOf(op.windowMs),
          op.weight,
          op.keepIds,
          op.id,
        );
      }
      const results = await pipeline.exec();
      if (!results) throw new Error('redis pipeline returned nothing');
      return results.map(([err, value]) => {
        if (err) throw err;
        const [sum, ids] = value as [number, string[]];
        return { sum: Number(sum), ids };
      });
    } catch (err) {
      this.onError(err);
      return this.fallback.hit(ops, now);
    }
  }
}
