/**
 * Group commit (docs/architecture.md §3): concurrent appends for one organization are coalesced
 * in-process into one transaction of up to `maxBatch` events; across processes the
 * organization's head row is locked (SELECT … FOR UPDATE), so leaf indexes are contiguous and the
 * tree never forks. A promise resolves only after COMMIT, with the event's receipt.
 */
import type { Database, Tx } from '../db/client';
import { AppError } from '../errors';
import { randomBytes } from 'node:crypto';
import { formatRecordedAt, frontierNodes, planInclusion, proveInclusion, SALT_SIZE, type NodeId } from '../ledger';
import { LogWriter, type AppendedLog, type CheckpointSigner } from '../tlog/log-writer';
import { readNodes } from '../tlog/repository';
import { uuidv7 } from '../util/uuid';
import { commitEvent, normalizeEvent } from './commit-form';
import * as repo from './repository';
import { EVENT_FIELDS, type EventInput, type Receipt } from './schema';

/** Batch observer (metrics, checkpoint witnessing). */
export interface IngestObserver {
  batchCommitted(size: number): void;
  /** A new checkpoint was signed and committed (called after COMMIT, never awaited). */
  checkpointCommitted?(org: string, treeSize: number, note: string): void;
}

/** Tuning of {@link IngestService}. */
export interface IngestOptions {
  maxBatch: number;
  maxWaitMs: number;
}

interface Pending {
  input: EventInput;
  resolve: (r: Receipt) => void;
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
}

interface Placed {
  leafIndex: number;
  id: string;
  recordedAt: Date;
  duplicate: boolean;
}

/**
 * Fresh 16-byte salts cut from one random buffer per batch: one CSPRNG call instead of one per
 * field (the per-call overhead showed in profiles). Each salt is used once.
 */
function saltPool(count: number): () => Buffer {
  const pool = randomBytes(SALT_SIZE * count);
  let next = 0;
  return () => {
    if (next >= count) throw new Error('salt pool exhausted');
    return pool.subarray(SALT_SIZE * next, SALT_SIZE * ++next);
  };
}

/** Appends events to organizations' ledgers. */
export class IngestService {
  private readonly queues = new Map<string, OrgQueue>();
  /** Receipts being computed for committed batches (drain waits for them too). */
  private readonly settling = new Set<Promise<void>>();
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

  /** Appends validated events; resolves after COMMIT with one receipt per event, in order. */
  append(org: string, inputs: EventInput[]): Promise<Receipt[]> {
    // 503, not 500: a proxy may retry the request on another replica.
    if (this.closed) return Promise.reject(new AppError('UNAVAILABLE', 'server is shutting down; retry on another replica'));
    let q = this.queues.get(org);
    if (!q) {
      q = { pending: [], timer: null, flushing: null };
      this.queues.set(org, q);
    }
    const promises = inputs.map(
      (input) => new Promise<Receipt>((resolve, reject) => q.pending.push({ input, resolve, reject })),
    );
    this.schedule(org, q);
    return Promise.all(promises);
  }

  private schedule(org: string, q: OrgQueue): void {
    if (q.flushing || q.pending.length === 0) return; // the running flush reschedules when it ends
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
    q.flushing = this.commit(org, batch).then(
      (committed) => {
        // Pipelining: the next batch's transaction starts (its first round trip is in flight)
        // before this batch's receipts are computed, so that CPU work overlaps database time.
        q.flushing = null;
        this.next(org, q);
        const settled = this.receipts(org, committed).then(
          (receipts) => batch.forEach((p, i) => p.resolve(receipts[i]!)),
          (err: unknown) => batch.forEach((p) => p.reject(err)),
        );
        this.settling.add(settled);
        return settled.finally(() => this.settling.delete(settled));
      },
      (err: unknown) => {
        q.flushing = null;
        this.next(org, q);
        batch.forEach((p) => p.reject(err));
      },
    );
  }

  /** Whatever arrived while a batch was committing is the next batch: no extra wait. */
  private next(org: string, q: OrgQueue): void {
    if (q.pending.length > 0) this.flush(org, q);
    else if (!q.timer) this.queues.delete(org);
  }

  /** Stops accepting and waits until every queued append has committed or failed. */
  async drain(): Promise<void> {
    this.closed = true;
    for (;;) {
      const busy = [...this.queues.entries()];
      if (busy.length === 0 && this.settling.size === 0) return;
      for (const [org, q] of busy) {
        if (q.timer) {
          clearTimeout(q.timer);
          q.timer = null;
          if (!q.flushing) this.flush(org, q);
        }
      }
      await Promise.allSettled([...busy.flatMap(([, q]) => (q.flushing ? [q.flushing] : [])), ...this.settling]);
      await new Promise((r) => setImmediate(r));
    }
  }


  /** One transaction: lock head, dedupe idempotency keys, insert rows and nodes, sign, COMMIT. */
  private async commit(org: string, batch: Pending[]): Promise<Committed> {
    const recordedAt = new Date(); // one time per batch; millisecond precision (docs/ledger-spec.md §5)
    const newSalt = saltPool(batch.length * EVENT_FIELDS.length);
    const prepared = batch.map((p) => {
      const id = uuidv7(recordedAt.getTime());
      const values = normalizeEvent(p.input, recordedAt);
      return { id, values, committed: commitEvent(org, id, recordedAt, values, newSalt), key: p.input.idempotencyKey, signature: p.input.producerSignature };
    });

    const committed = await this.database.db.transaction(async (tx: Tx): Promise<Committed> => {
      const head = await this.log.lock(tx, org);
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
        return { placed, size: head.size, root: head.rootHash, note: await this.log.latestNote(tx, org), nodes: [], before: head };
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
      const appended = await this.log.append(tx, org, head, fresh.map((p) => p.committed.leafHash), rows);
      return { placed, ...appended };
    });
    if (committed.nodes.length > 0) {
      this.observer.batchCommitted(committed.nodes.filter((n) => n.level === 0).length);
      this.observer.checkpointCommitted?.(org, committed.size, committed.note);
    }
    return committed;
  }

  /** Receipts of a committed batch (pure CPU, plus one read only for idempotent repeats). */
  private async receipts(org: string, { placed, size, root, note, nodes, before }: Committed): Promise<Receipt[]> {
    // Proofs at the new size. A new leaf's audit path uses only new nodes and the old
    // frontier (the complete subtrees left of the old size), both in memory; only idempotent
    // repeats of older events need stored nodes, read in one query.
    const known = new Map(nodes.map((n) => [`${n.level}/${n.index}`, n.hash]));
    frontierNodes(before.size).forEach((id, i) => known.set(`${id.level}/${id.index}`, before.frontier[i]!));
    const plans = placed.map((p) => [{ level: 0, index: p.leafIndex }, ...planInclusion(p.leafIndex, size)]);
    const missing = new Map<string, NodeId>();
    for (const plan of plans) for (const id of plan) if (!known.has(`${id.level}/${id.index}`)) missing.set(`${id.level}/${id.index}`, id);
    const ids = [...missing.values()];
    const hashes = await readNodes(this.database.db, org, ids);
    ids.forEach((id, i) => known.set(`${id.level}/${id.index}`, hashes[i]!));
    const rootB64 = root.toString('base64');
    return placed.map((p, i) => {
      const [leaf, ...path] = plans[i]!.map((id) => known.get(`${id.level}/${id.index}`)!);
      return {
        id: p.id,
        leafIndex: p.leafIndex,
        leafHash: leaf!.toString('base64'),
        recordedAt: formatRecordedAt(p.recordedAt),
        treeSize: size,
        rootHash: rootB64,
        checkpoint: note,
        inclusionProof: {
          leafIndex: p.leafIndex,
          treeSize: size,
          hashes: proveInclusion(p.leafIndex, size, path).map((h) => h.toString('base64')),
        },
        duplicate: p.duplicate,
      };
    });
  }
}
