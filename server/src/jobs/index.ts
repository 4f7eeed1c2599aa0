/**
 * Opening the job queue for a configuration, and the periodic-task registry of the worker role
 * (docs/jobs.md "Adding a periodic task").
 */
import type Redis from 'ioredis';
import type { RedisEndpoint } from '../cache/redis';
import type * as BullMqModule from './bullmq-queue';
import { MemoryJobQueue } from './memory-queue';
import type { JobObserver, JobOptions, JobQueue } from './queue';

export * from './queue';
export { MemoryJobQueue } from './memory-queue';

/**
 * BullMQ on Redis when `redisUrl` is set, the in-process queue otherwise (BullMQ is then not even
 * loaded: the embedded default starts faster).
 */
export function openJobQueue(redisUrl: RedisEndpoint | undefined, prefix: string, observer: JobObserver | null = null): JobQueue {
  if (!redisUrl) return new MemoryJobQueue(observer);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { BullMqJobQueue } = require('./bullmq-queue') as typeof BullMqModule;
  return new BullMqJobQueue(redisUrl, prefix, observer);
}

/** One periodic task of the worker role. */
export interface PeriodicTask extends JobOptions {
  /** Job (and queue) name: lowercase letters, digits, dashes. */
  name: string;
  /** Interval between runs; 0 disables the task (it stays defined, so it can be run by hand). */
  everyMs: number;
  /** The work. A throw fails the run (retried with backoff, then kept in the failed set). */
  run: (signal: AbortSignal) => Promise<unknown>;
}

/** Periodic tasks default to fewer attempts than other jobs: the next interval runs them again anyway. */
const PERIODIC_DEFAULTS: JobOptions = { attempts: 3, backoffMs: 5_000 };

/**
 * Declares periodic tasks on `queue`, and on a worker schedules them (one run per interval across
 * every worker sharing the queue). Every process declares them, so an API replica can count,
 * list and retry them too.
 */
export async function registerPeriodicTasks(queue: JobQueue, tasks: PeriodicTask[], schedule: boolean): Promise<void> {
  for (const t of tasks) {
    const { name, everyMs: _everyMs, run, ...options } = t;
    queue.define(name, (_data, ctx) => run(ctx.signal), { ...PERIODIC_DEFAULTS, ...options });
  }
  if (!schedule) return;
  for (const t of tasks) if (t.everyMs > 0) await queue.schedule(t.name, t.everyMs);
}

/**
 * The Redis eviction policy queues need: an evicted key is a lost job. Resolves when Redis reports
 * `maxmemory-policy noeviction`; rejects naming the policy otherwise (for `/ready`). Read from
 * `INFO memory`, which managed Redis services answer even where `CONFIG` is disabled.
 */
export async function checkNoEviction(redis: Redis): Promise<void> {
  const info = await redis.info('memory');
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  if (policy !== 'noeviction') throw new Error(`maxmemory-policy is ${policy ?? 'unknown'}; job queues need noeviction (evicted keys are lost jobs)`);
}
