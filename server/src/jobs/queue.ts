/**
 * The job queue: one interface, two implementations (docs/jobs.md). With `REDIS_URL` jobs live in
 * Redis through BullMQ ({@link ./bullmq-queue}), durable across restarts and shared by every
 * replica; on the embedded default they live in this process ({@link ./memory-queue}). Both give
 * retries with exponential backoff, delayed jobs, repeatable (periodic) jobs with one run per
 * interval across all workers, a per-job timeout and a failed set that can be listed, retried and
 * cleaned.
 *
 * Every job kind is its own queue (named after it), so depth and failures are measured per kind.
 */

/** Retry and time limits of one job kind. */
export interface JobOptions {
  /** Attempts in all, the first included (default 5). */
  attempts?: number;
  /** Delay before the first retry; each later retry waits twice as long (default 1000 ms). */
  backoffMs?: number;
  /** An attempt that runs longer fails (its signal is aborted) and is retried (default 10 min). */
  timeoutMs?: number;
  /** Jobs of this kind run at once in one worker process (default 1). */
  concurrency?: number;
}

/** What a handler learns about the job it runs. */
export interface JobContext {
  /** The job's id: stable across its attempts. */
  id: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** Aborted when the attempt times out or the worker shuts down. */
  signal: AbortSignal;
}

/** Runs one job; a throw (or a timeout) fails the attempt. */
export type JobHandler<T = unknown> = (data: T, ctx: JobContext) => Promise<unknown>;

/** Options of one enqueued job. */
export interface EnqueueOptions {
  /** Run no earlier than this many milliseconds from now. */
  delayMs?: number;
  /**
   * A job with this id that is still waiting, delayed or running absorbs the new one (it is not
   * added twice): how "make sure X runs soon" is said without piling up copies.
   */
  jobId?: string;
}

/** A defined job kind. */
export interface JobDefinition {
  handler: JobHandler<never>;
  options: Required<JobOptions>;
}

/** A job as listed by `jobs list` and the failed set. */
export interface JobInfo {
  id: string;
  queue: string;
  state: JobState;
  attemptsMade: number;
  /** The last failure's message (never the data). */
  failedReason: string | null;
  createdAt: string;
  finishedAt: string | null;
}

/** Where a job is. */
export type JobState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed';

/** Jobs per state of one queue. */
export type JobCounts = Record<JobState, number>;

/** What the queue reports (metrics, logs). */
export interface JobObserver {
  /** An attempt finished: `ok`, or failed (`willRetry` says whether another attempt follows). */
  finished(queue: string, seconds: number, outcome: 'ok' | 'retry' | 'failed', err?: unknown): void;
}

/** A durable (Redis) or in-process job queue. */
export interface JobQueue {
  /** `redis` (BullMQ) or `memory` (this process). */
  readonly kind: 'redis' | 'memory';
  /**
   * Declares a job kind: its handler and limits. Only a process that {@link start}s runs handlers;
   * any process may enqueue.
   */
  define<T>(name: string, handler: JobHandler<T>, options?: JobOptions): void;
  /** Adds one job of a defined kind; resolves with its id once it is stored. */
  enqueue<T>(name: string, data: T, options?: EnqueueOptions): Promise<string>;
  /**
   * Runs `name` every `everyMs`: one job per interval however many workers run (the schedule is
   * stored once, keyed by name; a later call with another interval replaces it).
   */
  schedule(name: string, everyMs: number): Promise<void>;
  /** Starts running jobs (the worker role). */
  start(): Promise<void>;
  /** Names of the defined kinds. */
  names(): string[];
  /** A defined kind's handler and limits (what the Inngest endpoint serves). */
  definition(name: string): JobDefinition;
  /** Jobs per state for every defined kind. */
  counts(): Promise<Record<string, JobCounts>>;
  /** Jobs of `queue` in `state`, newest first. */
  list(queue: string, state: JobState, limit?: number): Promise<JobInfo[]>;
  /** Moves failed jobs (one by id, or all) back to waiting; resolves with how many. */
  retry(queue: string, id?: string): Promise<number>;
  /** Removes completed or failed jobs older than `graceMs`; resolves with how many. */
  clean(queue: string, state: 'completed' | 'failed', graceMs: number): Promise<number>;
  /** Stops taking jobs, waits for running ones (their signals are aborted after `graceMs`), closes. */
  close(graceMs?: number): Promise<void>;
}

/** The states a queue reports, in display order. */
export const JOB_STATES: readonly JobState[] = ['waiting', 'delayed', 'active', 'completed', 'failed'];

/** Defaults of {@link JobOptions}. */
export const DEFAULT_JOB_OPTIONS: Required<JobOptions> = { attempts: 5, backoffMs: 1000, timeoutMs: 10 * 60 * 1000, concurrency: 1 };

/** Delay before retry `n` (1 = the first retry): `backoffMs · 2^(n-1)`, as BullMQ's exponential backoff. */
export function backoffDelay(backoffMs: number, retry: number): number {
  return backoffMs * 2 ** (retry - 1);
}

/** Thrown into a handler's attempt when it runs past its timeout. */
export class JobTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`job timed out after ${timeoutMs} ms`);
    this.name = 'JobTimeoutError';
  }
}

/**
 * Runs one attempt under a timeout: the handler's signal is aborted when the time is up (or the
 * outer signal fires), and the attempt fails with {@link JobTimeoutError} even if the handler
 * ignores its signal.
 */
export async function runAttempt<T>(
  handler: JobHandler<T>,
  data: T,
  ctx: { id: string; attempt: number; outer?: AbortSignal },
  timeoutMs: number,
): Promise<unknown> {
  const controller = new AbortController();
  const onOuter = () => controller.abort(ctx.outer?.reason);
  ctx.outer?.addEventListener('abort', onOuter, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new JobTimeoutError(timeoutMs);
      controller.abort(err);
      reject(err);
    }, timeoutMs);
  });
  try {
    return await Promise.race([handler(data, { id: ctx.id, attempt: ctx.attempt, signal: controller.signal }), timedOut]);
  } finally {
    clearTimeout(timer);
    ctx.outer?.removeEventListener('abort', onOuter);
  }
}

/** A queue name: what BullMQ accepts in a Redis key and Prometheus in a label. */
export function checkJobName(name: string): void {
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(name)) throw new Error(`job name must be lowercase letters, digits and dashes (got ${JSON.stringify(name)})`);
}
