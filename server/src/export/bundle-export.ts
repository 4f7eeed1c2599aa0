/**
 * Streams an organization's log as an export bundle (ledger/bundle-format.ts, docs/verification.md):
 * header, key history, frontier, events in leaf order with the signed checkpoints and consistency
 * proofs between them, end record. Reads in pages, so memory stays flat for any size; the REST
 * route writes it as NDJSON, tRPC streams it, and the self-audit feeds it to the verifier.
 *
 * Both ends of the range are moved out to stored (signed) checkpoints, so a bundle never needs a
 * freshly signed statement: the server never signs whatever the database happens to hold now.
 */
import { listProducerKeys } from '../auth/producer-keys';
import type { Db } from '../db/client';
import { AppError } from '../errors';
import { valuesOf } from '../events/repository';
import {
  BUNDLE_FORMAT,
  formatBundleRecord,
  formatRecordedAt,
  frontierNodes,
  planConsistency,
  proveConsistency,
  type BundleEvent,
  type BundleRecord,
  type CommittedField,
  type NodeId,
} from '../ledger';
import * as ledgerRepo from '../tlog/repository';
import { formatEventLine, type EventLineRow } from './event-line';
import * as repo from './repository';

/** What to export. Leaf bounds win over time bounds; all optional (default: the whole log). */
export interface ExportRange {
  /** First leaf index wanted (inclusive). */
  start?: number | undefined;
  /** Leaf index one past the last wanted. */
  end?: number | undefined;
  /** Events recorded at or after this time. */
  from?: Date | undefined;
  /** Events recorded before this time. */
  to?: Date | undefined;
}

/** Options of {@link exportBundle} and {@link exportBundleText}. */
export interface ExportOptions {
  /** Rows per database page (default 1000). */
  pageSize?: number;
  /** The header's `exportedAt` (default: the time of the export). */
  now?: () => Date;
}

/** The resolved range, checkpoint-aligned. */
export interface ResolvedRange {
  start: number;
  end: number;
  headSize: number;
  latest: number;
}

/** Moves the requested range out to stored checkpoints: start down, end up (or to the latest). */
export async function resolveRange(db: Db, org: string, range: ExportRange): Promise<ResolvedRange> {
  // The head and the latest checkpoint in one statement (one snapshot): an append committing
  // between two reads would pair an old head with a newer checkpoint, which reads as a rolled-back
  // head. Everything after this reads at or below them, so appends that commit while the bundle
  // streams never reach it, and a head really rolled back behind a signed checkpoint still shows.
  const head = await repo.headAndLatestCheckpoint(db, org);
  if (!head) throw new AppError('NOT_FOUND', `organization ${org} has no ledger`);
  const latest = head.latest;
  let start = range.start ?? 0;
  let end = range.end ?? latest;
  if (range.start === undefined && range.end === undefined && (range.from || range.to)) {
    const r = await repo.leafRangeOfTimes(db, org, range.from ?? null, range.to ?? null);
    if (r === null) return { start: 0, end: 0, headSize: head.size, latest };
    start = r.start;
    end = r.end;
  }
  if (end > latest) end = latest;
  if (start > end) start = end;
  // Leaves below the floor went with a dropped partition: the bundle starts there, anchored by the
  // frontier of stored tree nodes (a later signed checkpoint verifies it).
  const floor = await repo.droppedThrough(db, org);
  const alignedStart = Math.max(await repo.checkpointAtOrBefore(db, org, start), Math.min(floor, latest));
  const alignedEnd = end === 0 ? 0 : ((await repo.checkpointAtOrAfter(db, org, end)) ?? latest);
  return { start: alignedStart, end: Math.max(alignedEnd, alignedStart), headSize: head.size, latest };
}

/** The reference `fields` of a row; event-line.ts writes the same bytes without building it. */
function fieldsOf(row: repo.ExportEventRow): Record<string, CommittedField> {
  const values = valuesOf(row) as Record<string, unknown>;
  const fields: Record<string, CommittedField> = {};
  for (const [name, commitment] of Object.entries(row.commitments)) {
    const salt = row.salts[name] ?? null;
    fields[name] = salt === null ? { commitment, salt } : { commitment, salt, value: values[name] ?? null };
  }
  return fields;
}

/** Consecutive events of one page with no checkpoint due between them, in leaf order. */
export interface EventRun<R> {
  type: 'events';
  rows: R[];
}

/** Reads events with leaf indexes in [from, to) after `after`, at most `limit` (repository.ts). */
type PageReader<R> = (db: Db, org: string, from: number, to: number, after: repo.LeafCursor | null, limit: number) => Promise<R[]>;

/** What a page reader's rows must tell the bundle's walk: the keyset position. */
interface Positioned {
  leafIndex: number | string;
  id: string;
}

/**
 * The bundle of `org` for `range` with its events still as rows, in runs: every other record
 * already built, checkpoints (with their consistency proofs) merged between the runs where the
 * tree reaches their size. The one walk both serializations share, so their records, order and
 * counts cannot drift apart.
 */
async function* bundleWalk<R extends Positioned>(
  db: Db,
  org: string,
  origin: string,
  range: ExportRange,
  options: ExportOptions,
  readEvents: PageReader<R>,
): AsyncGenerator<BundleRecord | EventRun<R>, void, undefined> {
  const pageSize = options.pageSize ?? 1000;
  const r = await resolveRange(db, org, range);
  yield {
    type: 'header',
    format: BUNDLE_FORMAT,
    origin,
    organizationId: org,
    start: r.start,
    end: r.end,
    headSize: r.headSize,
    exportedAt: (options.now ? options.now() : new Date()).toISOString(),
  };
  for (const k of await ledgerRepo.listSigningKeys(db)) {
    yield {
      type: 'key',
      keyId: k.keyId,
      name: k.name,
      verifierKey: k.verifierKey,
      notBefore: k.notBefore.toISOString(),
      notAfter: k.notAfter ? k.notAfter.toISOString() : null,
    };
  }

  for (const k of await listProducerKeys(db, org)) {
    yield { type: 'producerKey', keyId: k.keyId, name: k.name, publicKey: k.publicKey, createdAt: k.createdAt, revokedAt: k.revokedAt };
  }

  let events = 0;
  let checkpointCount = 0;
  let prevSize: number | null = null;
  const consistency = async (from: number, to: number): Promise<BundleRecord> => {
    const hashes = await ledgerRepo.readNodes(db, org, planConsistency(from, to));
    return { type: 'consistency', fromSize: from, toSize: to, hashes: proveConsistency(from, to, hashes).map((h) => h.toString('base64')) };
  };

  if (r.start > 0) {
    const hashes = await ledgerRepo.readNodes(db, org, frontierNodes(r.start));
    yield { type: 'frontier', size: r.start, hashes: hashes.map((h) => h.toString('base64')) };
    const cp = await ledgerRepo.checkpointAt(db, org, r.start);
    if (cp) {
      yield { type: 'checkpoint', treeSize: cp.treeSize, note: cp.note, createdAt: cp.createdAt.toISOString() };
      checkpointCount++;
      prevSize = cp.treeSize;
    }
  }

  // Checkpoints in (start, end], fetched a page at a time and merged with the event stream. The
  // consistency proofs of a page (each checkpoint from the one before it) are read in one query.
  let cpQueue: Array<{ cp: repo.ExportCheckpointRow; proof: BundleRecord | null }> = [];
  let cpNext = 0;
  let cpAfter = r.start;
  let cpDone = false;
  const fetchCheckpoints = async (): Promise<void> => {
    const page = await repo.checkpointPage(db, org, cpAfter, r.end, pageSize);
    if (page.length < pageSize) cpDone = true;
    if (page.length > 0) cpAfter = page[page.length - 1]!.treeSize;
    // Called only once the queue is drained, so prevSize is the checkpoint just before this page.
    const pairs: Array<{ from: number; to: number; plan: NodeId[] }> = [];
    let from = prevSize;
    for (const cp of page) {
      if (from !== null) pairs.push({ from, to: cp.treeSize, plan: planConsistency(from, cp.treeSize) });
      from = cp.treeSize;
    }
    const hashes = await ledgerRepo.readNodes(db, org, pairs.flatMap((x) => x.plan));
    let at = 0;
    const proofs = new Map<number, BundleRecord>();
    for (const { from: f, to, plan } of pairs) {
      const proof = proveConsistency(f, to, hashes.slice(at, at + plan.length));
      at += plan.length;
      proofs.set(to, { type: 'consistency', fromSize: f, toSize: to, hashes: proof.map((h) => h.toString('base64')) });
    }
    cpQueue = page.map((cp) => ({ cp, proof: proofs.get(cp.treeSize) ?? null }));
    cpNext = 0;
  };
  /** Whether a checkpoint at or below `size` may be next (the queue is read lazily). */
  const checkpointDue = (size: number): boolean => (cpNext < cpQueue.length ? cpQueue[cpNext]!.cp.treeSize <= size : !cpDone);

  async function* emitCheckpointsUpTo(size: number): AsyncGenerator<BundleRecord, void, undefined> {
    for (;;) {
      if (cpNext >= cpQueue.length) {
        if (cpDone) return;
        await fetchCheckpoints();
        if (cpQueue.length === 0) return;
      }
      const { cp, proof } = cpQueue[cpNext]!;
      if (cp.treeSize > size) return;
      cpNext++;
      if (proof) yield proof;
      yield { type: 'checkpoint', treeSize: cp.treeSize, note: cp.note, createdAt: cp.createdAt.toISOString() };
      checkpointCount++;
      prevSize = cp.treeSize;
    }
  }

  // Events in [start, end): keyset pages on (leaf_index, id). Rows that duplicate an index (a
  // forged row) are all emitted so the verifier can name them.
  // Windows of `pageSize` leaf indexes: each query is bounded by the index range itself, so its
  // cost never depends on how much of the log is left (whatever plan the statistics lead to).
  // Within a window, rows that duplicate an index (a forged row) are paged on (leaf_index, id).
  // The next page is read while the rows of the current one go out.
  const readPage = (lower: number, after: repo.LeafCursor | null) => {
    const page = readEvents(db, org, lower, Math.min(r.end, lower + pageSize), after, pageSize);
    page.catch(() => undefined); // a consumer that stops early never awaits it; one that goes on gets the error
    return page;
  };
  let lower = r.start;
  let after: repo.LeafCursor | null = null;
  let pending = lower < r.end ? readPage(lower, after) : null;
  while (pending !== null) {
    const rows = await pending;
    if (rows.length === pageSize) {
      const last = rows[rows.length - 1]!;
      after = { leafIndex: leafOf(last), id: last.id };
      lower = leafOf(last); // more rows in this window (duplicates): continue after the last one
    } else {
      after = null;
      lower = Math.min(r.end, lower + pageSize);
    }
    pending = lower < r.end ? readPage(lower, after) : null;
    // Runs of rows between the checkpoints due: a checkpoint of size s goes before the event at
    // leaf s (the tree it signs holds leaves [0, s)), as ledger/bundle-format.ts orders them.
    let i = 0;
    while (i < rows.length) {
      if (checkpointDue(leafOf(rows[i]!))) yield* emitCheckpointsUpTo(leafOf(rows[i]!));
      let j = i + 1;
      while (j < rows.length && !checkpointDue(leafOf(rows[j]!))) j++;
      yield { type: 'events', rows: i === 0 && j === rows.length ? rows : rows.slice(i, j) };
      events += j - i;
      i = j;
    }
  }
  yield* emitCheckpointsUpTo(r.end);

  // The log's latest signed checkpoint when the range ends before it, so a rollback shows.
  if (r.latest > r.end) {
    const latest = await ledgerRepo.checkpointAt(db, org, r.latest);
    if (latest) {
      if (prevSize !== null) yield await consistency(prevSize, latest.treeSize);
      yield { type: 'checkpoint', treeSize: latest.treeSize, note: latest.note, createdAt: latest.createdAt.toISOString() };
      checkpointCount++;
    }
  }
  yield { type: 'end', events, checkpoints: checkpointCount };
}

/** A row's leaf index (the text query reads it as a string). */
function leafOf(row: Positioned): number {
  return typeof row.leafIndex === 'number' ? row.leafIndex : Number(row.leafIndex);
}

/** The reference `event` record of a row. */
function bundleEvent(row: repo.ExportEventRow): BundleEvent {
  const ev: BundleEvent = {
    type: 'event',
    leafIndex: row.leafIndex,
    id: row.id,
    recordedAt: formatRecordedAt(row.recordedAt),
    leafHash: (row.nodeHash ?? Buffer.alloc(0)).toString('base64'),
    fields: fieldsOf(row),
  };
  if (row.producerKeyId && row.producerSignature) ev.producerSignature = { keyId: row.producerKeyId, signature: row.producerSignature };
  return ev;
}

/**
 * The bundle of `org` for `range`, record by record: what the self-audit, tRPC, retention,
 * deliveries and reports consume, and the reference the NDJSON of {@link exportBundleText} is
 * compared with.
 */
export async function* exportBundle(
  db: Db,
  org: string,
  origin: string,
  range: ExportRange,
  options: ExportOptions = {},
): AsyncGenerator<BundleRecord, void, undefined> {
  for await (const item of bundleWalk(db, org, origin, range, options, repo.eventPage)) {
    if (item.type === 'events') for (const row of item.rows) yield bundleEvent(row);
    else yield item;
  }
}

/** Characters of NDJSON gathered before a piece is handed on. */
const TEXT_PIECE = 64 * 1024;

/**
 * Records (and runs of text rows) as NDJSON in pieces of about 64 KiB, each ending with a newline:
 * `formatBundleRecord(record) + "\n"` per record, event-line.ts `formatEventLine(row) + "\n"` per
 * row, which is the same bytes. The header goes out as a piece of its own, so the range is
 * resolved (and a 404 raised) before the caller commits to a response. One write per record cost
 * more CPU than formatting it; a piece is one write (one chunk of the chunked encoding).
 */
export async function* bundleNdjson(
  items: AsyncIterable<BundleRecord | EventRun<EventLineRow>>,
): AsyncGenerator<string, void, undefined> {
  let piece = '';
  for await (const item of items) {
    if (item.type === 'events') {
      for (const row of item.rows) {
        piece += formatEventLine(row) + '\n';
        if (piece.length >= TEXT_PIECE) {
          yield piece;
          piece = '';
        }
      }
    } else {
      piece += formatBundleRecord(item) + '\n';
      if (item.type === 'header' || piece.length >= TEXT_PIECE) {
        yield piece;
        piece = '';
      }
    }
  }
  if (piece !== '') yield piece;
}

/**
 * The bundle of {@link exportBundle} as NDJSON text (see {@link bundleNdjson}), its event lines
 * written straight from text rows instead of through records: the REST export's fast path.
 * Memory: two pages of rows and one piece.
 */
export function exportBundleText(
  db: Db,
  org: string,
  origin: string,
  range: ExportRange,
  options: ExportOptions = {},
): AsyncGenerator<string, void, undefined> {
  return bundleNdjson(bundleWalk(db, org, origin, range, options, repo.eventLinePage));
}
