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
 * Declares periodic tasks on `queue`. Every process declares them, so an API replica can count,
 * list and retry them too; only a worker schedules them (`schedulePeriodicTasks`).
 */
export function registerPeriodicTasks(queue: JobQueue, tasks: PeriodicTask[]): void {
  for (const t of tasks) {
    const { name, everyMs: _everyMs, run, ...options } = t;
    queue.define(name, (_data, ctx) => run(ctx.signal), { ...PERIODIC_DEFAULTS, ...options });
  }
}

/** How a worker keeps trying to schedule its periodic tasks while the queue is unreachable. */
export interface ScheduleOptions {
  /** Stops the attempts (the process is closing). */
  signal: AbortSignal;
  /** First delay between attempts; doubles up to `maxRetryMs`. */
  retryMs?: number;
  maxRetryMs?: number;
  /** Told of each failed attempt (the caller logs it). */
  failed?: (err: unknown, nextAttemptMs: number) => void;
}

/**
 * Schedules every enabled periodic task (one run per interval across every worker sharing the
 * queue), retrying with backoff until all are scheduled or `signal` aborts. Resolves true once
 * scheduled, false when aborted first. A worker that starts while Redis is down must neither hang
 * its start-up nor stay unscheduled once Redis is back, so the caller runs this in the background.
 */
export async function schedulePeriodicTasks(queue: JobQueue, tasks: PeriodicTask[], options: ScheduleOptions): Promise<boolean> {
  const pending = tasks.filter((t) => t.everyMs > 0);
  let delay = options.retryMs ?? 1_000;
  const max = options.maxRetryMs ?? 30_000;
  while (!options.signal.aborted) {
    try {
      // Upserts are idempotent: a retry repeats the ones already done harmlessly.
      for (const t of pending) await queue.schedule(t.name, t.everyMs);
      return true;
    } catch (err) {
      if (options.signal.aborted) break;
      options.failed?.(err, delay);
      await abortableDelay(delay, options.signal);
      delay = Math.min(delay * 2, max);
    }
  }
  return false;
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
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
