/**
 * Checkpoint publication ("witnessing"): every new signed checkpoint is appended to external,
 * append-only destinations, so a server that later rewrites or rolls back its history contradicts
 * a statement it can no longer take back. Two destinations: a local directory (one file per
 * checkpoint, never overwritten; mount it from storage the database superuser cannot write) and
 * an HTTP POST to a configured URL (a transparency witness, a log collector, an object store
 * gateway). Publication is asynchronous: it never delays an acknowledgement, and it retries.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openCheckpoint, type Checkpoint, type Verifier } from '../ledger';

/** Where checkpoints are published. */
export interface WitnessDestination {
  /** For logs and metrics: `dir:/path` or `http:https://…`. */
  readonly name: string;
  /** Publishes one checkpoint note; resolves once it is durably accepted. */
  publish(org: string, treeSize: number, note: string): Promise<void>;
}

/** A destination already holds a different checkpoint at that size: a split view of the log. */
export class WitnessConflictError extends Error {
  constructor(
    readonly org: string,
    readonly treeSize: number,
  ) {
    super(`witness already holds a different checkpoint for ${org} at size ${treeSize}`);
    this.name = 'WitnessConflictError';
  }
}

const fileName = (treeSize: number) => `${String(treeSize).padStart(16, '0')}.checkpoint`;

/** One file per checkpoint under `<dir>/<organizationId>/`, created exclusively, fsynced. */
export class DirectoryWitness implements WitnessDestination {
  readonly name: string;

  constructor(private readonly dir: string) {
    this.name = `dir:${dir}`;
  }

  async publish(org: string, treeSize: number, note: string): Promise<void> {
    const orgDir = path.join(this.dir, org);
    await fs.promises.mkdir(orgDir, { recursive: true });
    const file = path.join(orgDir, fileName(treeSize));
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(file, 'wx', 0o444); // never overwrite: append-only by construction
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const existing = await fs.promises.readFile(file, 'utf8');
      if (existing === note) return; // a retry after a crash: already published
      throw new WitnessConflictError(org, treeSize);
    }
    try {
      await handle.writeFile(note, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

/** The newest checkpoint published to a directory witness for `org`, verified; null if none. */
export async function latestWitnessed(dir: string, org: string, verifiers: Verifier[]): Promise<{ checkpoint: Checkpoint; note: string } | null> {
  let names: string[];
  try {
    names = await fs.promises.readdir(path.join(dir, org));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const last = names.filter((n) => /^\d{16}\.checkpoint$/.test(n)).sort().at(-1);
  if (!last) return null;
  const note = await fs.promises.readFile(path.join(dir, org, last), 'utf8');
  return { checkpoint: openCheckpoint(note, verifiers).checkpoint, note };
}

/** POSTs the note (text/plain) to a URL; any 2xx accepts it. */
export class HttpWitness implements WitnessDestination {
  readonly name: string;

  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
  ) {
    this.name = `http:${url}`;
  }

  async publish(org: string, treeSize: number, note: string): Promise<void> {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'text/plain; charset=utf-8',
        'x-audit-organization': org,
        'x-audit-tree-size': String(treeSize),
      },
      body: note,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new Error(`witness ${this.url} answered ${res.status}`);
  }
}

/** What the publisher reports (logs, metrics). */
export interface WitnessObserver {
  published(destination: string): void;
  failed(destination: string, err: unknown, willRetry: boolean): void;
}

interface Job {
  org: string;
  treeSize: number;
  note: string;
  attempts: number;
}

/**
 * Queues checkpoints per destination and publishes them in order, retrying with exponential
 * backoff. A conflict is never retried (it is evidence, reported once). The queue is bounded:
 * when a destination is down for long, the oldest pending checkpoints are dropped — a later
 * checkpoint is consistent with (and so vouches for) every earlier one of the same log.
 */
export class WitnessPublisher {
  private readonly queues: Job[][];
  private readonly running: Array<Promise<void> | null>;
  private closed = false;

  constructor(
    private readonly destinations: WitnessDestination[],
    private readonly observer: WitnessObserver,
    private readonly options: { maxAttempts: number; baseDelayMs: number; maxQueue: number } = { maxAttempts: 8, baseDelayMs: 200, maxQueue: 10_000 },
  ) {
    this.queues = destinations.map(() => []);
    this.running = destinations.map(() => null);
  }

  /** Queues a freshly signed checkpoint for every destination. */
  enqueue(org: string, treeSize: number, note: string): void {
    if (this.closed) return;
    this.destinations.forEach((_, i) => {
      const q = this.queues[i]!;
      q.push({ org, treeSize, note, attempts: 0 });
      if (q.length > this.options.maxQueue) q.shift();
      this.kick(i);
    });
  }

  private kick(i: number): void {
    if (this.running[i]) return;
    this.running[i] = this.work(i).finally(() => {
      this.running[i] = null;
      if (this.queues[i]!.length > 0 && !this.closed) this.kick(i);
    });
  }

  private async work(i: number): Promise<void> {
    const d = this.destinations[i]!;
    const q = this.queues[i]!;
    while (q.length > 0) {
      const job = q[0]!;
      try {
        await d.publish(job.org, job.treeSize, job.note);
        this.observer.published(d.name);
        q.shift();
      } catch (err) {
        job.attempts++;
        const retry = !(err instanceof WitnessConflictError) && job.attempts < this.options.maxAttempts && !this.closed;
        this.observer.failed(d.name, err, retry);
        if (!retry) {
          q.shift();
          continue;
        }
        await new Promise((r) => setTimeout(r, this.options.baseDelayMs * 2 ** (job.attempts - 1)).unref());
      }
    }
  }

  /** Waits until every queued checkpoint was published or given up (bounded by the retries). */
  async flush(): Promise<void> {
    for (;;) {
      const busy = this.running.filter((p): p is Promise<void> => p !== null);
      if (busy.length === 0) return;
      await Promise.allSettled(busy);
    }
  }

  /** Stops retrying and waits for in-flight publications. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}
