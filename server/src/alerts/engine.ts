/**
 * Runs the detectors on committed events, off the append's critical path: the ingest hands each
 * committed batch to {@link DetectorEngine.observe} (a push onto a bounded queue, nothing else),
 * and the engine evaluates it later on the event loop — settings (cached), every sliding-window
 * hit of the batch in one round trip to the window store, then one raise per detector and subject
 * that fired. A receipt never waits for a detector, and a detector failure never fails an append.
 */
import type { AlertService, RaiseInput } from './service';
import { evaluate, type BuiltInDetector, type ObservedEvent } from './detectors';
import type { WindowOp, WindowStore } from './windows';

/** A committed event as the ingest reports it (field values as committed). */
export interface CommittedEventView {
  id: string;
  leafIndex: number;
  recordedAt: Date;
  values: Partial<Record<string, unknown>>;
}

/** What the engine reports (metrics, logs). */
export interface DetectorObserver {
  /** A batch was evaluated. */
  evaluated?(events: number, seconds: number): void;
  /** Events were not evaluated because the queue was full. */
  dropped?(events: number): void;
  /** An alert was raised or added to. */
  raised?(detector: string, created: boolean): void;
  /** Evaluating a batch failed (the events were not evaluated). */
  failed?(err: unknown): void;
}

/** Tuning of {@link DetectorEngine}. */
export interface DetectorEngineOptions {
  /** The clock of the sliding windows (tests inject one). */
  now?: () => number;
  /** Most events waiting for evaluation; beyond it batches are dropped and counted (default 100,000). */
  maxQueue?: number;
}

/** Most event ids a window keeps to attach to the alert it fires. */
const MAX_IDS = 100;

/** Turns committed field values into what the detectors read. */
export function observedOf(e: CommittedEventView): ObservedEvent {
  const v = e.values;
  const str = (x: unknown) => (typeof x === 'string' ? x : undefined);
  const status = v.status === 'failure' || v.status === 'attempt' ? v.status : 'success';
  return {
    id: e.id,
    action: str(v.action) ?? '',
    status,
    principalId: str(v.principalId),
    dataClassification: str(v.dataClassification),
    timestamp: str(v.timestamp),
    recordedAt: e.recordedAt,
    sessionContext: typeof v.sessionContext === 'object' && v.sessionContext !== null ? v.sessionContext : undefined,
    details: typeof v.details === 'object' && v.details !== null && !Array.isArray(v.details) ? (v.details as Record<string, unknown>) : undefined,
  };
}

/** Evaluates the detectors on committed batches, asynchronously and in order. */
export class DetectorEngine {
  private readonly queue: Array<{ org: string; events: ObservedEvent[] }> = [];
  private queued = 0;
  private running: Promise<void> | null = null;
  private closed = false;
  private readonly now: () => number;
  private readonly maxQueue: number;

  constructor(
    private readonly windows: WindowStore,
    private readonly alerts: Pick<AlertService, 'raise' | 'settings'>,
    private readonly observer: DetectorObserver = {},
    options: DetectorEngineOptions = {},
  ) {
    this.now = options.now ?? (() => Date.now());
    this.maxQueue = options.maxQueue ?? 100_000;
  }

  /** Queues a committed batch for evaluation; returns at once. */
  observe(org: string, events: CommittedEventView[]): void {
    if (this.closed || events.length === 0) return;
    if (this.queued + events.length > this.maxQueue) {
      this.observer.dropped?.(events.length);
      return;
    }
    this.queue.push({ org, events: events.map(observedOf) });
    this.queued += events.length;
    this.kick();
  }

  /** Evaluates already-observed events directly (tests, tools); resolves when their alerts are raised. */
  async evaluate(org: string, events: ObservedEvent[]): Promise<void> {
    await this.process(org, events);
  }

  private kick(): void {
    if (this.running) return;
    this.running = this.work().finally(() => {
      this.running = null;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async work(): Promise<void> {
    // Leave the committing call stack first: the receipt is computed before any detector runs.
    await new Promise((r) => setImmediate(r));
    for (;;) {
      const item = this.queue.shift();
      if (!item) return;
      this.queued -= item.events.length;
      const started = process.hrtime.bigint();
      try {
        await this.process(item.org, item.events);
        this.observer.evaluated?.(item.events.length, Number(process.hrtime.bigint() - started) / 1e9);
      } catch (err) {
        this.observer.failed?.(err);
      }
    }
  }

  private async process(org: string, events: ObservedEvent[]): Promise<void> {
    const settings = await this.alerts.settings(org);
    const hits = [];
    const instants = [];
    for (const e of events) {
      const r = evaluate(e, settings.thresholds, settings.timeZone);
      hits.push(...r.windows);
      instants.push(...r.instants);
    }
    if (hits.length === 0 && instants.length === 0) return;
    const now = this.now();
    const ops: WindowOp[] = hits.map((h) => ({
      key: `${org}:${h.detector}:${h.measure}:${h.subject}`,
      windowMs: h.windowMs,
      weight: h.weight,
      id: h.eventId,
      keepIds: Math.min(h.threshold, MAX_IDS),
    }));
    const results = await this.windows.hit(ops, now);

    const fired = new Map<string, { detector: BuiltInDetector; subject: string; ids: string[]; count: number; context: Record<string, unknown> }>();
    const add = (detector: BuiltInDetector, subject: string, ids: string[], context: Record<string, unknown>) => {
      const key = `${detector}\u0000${subject}`;
      const f = fired.get(key) ?? { detector, subject, ids: [], count: 0, context: {} };
      f.ids.push(...ids);
      f.count += ids.length;
      Object.assign(f.context, context);
      fired.set(key, f);
    };
    hits.forEach((h, i) => {
      const { sum, ids } = results[i]!;
      if (sum < h.threshold) return;
      // The hit that crosses the threshold brings the window's events; later ones only themselves.
      const crossed = sum - h.weight < h.threshold;
      add(h.detector, h.subject, crossed ? [...ids].reverse() : [h.eventId], { ...h.context, [`${h.measure === 'n' ? 'inWindow' : h.measure + 'InWindow'}`]: sum });
    });
    for (const x of instants) add(x.detector, x.subject, [x.eventId], x.context);

    for (const f of fired.values()) {
      const input: RaiseInput = { detector: f.detector, subject: f.subject, eventIds: f.ids, count: Math.max(1, new Set(f.ids).size), context: f.context };
      const alert = await this.alerts.raise(org, input);
      this.observer.raised?.(f.detector, alert.created);
    }
  }

  /** Waits until every queued batch was evaluated (tests; shutdown). */
  async flush(): Promise<void> {
    while (this.running || this.queue.length > 0) {
      if (!this.running) this.kick();
      await this.running;
    }
  }

  /** Stops taking batches and finishes the queued ones. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}
