/**
 * The in-process job queue of the embedded default (one process is every worker there is): the
 * same behaviour as the BullMQ queue — retries with exponential backoff, delayed and repeatable
 * jobs, per-attempt timeouts, a bounded failed set — held in memory. Jobs do not survive a
 * restart; what they stand for does (delivery cursors live in the database, periodic tasks are
 * scheduled again at start).
 */
import { randomUUID } from 'node:crypto';
import {
  backoffDelay,
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

interface MemoryJob {
  id: string;
  data: unknown;
  state: JobState;
  attemptsMade: number;
  runAt: number;
  failedReason: string | null;
  createdAt: number;
  finishedAt: number | null;
}

interface Kind {
  name: string;
  handler: JobHandler<never>;
  options: Required<JobOptions>;
  jobs: Map<string, MemoryJob>;
  running: number;
  timer: NodeJS.Timeout | null;
  timerAt: number;
  schedule: NodeJS.Timeout | null;
}

/** Completed and failed jobs kept per kind (oldest dropped first). */
const KEEP_FINISHED = 1000;

/** Jobs in this process's memory. */
export class MemoryJobQueue implements JobQueue {
  readonly kind = 'memory' as const;
  private readonly kinds = new Map<string, Kind>();
  private started = false;
  private closed = false;
  private readonly active = new Set<Promise<void>>();
  private readonly shutdown = new AbortController();

  constructor(private readonly observer: JobObserver | null = null) {}

  define<T>(name: string, handler: JobHandler<T>, options: JobOptions = {}): void {
    checkJobName(name);
    if (this.kinds.has(name)) throw new Error(`job ${name} is already defined`);
    this.kinds.set(name, {
      name,
      handler,
      options: { ...DEFAULT_JOB_OPTIONS, ...options },
      jobs: new Map(),
      running: 0,
      timer: null,
      timerAt: Infinity,
      schedule: null,
    });
  }

  private kindOf(name: string): Kind {
    const k = this.kinds.get(name);
    if (!k) throw new Error(`unknown job ${name}`);
    return k;
  }

  enqueue<T>(name: string, data: T, options: EnqueueOptions = {}): Promise<string> {
    const k = this.kindOf(name);
    if (this.closed) return Promise.reject(new Error('the job queue is closed'));
    const existing = options.jobId ? k.jobs.get(options.jobId) : undefined;
    if (existing && existing.state !== 'completed' && existing.state !== 'failed') return Promise.resolve(existing.id);
    const id = options.jobId ?? randomUUID();
    const now = Date.now();
    const delay = Math.max(0, options.delayMs ?? 0);
    k.jobs.delete(id);
    k.jobs.set(id, { id, data, state: delay > 0 ? 'delayed' : 'waiting', attemptsMade: 0, runAt: now + delay, failedReason: null, createdAt: now, finishedAt: null });
    this.pump(k);
    return Promise.resolve(id);
  }

  schedule(name: string, everyMs: number): Promise<void> {
    const k = this.kindOf(name);
    if (!(everyMs > 0)) return Promise.reject(new Error(`schedule of ${name}: everyMs must be positive`));
    if (k.schedule) clearInterval(k.schedule);
    // One job per interval slot: a slot's job absorbs a second enqueue of the same slot.
    const tick = () => {
      const slot = Math.floor(Date.now() / everyMs);
      this.enqueue(name, undefined, { jobId: `repeat:${name}:${slot}` }).catch(() => undefined);
    };
    k.schedule = setInterval(tick, everyMs);
    k.schedule.unref();
    return Promise.resolve();
  }

  start(): Promise<void> {
    this.started = true;
    for (const k of this.kinds.values()) this.pump(k);
    return Promise.resolve();
  }

  definition(name: string): JobDefinition {
    const k = this.kindOf(name);
    return { handler: k.handler, options: k.options };
  }

  names(): string[] {
    return [...this.kinds.keys()];
  }

  counts(): Promise<Record<string, JobCounts>> {
    const out: Record<string, JobCounts> = {};
    for (const k of this.kinds.values()) {
      const c = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as JobCounts;
      for (const j of k.jobs.values()) c[j.state]++;
      out[k.name] = c;
    }
    return Promise.resolve(out);
  }

  list(queue: string, state: JobState, limit = 50): Promise<JobInfo[]> {
    const k = this.kindOf(queue);
    const jobs = [...k.jobs.values()].filter((j) => j.state === state).reverse().slice(0, limit);
    return Promise.resolve(
      jobs.map((j) => ({
        id: j.id,
        queue,
        state: j.state,
        attemptsMade: j.attemptsMade,
        failedReason: j.failedReason,
        createdAt: new Date(j.createdAt).toISOString(),
        finishedAt: j.finishedAt === null ? null : new Date(j.finishedAt).toISOString(),
      })),
    );
  }

  retry(queue: string, id?: string): Promise<number> {
    const k = this.kindOf(queue);
    let n = 0;
    for (const j of k.jobs.values()) {
      if (j.state !== 'failed' || (id !== undefined && j.id !== id)) continue;
      j.state = 'waiting';
      j.attemptsMade = 0;
      j.runAt = Date.now();
      j.finishedAt = null;
      n++;
    }
    this.pump(k);
    return Promise.resolve(n);
  }

  clean(queue: string, state: 'completed' | 'failed', graceMs: number): Promise<number> {
    const k = this.kindOf(queue);
    const before = Date.now() - graceMs;
    let n = 0;
    for (const j of [...k.jobs.values()]) {
      if (j.state === state && (j.finishedAt ?? 0) <= before) {
        k.jobs.delete(j.id);
        n++;
      }
    }
    return Promise.resolve(n);
  }

  async close(graceMs = 10_000): Promise<void> {
    this.closed = true;
    for (const k of this.kinds.values()) {
      if (k.timer) clearTimeout(k.timer);
      if (k.schedule) clearInterval(k.schedule);
    }
    const grace = setTimeout(() => this.shutdown.abort(new Error('the worker is shutting down')), graceMs);
    grace.unref();
    while (this.active.size > 0) await Promise.allSettled([...this.active]);
    clearTimeout(grace);
  }

  /** Starts due jobs up to the kind's concurrency and arms a timer for the next delayed one. */
  private pump(k: Kind): void {
    if (!this.started || this.closed) return;
    const now = Date.now();
    let next = Infinity;
    for (const j of k.jobs.values()) {
      if (j.state !== 'waiting' && j.state !== 'delayed') continue;
      if (j.runAt > now) {
        next = Math.min(next, j.runAt);
        continue;
      }
      if (k.running >= k.options.concurrency) break;
      this.run(k, j);
    }
    if (next < k.timerAt) {
      if (k.timer) clearTimeout(k.timer);
      k.timerAt = next;
      k.timer = setTimeout(() => {
        k.timer = null;
        k.timerAt = Infinity;
        this.pump(k);
      }, next - now);
      k.timer.unref();
    }
  }

  private run(k: Kind, j: MemoryJob): void {
    j.state = 'active';
    j.attemptsMade++;
    k.running++;
    const started = process.hrtime.bigint();
    const p = runAttempt(k.handler, j.data as never, { id: j.id, attempt: j.attemptsMade, outer: this.shutdown.signal }, k.options.timeoutMs).then(
      () => {
        j.state = 'completed';
        j.finishedAt = Date.now();
        this.observer?.finished(k.name, seconds(started), 'ok');
      },
      (err: unknown) => {
        j.failedReason = err instanceof Error ? err.message : String(err);
        const retry = j.attemptsMade < k.options.attempts && !this.closed;
        this.observer?.finished(k.name, seconds(started), retry ? 'retry' : 'failed', err);
        if (retry) {
          j.state = 'delayed';
          j.runAt = Date.now() + backoffDelay(k.options.backoffMs, j.attemptsMade);
        } else {
          j.state = 'failed';
          j.finishedAt = Date.now();
        }
      },
    );
    const tracked = p.finally(() => {
      k.running--;
      this.active.delete(tracked);
      trim(k);
      this.pump(k);
    });
    this.active.add(tracked);
  }
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Drops the oldest finished jobs beyond {@link KEEP_FINISHED} per state. */
function trim(k: Kind): void {
  for (const state of ['completed', 'failed'] as const) {
    let extra = [...k.jobs.values()].filter((j) => j.state === state).length - KEEP_FINISHED;
    for (const j of k.jobs.values()) {
      if (extra <= 0) break;
      if (j.state === state) {
        k.jobs.delete(j.id);
        extra--;
      }
    }
  }
}
