/**
 * Live streams of new events and alerts (docs/alerts.md §8): one {@link StreamHub} per process, one
 * {@link Subscription} per connected client (SSE or tRPC subscription).
 *
 * Pull, not push: a subscription holds a cursor (the next leaf index to send) and the log size it
 * knows of; its consumer asks for the next item, and the subscription reads the next page of
 * events from the database when it needs one. A notification on the bus only raises the known
 * size. So the memory of a client is bounded by one page of events plus a bounded queue of alert
 * changes, however slow it reads, and resuming (`Last-Event-ID`) is the same code as streaming. A
 * client that falls more than `maxLagEvents` behind the log, or lets `maxAlerts` alert changes
 * pile up, is disconnected with the reason; it can resume from its last event id.
 */
import type { AlertChange, AlertView } from '../alerts/service';
import type { Database } from '../db/client';
import { AppError } from '../errors';
import * as eventsRepo from '../events/repository';
import type { EventRecord } from '../events/schema';
import { readHead } from '../tlog/repository';
import type { StreamBus, StreamNotice } from './bus';

/** One item of a stream. */
export type StreamItem = { type: 'event'; leafIndex: number; event: EventRecord } | { type: 'alert'; change: AlertChange; alert: AlertView };

/** Transforms a page of event records for the caller (pseudonyms), before they are sent. */
export type RecordView = (records: EventRecord[]) => Promise<EventRecord[]>;
/** How a subscriber sees alerts (pseudonyms for those who do not see identifiers). */
export type AlertsView = (alerts: AlertView[]) => Promise<AlertView[]>;

/** Tuning of the hub. */
export interface StreamHubOptions {
  /** Most subscriptions in this process (beyond: 503). */
  maxClients: number;
  /** A client further behind the log than this is disconnected. */
  maxLagEvents: number;
  /** Events read from the database per page (default 100). */
  pageSize?: number;
  /** Alert changes queued per client before it is disconnected (default 100). */
  maxAlerts?: number;
}

/** What the hub reports (metrics, logs). */
export interface StreamObserver {
  connected?(): void;
  /** A subscription ended, with the reason. */
  disconnected?(reason: string, slow: boolean): void;
}

/** Why a subscription ended when the server ended it. */
export const SLOW_CONSUMER = 'slow consumer';

interface OrgState {
  size: number;
  subs: Set<Subscription>;
  stop: (() => void) | null;
  listening: Promise<void> | null;
}

/** One client's stream. Iterate it (`for await`) or call {@link next}; {@link close} ends it. */
export class Subscription implements AsyncIterable<StreamItem> {
  /** The next leaf index to send. */
  cursor: number;
  /** Set once ended: why. */
  closedReason: string | null = null;
  private page: EventRecord[] = [];
  private readonly alerts: StreamItem[] = [];
  private wake: (() => void) | null = null;
  private readonly closeHandlers: Array<(reason: string) => void> = [];

  constructor(
    private readonly hub: StreamHub,
    readonly org: string,
    start: number,
    private readonly wantsAlerts: boolean,
    private readonly view: RecordView,
    private readonly alertsView: AlertsView,
  ) {
    this.cursor = start;
  }

  /** The id a client resumes from: the last leaf index sent (-1 before the first). */
  get lastEventId(): number {
    return this.cursor - 1;
  }

  /** Items buffered now (one page of events at most, plus queued alerts). */
  get buffered(): number {
    return this.page.length + this.alerts.length;
  }

  /** The next item, waiting for one; null once the subscription is closed. */
  async next(): Promise<StreamItem | null> {
    for (;;) {
      if (this.closedReason !== null) return null;
      const alert = this.alerts.shift();
      if (alert?.type === 'alert') return { ...alert, alert: (await this.alertsView([alert.alert]))[0]! };
      const event = this.page.shift();
      if (event) {
        this.cursor = event.leafIndex + 1;
        return { type: 'event', leafIndex: event.leafIndex, event };
      }
      const size = this.hub.sizeOf(this.org);
      if (this.cursor < size) {
        const rows = await this.hub.read(this.org, this.cursor, Math.min(size, this.cursor + this.hub.pageSize));
        this.page = await this.view(rows.filter((r) => r.leafIndex >= this.cursor));
        if (this.page.length === 0) this.cursor = Math.min(size, this.cursor + this.hub.pageSize); // a gap (none expected)
        continue;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamItem> {
    return {
      next: async () => {
        const item = await this.next();
        return item ? { value: item, done: false } : { value: undefined, done: true };
      },
      return: () => {
        this.close('client closed');
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  /** Called with the reason once the subscription ends. */
  onClose(handler: (reason: string) => void): void {
    if (this.closedReason !== null) handler(this.closedReason);
    else this.closeHandlers.push(handler);
  }

  /** Ends the subscription (idempotent). */
  close(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    this.page = [];
    this.alerts.length = 0;
    this.hub.remove(this);
    this.wake?.();
    for (const h of this.closeHandlers.splice(0)) h(reason);
  }

  /** The hub heard of new events or an alert. */
  notify(notice: StreamNotice, maxLag: number, maxAlerts: number): void {
    if (notice.kind === 'events') {
      const behind = notice.size - this.cursor;
      if (behind > maxLag) {
        this.close(`${SLOW_CONSUMER}: ${behind} events behind the log (limit ${maxLag}); resume from Last-Event-ID ${this.lastEventId}`);
        return;
      }
    } else {
      if (!this.wantsAlerts) return;
      if (this.alerts.length >= maxAlerts) {
        this.close(`${SLOW_CONSUMER}: more than ${maxAlerts} alert changes waiting; resume from Last-Event-ID ${this.lastEventId}`);
        return;
      }
      this.alerts.push({ type: 'alert', change: notice.change, alert: notice.alert });
    }
    this.wake?.();
  }
}

/** Every subscription of this process, by organization, fed by the bus. */
export class StreamHub {
  private readonly orgs = new Map<string, OrgState>();
  private count = 0;
  private closed = false;
  readonly pageSize: number;
  private readonly maxAlerts: number;

  constructor(
    private readonly database: Database,
    private readonly bus: StreamBus,
    private readonly options: StreamHubOptions,
    private readonly observer: StreamObserver = {},
  ) {
    this.pageSize = options.pageSize ?? 100;
    this.maxAlerts = options.maxAlerts ?? 100;
  }

  /** Subscriptions open now. */
  get clients(): number {
    return this.count;
  }

  /** Items buffered by every subscription now (bounded: see the module comment). */
  get buffered(): number {
    let n = 0;
    for (const s of this.orgs.values()) for (const sub of s.subs) n += sub.buffered;
    return n;
  }

  /** The ingest committed events (after COMMIT): tell every replica the log's new size. */
  committed(org: string, appended: ReadonlyArray<{ leafIndex: number }>): void {
    if (appended.length === 0) return;
    let size = 0;
    for (const e of appended) if (e.leafIndex >= size) size = e.leafIndex + 1;
    this.bus.publish(org, { kind: 'events', size });
  }

  /** An alert was raised or changed: tell every replica. */
  alertChanged(org: string, alert: AlertView, change: AlertChange): void {
    this.bus.publish(org, { kind: 'alert', change, alert });
  }

  /**
   * Opens a subscription to `org` from the event after `lastEventId` (null: only events appended
   * from now on). Refused with 503 beyond `maxClients`, and with 409 when `lastEventId` is further
   * behind the log than `maxLagEvents` (catch up with a query or an export bundle first).
   */
  async subscribe(org: string, opts: { lastEventId: number | null; alerts: boolean; view?: RecordView; alertsView?: AlertsView }): Promise<Subscription> {
    if (this.closed) throw new AppError('UNAVAILABLE', 'server is shutting down; reconnect to another replica');
    if (this.count >= this.options.maxClients) throw new AppError('UNAVAILABLE', `too many live streams on this server (STREAM_MAX_CLIENTS ${this.options.maxClients}); retry later`);
    this.count++;
    try {
      const state = await this.listen(org);
      const head = (await readHead(this.database.db, org))?.size ?? 0;
      if (head > state.size) state.size = head;
      const start = opts.lastEventId === null ? state.size : Math.min(opts.lastEventId + 1, state.size);
      if (state.size - start > this.options.maxLagEvents) {
        throw new AppError(
          'CONFLICT',
          `Last-Event-ID ${opts.lastEventId} is ${state.size - start} events behind the log (limit ${this.options.maxLagEvents}): catch up with events.query or GET /api/v1/ledger/leaves, then resume`,
        );
      }
      const sub = new Subscription(this, org, start, opts.alerts, opts.view ?? ((r) => Promise.resolve(r)), opts.alertsView ?? ((a) => Promise.resolve(a)));
      state.subs.add(sub);
      this.observer.connected?.();
      return sub;
    } catch (err) {
      this.count--;
      this.release(org);
      throw err;
    }
  }

  private async listen(org: string): Promise<OrgState> {
    let state = this.orgs.get(org);
    if (!state) {
      const s: OrgState = { size: 0, subs: new Set(), stop: null, listening: null };
      state = s;
      this.orgs.set(org, s);
      s.listening = this.bus.listen(org, (n) => this.onNotice(org, n)).then((stop) => {
        s.stop = stop;
        if (this.orgs.get(org) !== s) stop(); // released meanwhile
      });
    }
    await state.listening;
    return state;
  }

  private onNotice(org: string, notice: StreamNotice): void {
    const state = this.orgs.get(org);
    if (!state) return;
    if (notice.kind === 'events' && notice.size > state.size) state.size = notice.size;
    for (const sub of [...state.subs]) sub.notify(notice, this.options.maxLagEvents, this.maxAlerts);
  }

  /** The log size `org`'s subscriptions know of. */
  sizeOf(org: string): number {
    return this.orgs.get(org)?.size ?? 0;
  }

  /** Event records of leaves [start, end). */
  async read(org: string, start: number, end: number): Promise<EventRecord[]> {
    const rows = await eventsRepo.findLeafRange(this.database.db, org, start, end);
    return rows.map(eventsRepo.toRecord);
  }

  /** A subscription ended. */
  remove(sub: Subscription): void {
    const state = this.orgs.get(sub.org);
    if (!state?.subs.delete(sub)) return;
    this.count--;
    this.observer.disconnected?.(sub.closedReason ?? 'closed', (sub.closedReason ?? '').startsWith(SLOW_CONSUMER));
    this.release(sub.org);
  }

  private release(org: string): void {
    const state = this.orgs.get(org);
    if (!state || state.subs.size > 0) return;
    this.orgs.delete(org);
    state.stop?.();
  }

  /** Ends every subscription (shutdown) and stops listening. */
  async close(): Promise<void> {
    this.closed = true;
    for (const state of [...this.orgs.values()]) for (const sub of [...state.subs]) sub.close('server shutting down; reconnect with Last-Event-ID');
    await this.bus.close();
  }
}
