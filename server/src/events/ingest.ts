/**
 * Group commit (docs/architecture.md §3): concurrent appends for one
 * organization are coalesced in-process into one transaction of up to `maxBatch` events; across
 * processes the organization's head row is locked (SELECT … FOR UPDATE), so leaf indexes are
 * contiguous and the tree never forks. A promise resolves only after COMMIT, with the event's
 * receipt.
 *
 * One event must never fail its neighbours: every field is committed (RFC 8785 canonical form and
 * salted hash) before the event joins a batch, so a batch can only fail in the database; if the
 * database refuses a batch because of the row of one of its events, the batch is split in halves
 * and each is retried, until the event at fault is alone and fails on its own (a 400 when its data
 * was refused, a 500 otherwise).
 */
import type { Database, Tx } from '../db/client';
import { classifyDatabaseError, databaseUnavailable, sqlstateOf } from '../db/errors';
import { AppError } from '../errors';
import { formatRecordedAt, frontierNodes, planInclusion, proveInclusion, type NodeId } from '../ledger';
import { LogWriter, type AppendedLog, type CheckpointSigner } from '../tlog/log-writer';
import { readNodes, readNodesAndSize } from '../tlog/repository';
import { uuidv7 } from '../util/uuid';
import { createSaltSource, prepareEvent, sealEvent, type FieldValues, type PreparedEvent } from './commit-form';
import * as repo from './repository';
import type { EventInput, Receipt } from './schema';

/** A failed append, as reported to the observer: a code and counts, never a value. */
export interface AppendFailure {
  /** SQLSTATE when the database refused, else null. */
  sqlstate: string | null;
  /** Whose fault it was: the input's (a 400) or the server's. */
  fault: 'input' | 'transient' | 'internal';
  /** Events failed by this error. */
  events: number;
}

/**
 * Batch observer (metrics, checkpoint witnessing, logs). Every hook is called after COMMIT or
 * after a failure is settled, and is isolated: a hook that throws (or returns a promise that
 * rejects) is reported to {@link hookFailed} and changes nothing about the appends — they are not
 * retried, not re-appended, and their receipts are answered as if the hook had succeeded.
 */
export interface IngestObserver {
  batchCommitted(size: number): void;
  /** A new checkpoint was signed and committed (called after COMMIT, never awaited). */
  checkpointCommitted?(org: string, treeSize: number, note: string): void;
  /** Events failed; the others of their batch were retried without them. */
  appendFailed?(failure: AppendFailure): void;
  /**
   * The events a batch appended (not idempotent repeats), called after COMMIT, before the receipts
   * are computed, never awaited: it must only hand them on (detectors, live streams).
   */
  eventsCommitted?(org: string, events: CommittedEventInfo[]): void;
  /**
   * A hook above threw. `err` is the hook's own error: its message may carry event values, so an
   * implementation logs its name only (never the message) and counts it.
   */
  hookFailed?(hook: IngestHook, err: unknown): void;
}

/** The hooks of {@link IngestObserver} that {@link IngestObserver.hookFailed} can name. */
export type IngestHook = 'batchCommitted' | 'checkpointCommitted' | 'appendFailed' | 'eventsCommitted';

/** A newly appended event as {@link IngestObserver.eventsCommitted} reports it. */
export interface CommittedEventInfo {
  id: string;
  leafIndex: number;
  recordedAt: Date;
  /** Field values as committed. */
  values: FieldValues;
}

/** Tuning of {@link IngestService}. */
export interface IngestOptions {
  maxBatch: number;
  maxWaitMs: number;
  /**
   * How long a batch is retried while the database is unavailable (restart, failover) before its
   * events fail with a 503 (default 0: at once).
   */
  retryMs?: number;
}

/**
 * The connection was lost after COMMIT was sent, and the database did not come back within the
 * retry budget to tell whether the batch was stored.
 */
class CommitOutcomeUnknown extends Error {
  constructor(cause: unknown) {
    super('commit outcome unknown', { cause });
    this.name = 'CommitOutcomeUnknown';
  }
}

/** What one attempt of {@link IngestService.commit} got to. */
interface Attempt {
  /** Set when the transaction's statements all succeeded: COMMIT was sent next. */
  body?: Committed;
  /** The earlier attempt passed in was found not stored (under the head lock). */
  previousNotStored?: boolean;
}

/** A receipt without its inclusion proof (what a compact bulk answer carries per event). */
export type Placement = Omit<Receipt, 'inclusionProof'>;

/** Per-append options of {@link IngestService.append}. */
export interface AppendOptions {
  /** Whether each receipt carries its inclusion proof (default true). */
  proofs?: boolean;
  /**
   * A change to commit together with each event of this call: run inside the append transaction
   * (after the head lock, before the leaves are written), once per event, whether the event is
   * appended now or found as an idempotent repeat. A throw rolls the transaction back: the event
   * fails alone (its batch is split as for a refused row) and nothing of the change is stored.
   * The transaction may be retried, so the change must be one that a rolled-back attempt leaves
   * undone (plain statements on `tx`, never another connection). The ledger outbox deletes its
   * row here, so that an event is drained exactly once.
   */
  inAppendTransaction?: (tx: Tx) => Promise<void>;
}

interface Pending {
  event: PreparedEvent;
  /** Whether the receipt needs its inclusion proof (computed only then). */
  proof: boolean;
  /** {@link AppendOptions.inAppendTransaction}. */
  inAppendTransaction?: (tx: Tx) => Promise<void>;
  resolve: (r: Receipt | Placement) => void;
  reject: (e: unknown) => void;
}

interface OrgQueue {
  pending: Pending[];
  timer: NodeJS.Timeout | null;
  flushing: Promise<void> | null;
}

/** What one append transaction committed. */
interface Committed extends AppendedLog {
  placed: Placed[];
  /**
   * The events this transaction appended (not idempotent repeats), with the values it committed:
   * kept with the attempt, so an attempt found stored after a lost COMMIT reports its own values.
   */
  appended: CommittedEventInfo[];
}

interface Placed {
  leafIndex: number;
  id: string;
  recordedAt: Date;
  duplicate: boolean;
}

/** The client-safe error for a failed append; the database error itself is never passed on. */
function appendError(fault: AppendFailure['fault'], sqlstate: string | null): AppError {
  switch (fault) {
    case 'input':
      return new AppError('BAD_REQUEST', `the database refused this event (SQLSTATE ${sqlstate ?? 'unknown'})`, [
        { path: '(root)', message: 'a value of this event cannot be stored' },
      ]);
    case 'transient':
      return databaseUnavailable('nothing was stored, retry');
    case 'internal':
      return new AppError('INTERNAL', 'internal error');
  }
}

/** The wait before the first retry of a batch the database could not take. */
export const FIRST_RETRY_DELAY_MS = 50;

/** The wait before the next retry: doubled each time, at most a second, so a failover is met soon after it ends. */
export function nextRetryDelay(delay: number): number {
  return Math.min(delay * 2, 1_000);
}

/** Appends events to organizations' ledgers. */
export class IngestService {
  private readonly queues = new Map<string, OrgQueue>();
  /** Receipts being computed for committed batches (drain waits for them too). */
  private readonly settling = new Set<Promise<void>>();
  private readonly salt = createSaltSource();
  private closed = false;
  private readonly log: LogWriter;

  constructor(
    private readonly database: Database,
    signer: CheckpointSigner,
    private readonly options: IngestOptions,
    private readonly observer: IngestObserver = { batchCommitted: () => undefined },
  ) {
    this.log = new LogWriter(signer);
  }

  /**
   * Appends parsed events; returns one promise per event, each resolving after COMMIT with its
   * receipt or rejecting on its own (an event's failure never fails another's promise). With
   * `{ proofs: false }` the receipts carry no inclusion proof and none is computed.
   */
  append(org: string, inputs: EventInput[], options?: { proofs?: true; inAppendTransaction?: AppendOptions['inAppendTransaction'] }): Array<Promise<Receipt>>;
  append(org: string, inputs: EventInput[], options: AppendOptions): Array<Promise<Receipt | Placement>>;
  append(org: string, inputs: EventInput[], options: AppendOptions = {}): Array<Promise<Receipt | Placement>> {
    const proof = options.proofs ?? true;
    const inAppendTransaction = options.inAppendTransaction;
    // 503, not 500: a proxy may retry the request on another replica.
    if (this.closed) return inputs.map(() => Promise.reject(new AppError('UNAVAILABLE', 'server is shutting down; retry on another replica')));
    let q = this.queues.get(org);
    if (!q) {
      q = { pending: [], timer: null, flushing: null };
      this.queues.set(org, q);
    }
    const queue = q;
    const promises = inputs.map((input) => {
      let event: PreparedEvent;
      try {
        event = prepareEvent(input, this.salt);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      return new Promise<Receipt | Placement>((resolve, reject) => queue.pending.push({ event, proof, ...(inAppendTransaction ? { inAppendTransaction } : {}), resolve, reject }));
    });
    this.schedule(org, queue);
    return promises;
  }

  private schedule(org: string, q: OrgQueue): void {
    if (q.flushing || q.pending.length === 0) {
      // Nothing to append (every event failed before batching, or none was given): no queue is left
      // behind for drain() to wait on.
      if (!q.flushing && !q.timer) this.queues.delete(org);
      return; // the running flush reschedules when it ends
    }
    if (q.pending.length >= this.options.maxBatch || this.options.maxWaitMs === 0) {
      if (q.timer) clearTimeout(q.timer);
      q.timer = null;
      this.flush(org, q);
    } else if (!q.timer) {
      q.timer = setTimeout(() => {
        q.timer = null;
        this.flush(org, q);
      }, this.options.maxWaitMs);
    }
  }

  private flush(org: string, q: OrgQueue): void {
    const batch = q.pending.splice(0, this.options.maxBatch);
    // Pipelining: appendIsolated returns once its last transaction committed; the receipts are
    // computed after that, while the next batch's transaction is already in flight.
    q.flushing = this.appendIsolated(org, batch).then(() => {
      q.flushing = null;
      this.next(org, q);
    });
  }

  /**
   * Commits `batch`, isolating an event the database refuses: an error that may come from one
   * event's row (a data exception, or an unexpected error such as a failing trigger) splits the
   * batch in halves that are retried in order, so only the event at fault fails. An outage
   * (connection lost, database restarting) fails the whole batch at once with a 503: nothing of
   * it was stored and each client may retry. Never rejects.
   */
  private async appendIsolated(org: string, batch: Pending[]): Promise<void> {
    let committed: Committed;
    try {
      committed = await this.commitRetrying(org, batch);
    } catch (err) {
      if (err instanceof CommitOutcomeUnknown) {
        this.hook('appendFailed', () => this.observer.appendFailed?.({ sqlstate: sqlstateOf(err), fault: 'transient', events: batch.length }));
        const error = databaseUnavailable('the events may have been stored: retry with the same idempotencyKey (without one, a retry may store an event twice)');
        batch.forEach((p) => p.reject(error));
        return;
      }
      const fault = classifyDatabaseError(err);
      if (fault !== 'transient' && batch.length > 1) {
        const half = Math.ceil(batch.length / 2);
        await this.appendIsolated(org, batch.slice(0, half));
        await this.appendIsolated(org, batch.slice(half));
        return;
      }
      const sqlstate = sqlstateOf(err);
      this.hook('appendFailed', () => this.observer.appendFailed?.({ sqlstate, fault, events: batch.length }));
      const error = appendError(fault, sqlstate);
      batch.forEach((p) => p.reject(error));
      return;
    }
    // Committed: from here on nothing may send the batch back to commitRetrying or the split
    // above — that would append its events a second time — so the hooks run here, isolated.
    this.committedHooks(org, committed);
    const settled = this.receipts(org, committed, batch).then(
      (receipts) => batch.forEach((p, i) => p.resolve(receipts[i]!)),
      (err: unknown) => {
        // Committed, but the receipts could not be read: a retry with the same idempotency key
        // returns them. Never "nothing was stored": the events were.
        const fault = classifyDatabaseError(err) === 'transient' ? 'transient' : 'internal';
        this.hook('appendFailed', () => this.observer.appendFailed?.({ sqlstate: sqlstateOf(err), fault, events: batch.length }));
        const error =
          fault === 'transient'
            ? databaseUnavailable('the events were stored but their receipts could not be read: retry with the same idempotencyKey (without one, a retry stores an event twice)')
            : appendError('internal', null);
        batch.forEach((p) => p.reject(error));
      },
    );
    this.settling.add(settled);
    void settled.finally(() => this.settling.delete(settled));
  }

  /** The after-COMMIT hooks of a committed batch (nothing when it appended no leaf). */
  private committedHooks(org: string, committed: Committed): void {
    if (committed.nodes.length === 0) return;
    this.hook('batchCommitted', () => this.observer.batchCommitted(committed.nodes.filter((n) => n.level === 0).length));
    this.hook('checkpointCommitted', () => this.observer.checkpointCommitted?.(org, committed.size, committed.note));
    this.hook('eventsCommitted', () => this.observer.eventsCommitted?.(org, committed.appended));
  }

  /**
   * Runs one observer hook so that it cannot fail an append: a throw, or a returned promise that
   * rejects, goes to `hookFailed` (itself guarded) and nowhere else.
   */
  private hook(name: IngestHook, run: () => unknown): void {
    const failed = (err: unknown) => {
      try {
        this.observer.hookFailed?.(name, err);
      } catch {
        /* the reporter of failures failed: nothing left to tell */
      }
    };
    try {
      const result = run();
      if (result && typeof (result as PromiseLike<unknown>).then === 'function') (result as PromiseLike<unknown>).then(undefined, failed);
    } catch (err) {
      failed(err);
    }
  }

  /**
   * Whatever arrived while a batch was committing is the next batch: no extra wait. No timer is
   * set while a batch commits (schedule() leaves that queue to this), so an empty queue is done.
   */
  private next(org: string, q: OrgQueue): void {
    if (q.pending.length > 0) this.flush(org, q);
    else this.queues.delete(org);
  }

  /** Stops accepting and waits until every queued append has committed or failed. */
  async drain(): Promise<void> {
    this.closed = true;
    for (;;) {
      const busy = [...this.queues.entries()];
      if (busy.length === 0 && this.settling.size === 0) return;
      for (const [org, q] of busy) {
        // A waiting queue (a timer is never set while its batch commits): commit it now.
        if (q.timer) {
          clearTimeout(q.timer);
          q.timer = null;
          this.flush(org, q);
        }
      }
      await Promise.allSettled([...busy.flatMap(([, q]) => (q.flushing ? [q.flushing] : [])), ...this.settling]);
      await new Promise((r) => setImmediate(r));
    }
  }

  /**
   * {@link commit}, retried while the database is unavailable, within `retryMs` from the first
   * failure. A transaction that failed before COMMIT was sent stored nothing and is simply run
   * again (new ids, a new time). One that failed after (the connection was lost during COMMIT)
   * may have committed: the next attempt first takes the head lock — which waits until that
   * transaction is over — and looks for its first leaf; if it is there, that attempt's result is
   * the batch's (no event is stored twice, none is acknowledged without COMMIT).
   */
  private async commitRetrying(org: string, batch: Pending[]): Promise<Committed> {
    let previous: Committed | null = null;
    let deadline: number | null = null;
    for (let delay = FIRST_RETRY_DELAY_MS; ; delay = nextRetryDelay(delay)) {
      const attempt: Attempt = {};
      try {
        return await this.commit(org, batch, previous, attempt);
      } catch (err) {
        if (classifyDatabaseError(err) !== 'transient') {
          if (previous) throw new CommitOutcomeUnknown(err);
          throw err;
        }
        if (attempt.body && attempt.body.nodes.length > 0) previous = attempt.body;
        else if (attempt.previousNotStored) previous = null;
        const now = Date.now();
        deadline ??= now + (this.options.retryMs ?? 0);
        if (now + delay > deadline) throw previous ? new CommitOutcomeUnknown(err) : err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * One transaction: lock head, dedupe idempotency keys, insert rows and nodes, sign, COMMIT.
   * With `previous` (an attempt whose COMMIT was sent but not answered), first: if its first leaf
   * is stored, that attempt committed and is returned as it is.
   */
  private async commit(org: string, batch: Pending[], previous: Committed | null = null, attempt: Attempt = {}): Promise<Committed> {
    const recordedAt = new Date(); // one time per batch; millisecond precision (docs/ledger-spec.md §5)
    const recordedAtText = formatRecordedAt(recordedAt);
    const prepared = batch.map((p) => {
      const id = uuidv7(recordedAt.getTime());
      const committed = sealEvent(org, id, recordedAt, p.event, this.salt, recordedAtText);
      return { id, values: committed.values, committed, key: p.event.idempotencyKey, signature: p.event.producerSignature };
    });

    return this.database.db.transaction(async (tx: Tx): Promise<Committed> => {
      const head = await this.log.lock(tx, org);
      if (previous) {
        const first = previous.nodes.find((n) => n.level === 0 && n.index === previous.before.size)!;
        const { hashes } = await readNodesAndSize(tx, org, [{ level: 0, index: first.index }]);
        if (hashes[0]?.equals(first.hash)) return (attempt.body = previous);
        attempt.previousNotStored = true;
      }
      // Changes committed with the events (ledger outbox rows deleted, a state recorded).
      for (const p of batch) if (p.inAppendTransaction) await p.inAppendTransaction(tx);
      const keys = [...new Set(prepared.flatMap((p) => (p.key ? [p.key] : [])))];
      const known = await repo.findIdempotencyKeys(tx, org, keys);
      const placed: Placed[] = [];
      const fresh: typeof prepared = [];
      const firstInBatch = new Map<string, Placed>();
      for (const p of prepared) {
        const prior = p.key ? (known.get(p.key) ?? firstInBatch.get(p.key)) : undefined;
        if (prior) {
          placed.push({ leafIndex: prior.leafIndex, id: 'eventId' in prior ? prior.eventId : prior.id, recordedAt: prior.recordedAt, duplicate: true });
          continue;
        }
        const place = { leafIndex: head.size + fresh.length, id: p.id, recordedAt, duplicate: false };
        if (p.key) firstInBatch.set(p.key, place);
        placed.push(place);
        fresh.push(p);
      }
      if (fresh.length === 0) {
        return (attempt.body = { placed, appended: [], size: head.size, root: head.rootHash, note: await this.log.latestNote(tx, org), nodes: [], before: head });
      }
      const newKeys = fresh.flatMap((p, i) => (p.key ? [{ key: p.key, eventId: p.id, recordedAt, leafIndex: head.size + i }] : []));
      // The event rows and idempotency keys are written by the log writer's single statement.
      const rows = [
        repo.insertEventsSql(
          fresh.map((p, i) => ({
            ...repo.toRow(org, p.id, recordedAt, head.size + i, p.committed.leafHash, p.values, p.committed.commitments, p.committed.salts),
            // Stored beside the event, not committed (migration 0005, docs/verification.md).
            producerKeyId: p.signature?.keyId ?? null,
            producerSignature: p.signature?.signature ?? null,
          })),
        ),
        ...(newKeys.length > 0 ? [repo.insertIdempotencyKeysSql(org, newKeys)] : []),
      ];
      const log = await this.log.append(tx, org, head, fresh.map((p) => p.committed.leafHash), rows);
      const appended = fresh.map((p, i): CommittedEventInfo => ({ id: p.id, leafIndex: head.size + i, recordedAt, values: p.values }));
      return (attempt.body = { placed, appended, ...log });
    });
  }

  /**
   * Receipts of a committed batch (pure CPU, plus one read only for idempotent repeats), in batch
   * order; an inclusion proof only for the events whose append asked for one.
   */
  private async receipts(org: string, { placed, size, root, note, nodes, before }: Committed, batch: Pending[]): Promise<Array<Receipt | Placement>> {
    const rootB64 = root.toString('base64');
    // Leaf hashes of new leaves by index; idempotent repeats of older events are read below.
    const leaves = new Map<number, Buffer>();
    for (const n of nodes) if (n.level === 0) leaves.set(n.index, n.hash);
    const wanted = placed.some((_, i) => batch[i]!.proof);
    // Proofs at the new size. A new leaf's audit path uses only new nodes and the old
    // frontier (the complete subtrees left of the old size), both in memory; only idempotent
    // repeats of older events need stored nodes, read in one query.
    const known = new Map<string, Buffer>();
    if (wanted) {
      for (const n of nodes) known.set(`${n.level}/${n.index}`, n.hash);
      frontierNodes(before.size).forEach((id, i) => known.set(`${id.level}/${id.index}`, before.frontier[i]!));
    }
    const plans = placed.map((p, i) => (batch[i]!.proof ? planInclusion(p.leafIndex, size) : []));
    const missing = new Map<string, NodeId>();
    placed.forEach((p, i) => {
      const ids = [{ level: 0, index: p.leafIndex }, ...plans[i]!];
      for (const id of ids) {
        const key = `${id.level}/${id.index}`;
        if (!(id.level === 0 && leaves.has(id.index)) && !known.has(key)) missing.set(key, id);
      }
    });
    const ids = [...missing.values()];
    const hashes = await readNodes(this.database.db, org, ids);
    ids.forEach((id, i) => known.set(`${id.level}/${id.index}`, hashes[i]!));
    const recordedAtText = new Map<number, string>();
    return placed.map((p, i) => {
      const t = p.recordedAt.getTime();
      let recordedAt = recordedAtText.get(t);
      if (recordedAt === undefined) recordedAtText.set(t, (recordedAt = formatRecordedAt(p.recordedAt)));
      const leafHash = (leaves.get(p.leafIndex) ?? known.get(`0/${p.leafIndex}`)!).toString('base64');
      if (!batch[i]!.proof) {
        return { id: p.id, leafIndex: p.leafIndex, leafHash, recordedAt, treeSize: size, rootHash: rootB64, checkpoint: note, duplicate: p.duplicate };
      }
      const path = plans[i]!.map((id) => known.get(`${id.level}/${id.index}`)!);
      return {
        id: p.id,
        leafIndex: p.leafIndex,
        leafHash,
        recordedAt,
        treeSize: size,
        rootHash: rootB64,
        checkpoint: note,
        inclusionProof: { leafIndex: p.leafIndex, treeSize: size, hashes: proveInclusion(p.leafIndex, size, path).map((h) => h.toString('base64')) },
        duplicate: p.duplicate,
      };
    });
  }
}
