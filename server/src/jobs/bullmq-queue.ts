/**
 * The durable job queue on Redis, through BullMQ: one BullMQ queue per job kind under a key
 * prefix (`JOBS_KEY_PREFIX`), exponential backoff by BullMQ itself, periodic jobs as BullMQ job
 * schedulers (stored once per name, so every worker upserting the same schedule shares it and each
 * interval yields one job, taken by exactly one worker). Redis must run with
 * `maxmemory-policy noeviction`: an evicted key is a lost job (`/ready` checks it).
 */
import { Queue, Worker, type ConnectionOptions, type Job, type JobsOptions } from 'bullmq';
import { redisConnectionOptions, type RedisEndpoint } from '../cache/redis';
import { within } from '../util/within';
import {
  checkJobName,
  DEFAULT_JOB_OPTIONS,
  JOB_STATES,
  runAttempt,
  type EnqueueOptions,
  type JobCounts,
  type JobDefinition,
  type JobHandler,
  type JobInfo,
  type JobObserver,
  type JobOptions,
  type JobQueue,
  type JobState,
} from './queue';

interface Kind {
  handler: JobHandler<never>;
  options: Required<JobOptions>;
  queue: Queue;
  worker: Worker | null;
  /** The worker waits for the queue's first connection. */
  workerPending?: boolean;
}

/** Completed and failed jobs BullMQ keeps per kind. */
const KEEP = { completed: 1000, failed: 5000 };

/**
 * How long a producer call waits for the queue's Redis connection. BullMQ itself waits for a
 * connection forever while ioredis reconnects, which would hang a request, `/metrics` or start-up
 * for as long as Redis is down; past this bound the call fails and the caller decides.
 */
export const DEFAULT_CONNECT_WAIT_MS = 2_000;

/** A producer call made while the queue's Redis was unreachable for longer than the wait bound. */
export class JobQueueUnavailableError extends Error {
  constructor(waitedMs: number) {
    super(`the job queue's Redis did not answer within ${waitedMs} ms`);
    this.name = 'JobQueueUnavailableError';
  }
}

/** Jobs in Redis, shared by every process that uses the same URL and prefix. */
export class BullMqJobQueue implements JobQueue {
  readonly kind = 'redis' as const;
  private readonly kinds = new Map<string, Kind>();
  private started = false;
  private closed = false;

  /**
   * @param url Redis URL (`REDIS_URL`), or a Sentinel group (`REDIS_SENTINELS`)
   * @param prefix key prefix of every queue (`JOBS_KEY_PREFIX`)
   */
  constructor(
    private readonly url: RedisEndpoint,
    private readonly prefix: string,
    private readonly observer: JobObserver | null = null,
    private readonly connectWaitMs = DEFAULT_CONNECT_WAIT_MS,
  ) {}

  /** The kind's queue once its connection is ready, or a JobQueueUnavailableError past the bound. */
  private async ready(name: string): Promise<Kind> {
    const k = this.kindOf(name);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        k.queue.waitUntilReady(),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new JobQueueUnavailableError(this.connectWaitMs)), this.connectWaitMs))),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return k;
  }

  define<T>(name: string, handler: JobHandler<T>, options: JobOptions = {}): void {
    checkJobName(name);
    if (this.kinds.has(name)) throw new Error(`job ${name} is already defined`);
    // Producer side: fail fast while Redis is down (the caller decides), never queue commands.
    const queue = new Queue(name, { connection: bullConnection(this.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 }), prefix: this.prefix });
    queue.on('error', () => undefined); // connection errors surface on the calls themselves
    const kind: Kind = { handler, options: { ...DEFAULT_JOB_OPTIONS, ...options }, queue, worker: null };
    this.kinds.set(name, kind);
    if (this.started) this.startWorker(name, kind);
  }

  private kindOf(name: string): Kind {
    const k = this.kinds.get(name);
    if (!k) throw new Error(`unknown job ${name}`);
    return k;
  }

  private jobOptions(k: Kind): JobsOptions {
    return {
      attempts: k.options.attempts,
      backoff: { type: 'exponential', delay: k.options.backoffMs },
      removeOnComplete: { count: KEEP.completed },
      removeOnFail: { count: KEEP.failed },
    };
  }

  async enqueue<T>(name: string, data: T, options: EnqueueOptions = {}): Promise<string> {
    const k = await this.ready(name);
    const job = await k.queue.add(name, data, {
      ...this.jobOptions(k),
      ...(options.delayMs ? { delay: options.delayMs } : {}),
      // Simple-mode deduplication: absorbed while a job with this id waits, is delayed or runs.
      ...(options.jobId ? { deduplication: { id: options.jobId } } : {}),
    });
    return job.id ?? '';
  }

  async schedule(name: string, everyMs: number): Promise<void> {
    if (!(everyMs > 0)) throw new Error(`schedule of ${name}: everyMs must be positive`);
    const k = await this.ready(name);
    await k.queue.upsertJobScheduler(name, { every: everyMs }, { name, data: null, opts: this.jobOptions(k) });
  }

  start(): Promise<void> {
    this.started = true;
    for (const [name, k] of this.kinds) this.startWorker(name, k);
    return Promise.resolve();
  }

  private startWorker(name: string, k: Kind): void {
    if (k.worker || k.workerPending) return;
    // Only once Redis answers: a BullMQ worker that never connected cannot be closed (its close
    // waits for the connection forever), and there is nothing to take before then anyway.
    k.workerPending = true;
    k.queue.waitUntilReady().then(
      () => {
        k.workerPending = false;
        if (!this.closed) this.createWorker(name, k);
      },
      () => (k.workerPending = false),
    );
  }

  private createWorker(name: string, k: Kind): void {
    k.worker = new Worker(
      name,
      async (job: Job, _token?: string, signal?: AbortSignal) => {
        const started = process.hrtime.bigint();
        const attempt = job.attemptsMade + 1;
        try {
          const result = await runAttempt(k.handler, job.data as never, { id: job.id ?? '', attempt, ...(signal ? { outer: signal } : {}) }, k.options.timeoutMs);
          this.observer?.finished(name, seconds(started), 'ok');
          return result;
        } catch (err) {
          this.observer?.finished(name, seconds(started), attempt < k.options.attempts ? 'retry' : 'failed', err);
          throw err;
        }
      },
      // Blocking connection: BullMQ needs it to retry forever (maxRetriesPerRequest null).
      { connection: bullConnection(this.url, { maxRetriesPerRequest: null }), prefix: this.prefix, concurrency: k.options.concurrency },
    );
    k.worker.on('error', () => undefined); // reconnects on its own; failures are reported above
  }

  definition(name: string): JobDefinition {
    const k = this.kindOf(name);
    return { handler: k.handler, options: k.options };
  }

  names(): string[] {
    return [...this.kinds.keys()];
  }

  async counts(): Promise<Record<string, JobCounts>> {
    // In parallel: with Redis down, every kind waits out the same bound once, not one after another.
    const entries = await Promise.all(
      [...this.kinds.keys()].map(async (name) => {
        const c = await (await this.ready(name)).queue.getJobCounts(...JOB_STATES);
        return [name, Object.fromEntries(JOB_STATES.map((s) => [s, c[s] ?? 0])) as JobCounts] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  async list(queue: string, state: JobState, limit = 50): Promise<JobInfo[]> {
    const k = await this.ready(queue);
    const jobs = await k.queue.getJobs([state], 0, limit - 1, false);
    return jobs.map((j) => ({
      id: j.id ?? '',
      queue,
      state,
      attemptsMade: j.attemptsMade,
      failedReason: j.failedReason || null,
      createdAt: new Date(j.timestamp).toISOString(),
      finishedAt: j.finishedOn ? new Date(j.finishedOn).toISOString() : null,
    }));
  }

  async retry(queue: string, id?: string): Promise<number> {
    const k = await this.ready(queue);
    if (id !== undefined) {
      const job = await k.queue.getJob(id);
      if (!job || (await job.getState()) !== 'failed') return 0;
      await job.retry('failed');
      return 1;
    }
    let n = 0;
    for (;;) {
      const failed = await k.queue.getJobs(['failed'], 0, 999);
      if (failed.length === 0) return n;
      for (const job of failed) await job.retry('failed');
      n += failed.length;
    }
  }

  async clean(queue: string, state: 'completed' | 'failed', graceMs: number): Promise<number> {
    const k = await this.ready(queue);
    let n = 0;
    for (;;) {
      const removed = await k.queue.clean(graceMs, 1000, state);
      n += removed.length;
      if (removed.length < 1000) return n;
    }
  }

  async close(graceMs = 10_000): Promise<void> {
    this.closed = true;
    const kinds = [...this.kinds.values()];
    // Workers finish their running jobs; past the grace period they are closed by force (the
    // jobs' locks lapse and another worker takes them up again: at-least-once). BullMQ's close
    // waits for Redis without a bound; with Redis gone the worker's connections are cut instead.
    await Promise.all(
      kinds.map(async (k) => {
        if (!k.worker) return;
        const w = k.worker;
        if (await within(w.close(), graceMs)) return;
        if (await within(w.close(true), FORCE_CLOSE_MS)) return;
        const backend = w.getBackend();
        await within(Promise.all([backend.blockingConnection?.close(true), backend.connection.close(true)]), FORCE_CLOSE_MS);
      }),
    );
    // Producer connections never queue commands: their close fails at once when Redis is gone.
    await Promise.all(kinds.map((k) => within(k.queue.close(), FORCE_CLOSE_MS)));
  }
}

/** How long a forced close of one worker may take before its connections are cut. */
const FORCE_CLOSE_MS = 2_000;

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/**
 * BullMQ's connection options for an endpoint: ioredis options (BullMQ hands them to ioredis), typed
 * as BullMQ's own declaration of them, which spells ioredis' callback options differently.
 */
function bullConnection(endpoint: RedisEndpoint, extra: { enableOfflineQueue?: boolean; maxRetriesPerRequest: number | null }): ConnectionOptions {
  return { ...redisConnectionOptions(endpoint), ...extra } as unknown as ConnectionOptions;
}
