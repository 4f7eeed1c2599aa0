/**
 * Reading an export bundle (NDJSON) into a {@link BundleVerifier} for `audit-verify bundle`: in
 * this thread, or with worker threads (`--threads N`).
 *
 * In this thread, every line is parsed and pushed in order: the reference path.
 *
 * With worker threads, the work is split where the verifier is pure. An event's field
 * commitments, rebuilt leaf and producer signature ({@link checkEvent}) depend only on the event,
 * the organization and the producer keys named before it; only its position and the tree fold
 * are sequential. So this thread reads the file, keeps the other records (header, keys,
 * checkpoints…: one in a thousand lines) and cuts the event lines into batches of raw bytes in
 * shared memory (never copied, never parsed here); each worker parses its batch and checks every
 * event in it; this thread then takes the results strictly in bundle order and pushes them, with
 * the other records between them, into the same verifier the reference path uses. The report is
 * therefore the same, byte for byte:
 *  - the verifier takes a worker's result only when it was computed with the organization and
 *    producer key the verifier itself has at that point ({@link BundleVerifier.pushChecked});
 *    otherwise (a bundle with a second header, a key record the reader misjudged…) this thread
 *    parses the line and pushes it as the reference path would;
 *  - a line a worker finds not to be an event (or not JSON) is pushed from here the same way.
 * At most two batches per worker are in flight (reading waits for the oldest result), so memory
 * stays flat. A worker that fails or exits fails the verification: it never reports a pass.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

import {
  HASH_SIZE,
  checkEvent,
  readProducerKey,
  type BundleEvent,
  type BundleProducerKey,
  type BundleVerifier,
  type CheckedEvent,
  type EventCheck,
  type ProducerKeyEntry,
} from '../ledger';

/** Events per batch handed to a worker, and the most bytes of lines in one batch. */
export const DEFAULT_BATCH_EVENTS = 1024;
export const DEFAULT_BATCH_BYTES = 4 << 20;

/**
 * Lines of a file as bytes, read 1 MiB at a time and split on 0x0A bytes (so UTF-8 is never cut).
 * Each line is a view that is valid until the next one is asked for. A line longer than a read is
 * kept as a list of its pieces and joined once, at its end: joining the piece so far with every new
 * read would copy a line of n MiB n²/2 MiB times, and a bundle is hostile input.
 */
export function* readLineBytesSync(file: string): Generator<Buffer> {
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(1 << 20);
    const pieces: Buffer[] = []; // copies of the unfinished line's earlier pieces (`chunk` is reused)
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      let data = chunk.subarray(0, n);
      let nl = data.indexOf(0x0a);
      while (nl >= 0) {
        if (pieces.length === 0) yield data.subarray(0, nl);
        else {
          pieces.push(data.subarray(0, nl));
          yield Buffer.concat(pieces);
          pieces.length = 0;
        }
        data = data.subarray(nl + 1);
        nl = data.indexOf(0x0a);
      }
      if (data.length > 0) pieces.push(Buffer.from(data));
    }
    if (pieces.length > 0) yield Buffer.concat(pieces);
  } finally {
    closeSync(fd);
  }
}

/** Lines of a file as strings (UTF-8), read as {@link readLineBytesSync} reads them. */
export function* readLinesSync(file: string): Generator<string> {
  for (const bytes of readLineBytesSync(file)) yield bytes.toString('utf8');
}

/** A line parsed as JSON, or why it is not JSON. */
type ParsedLine = { record: unknown } | { error: string };

function parseLine(line: string): ParsedLine {
  try {
    return { record: JSON.parse(line) as unknown };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

function pushParsed(verifier: BundleVerifier, parsed: ParsedLine): void {
  if ('error' in parsed) verifier.pushUnparsable(parsed.error);
  else verifier.push(parsed.record);
}

/** How the reference path feeds one line (an empty line is skipped by the caller). */
export function pushLine(verifier: BundleVerifier, line: string): void {
  pushParsed(verifier, parseLine(line));
}

/** What checks batches: the worker threads of a {@link VerifyPool} (tests also run {@link checkEventLines} in this thread). */
export interface BatchChecker {
  /** Worker threads: up to twice as many batches are in flight. */
  readonly size: number;
  /** A new session for the next bundle file (its producer keys are its own). */
  newSession(): number;
  check(message: BatchMessage): Promise<BatchChecks>;
}

/** Options of {@link verifyBundleFile}: the batch size (tests use odd ones). */
export interface BatchOptions {
  batchEvents?: number;
  batchBytes?: number;
}

/**
 * Pushes every line of `file` into `verifier`, in this thread when `pool` is null, otherwise with
 * the pool's worker threads; the verifier's report is the same either way. Call `finish` after.
 * @throws if the file cannot be read, or a worker thread fails.
 */
export async function verifyBundleFile(file: string, verifier: BundleVerifier, pool: BatchChecker | null, options: BatchOptions = {}): Promise<void> {
  if (pool === null) {
    for (const line of readLinesSync(file)) if (line !== '') pushLine(verifier, line);
    return;
  }
  const batchEvents = Math.max(1, options.batchEvents ?? DEFAULT_BATCH_EVENTS);
  const batchBytes = Math.max(1, options.batchBytes ?? DEFAULT_BATCH_BYTES);
  const session = pool.newSession();
  // What the workers are told: the organization and producer keys as far as the reader can tell
  // (the verifier checks it agrees, record by record).
  let org = '';
  const keys: Array<[string, ProducerKeyEntry]> = [];
  const queue: Array<{ batch: Batch; checks: Promise<BatchChecks> | null }> = [];
  const spare: Buffer[] = []; // the memory of batches done with, for the next ones
  let batch = new Batch(batchBytes, spare);
  const flush = (): void => {
    if (batch.isEmpty()) return;
    const checks = batch.events > 0 ? pool.check(batch.message(session, org, keys)) : null;
    checks?.catch(() => undefined); // awaited in order below; a failure must not go unhandled meanwhile
    queue.push({ batch, checks });
    batch = new Batch(batchBytes, spare);
  };
  const consumeOldest = async (): Promise<void> => {
    const { batch: done, checks } = queue.shift()!;
    done.pushInto(verifier, checks === null ? null : await checks);
    done.release(spare);
  };
  for (const bytes of readLineBytesSync(file)) {
    if (bytes.length === 0) continue;
    if (looksLikeEvent(bytes)) {
      if (!batch.fits(bytes.length)) flush();
      batch.addEvent(bytes);
      if (batch.events >= batchEvents) flush();
    } else {
      const parsed = parseLine(bytes.toString('utf8'));
      const r = 'record' in parsed ? (parsed.record as { type?: unknown; organizationId?: unknown } | null) : null;
      if (r?.type === 'header' || r?.type === 'producerKey') {
        flush(); // the events before this record are checked without what it adds
        if (r.type === 'header' && org === '' && typeof r.organizationId === 'string') org = r.organizationId;
        if (r.type === 'producerKey') {
          try {
            const k = r as BundleProducerKey;
            keys.push([k.keyId, readProducerKey(k)]);
          } catch {
            // the verifier reports it; the workers do not know the key
          }
        }
      }
      batch.addRecord(parsed);
    }
    while (queue.length > 2 * pool.size) await consumeOldest();
  }
  flush();
  while (queue.length > 0) await consumeOldest();
}

const EVENT_PREFIX = Buffer.from('{"type":"event",');

/** Whether a line is written as the exporter writes events; a worker parses it to be sure. */
function looksLikeEvent(line: Buffer): boolean {
  return line.length > EVENT_PREFIX.length && line.compare(EVENT_PREFIX, 0, EVENT_PREFIX.length, 0, EVENT_PREFIX.length) === 0;
}

/** Consecutive lines of a bundle: event lines as bytes for a worker, the other records parsed. */
class Batch {
  /** Event lines back to back, in memory the worker reads without a copy. */
  private bytes: Buffer;
  private used = 0;
  private readonly ends: number[] = [];
  /** The other records, each after `at` of the batch's events. */
  private readonly records: Array<{ at: number; parsed: ParsedLine }> = [];
  private org = '';

  constructor(
    private readonly capacity: number,
    spare: Buffer[],
  ) {
    this.bytes = spare.pop() ?? Buffer.from(new SharedArrayBuffer(capacity));
  }

  /** Gives the memory back once the worker and {@link pushInto} are done with it. */
  release(spare: Buffer[]): void {
    if (this.bytes.length === this.capacity) spare.push(this.bytes);
  }

  get events(): number {
    return this.ends.length;
  }

  isEmpty(): boolean {
    return this.ends.length === 0 && this.records.length === 0;
  }

  /** Whether a line of `n` bytes fits; an empty batch takes a line of any size. */
  fits(n: number): boolean {
    return this.used + n <= this.capacity || this.used === 0;
  }

  addEvent(line: Buffer): void {
    if (this.used + line.length > this.bytes.length) this.bytes = Buffer.from(new SharedArrayBuffer(line.length)); // one line over the limit
    line.copy(this.bytes, this.used);
    this.used += line.length;
    this.ends.push(this.used);
  }

  addRecord(parsed: ParsedLine): void {
    this.records.push({ at: this.ends.length, parsed });
  }

  /** What a worker needs: the lines, the organization, the producer keys known before them. */
  message(session: number, org: string, keys: Array<[string, ProducerKeyEntry]>): BatchMessage {
    this.org = org;
    return { session, org, keys, bytes: this.bytes.subarray(0, this.used), ends: Uint32Array.from(this.ends) };
  }

  private line(i: number): string {
    return this.bytes.toString('utf8', i === 0 ? 0 : this.ends[i - 1], this.ends[i]);
  }

  /** Feeds the batch to the verifier in bundle order, events from the workers' results. */
  pushInto(verifier: BundleVerifier, checks: BatchChecks | null): void {
    let r = 0;
    for (let i = 0; i <= this.ends.length; i++) {
      for (; r < this.records.length && this.records[r]!.at === i; r++) pushParsed(verifier, this.records[r]!.parsed);
      if (i === this.ends.length) break;
      const event = checks === null ? null : checkedEventAt(checks, i, this.org);
      if (event === null || !verifier.pushChecked(event)) pushLine(verifier, this.line(i));
    }
  }
}

/**
 * A batch for a worker. `keys` are all the producer keys so far (read when the batch is handed
 * over: the list grows afterwards); the pool sends each worker only the ones it has not had.
 */
export interface BatchMessage {
  /** One per bundle file: a worker forgets the keys of the previous one. */
  session: number;
  org: string;
  keys: Array<[string, ProducerKeyEntry]>;
  /** The event lines back to back (UTF-8) and where each ends. */
  bytes: Uint8Array;
  ends: Uint32Array;
}

/**
 * A worker's results for a batch, packed: for event i, its rebuilt leaf hash at 32·i, and the leaf
 * index it claims and its verified fields when nothing else is to be said (the common case);
 * otherwise `details[i]` has it all, or is 'line' when the line is not an event after all.
 */
export interface BatchChecks {
  hashes: Uint8Array;
  leafIndex: Float64Array;
  fieldsOk: Uint32Array;
  details: Array<'line' | { leafIndex: number | string; check: EventCheck } | undefined>;
}

const NONE: readonly string[] = Object.freeze([]);

/** A producer key whose public key is in memory of its own (32 bytes to post, not a whole pool). */
function ownMemory(k: ProducerKeyEntry): ProducerKeyEntry {
  return { publicKey: Uint8Array.from(k.publicKey), revokedAt: k.revokedAt };
}

/**
 * What a worker does with a batch: parses each line and, for the events, {@link checkEvent}. Pure;
 * exported for the tests, which run it in this thread too.
 */
export function checkEventLines(bytes: Uint8Array, ends: Uint32Array, org: string, keys: ReadonlyMap<string, ProducerKeyEntry>): BatchChecks {
  const n = ends.length;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: BatchChecks = { hashes: new Uint8Array(n * HASH_SIZE), leafIndex: new Float64Array(n), fieldsOk: new Uint32Array(n), details: new Array<BatchChecks['details'][number]>(n) };
  for (let i = 0; i < n; i++) {
    let e: unknown;
    try {
      e = JSON.parse(text.toString('utf8', i === 0 ? 0 : ends[i - 1], ends[i]));
    } catch {
      out.details[i] = 'line';
      continue;
    }
    if (typeof e !== 'object' || e === null || Array.isArray(e) || (e as { type?: unknown }).type !== 'event') {
      out.details[i] = 'line';
      continue;
    }
    const event = e as BundleEvent;
    const check = checkEvent(org, event, keys);
    if (check.hash !== null) out.hashes.set(check.hash, i * HASH_SIZE);
    const plain =
      typeof event.leafIndex === 'number' &&
      check.problems.length === 0 &&
      check.erased.length === 0 &&
      check.producer === null &&
      check.producerKey === undefined &&
      check.thrown === undefined;
    if (plain) {
      out.leafIndex[i] = event.leafIndex;
      out.fieldsOk[i] = check.fieldsOk;
    } else {
      // The hash travels in `hashes`, and the key in memory of its own: posting a view copies all
      // the memory under it (a Buffer's may be an 8 KiB pool).
      const producerKey = check.producerKey && { keyId: check.producerKey.keyId, key: check.producerKey.key && ownMemory(check.producerKey.key) };
      out.details[i] = {
        leafIndex: typeof event.leafIndex === 'number' ? event.leafIndex : String(event.leafIndex),
        check: { ...check, hash: null, ...(producerKey ? { producerKey } : {}) },
      };
    }
  }
  return out;
}

/** Event i of a worker's results, for {@link BundleVerifier.pushChecked}; null when the line is not an event. */
export function checkedEventAt(checks: BatchChecks, i: number, org: string): CheckedEvent | null {
  const d = checks.details[i];
  if (d === 'line') return null;
  const hash = Buffer.from(checks.hashes.buffer, checks.hashes.byteOffset + i * HASH_SIZE, HASH_SIZE);
  if (d === undefined) {
    return { org, leafIndex: checks.leafIndex[i], check: { fieldsOk: checks.fieldsOk[i]!, erased: NONE, problems: NONE, hash, producer: null } };
  }
  return { org, leafIndex: d.leafIndex, check: { ...d.check, hash: d.check.thrown === undefined ? hash : null } };
}

/** Marks a worker started by {@link VerifyPool} (the module then serves batches). */
const WORKER_TAG = 'audit-verify-bundle-worker';

/**
 * Worker threads that check batches ({@link checkEventLines}). Each worker answers its batches
 * in the order it got them. If one fails or exits, every pending and later batch is rejected.
 */
export class VerifyPool implements BatchChecker {
  private readonly workers: Array<{ thread: Worker; pending: Array<{ resolve: (c: BatchChecks) => void; reject: (e: Error) => void }>; session: number; keysSent: number }>;
  private failure: Error | null = null;
  private closing = false;
  private sessions = 0;

  /**
   * @param size number of worker threads.
   * @param entry the worker's script: this module (tests give another to see a worker fail).
   */
  constructor(
    readonly size: number,
    entry: string = __filename,
  ) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError('a pool needs at least one worker thread');
    this.workers = Array.from({ length: size }, () => {
      const w = { thread: startWorker(entry), pending: [] as Array<{ resolve: (c: BatchChecks) => void; reject: (e: Error) => void }>, session: -1, keysSent: 0 };
      w.thread.on('message', (checks: BatchChecks) => w.pending.shift()?.resolve(checks));
      w.thread.on('error', (err: Error) => this.fail(new Error(`a verifier worker thread failed: ${err.message}`)));
      w.thread.on('exit', (code: number) => {
        if (!this.closing) this.fail(new Error(`a verifier worker thread exited (code ${code})`));
      });
      return w;
    });
  }

  newSession(): number {
    return ++this.sessions;
  }

  /** Checks a batch on the least busy worker. */
  check(message: BatchMessage): Promise<BatchChecks> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const w = this.workers.reduce((a, b) => (b.pending.length < a.pending.length ? b : a));
    if (w.session !== message.session) {
      w.session = message.session;
      w.keysSent = 0;
    }
    const keys = message.keys.slice(w.keysSent).map(([id, k]): [string, ProducerKeyEntry] => [id, ownMemory(k)]);
    w.keysSent = message.keys.length;
    return new Promise<BatchChecks>((resolve, reject) => {
      w.pending.push({ resolve, reject });
      w.thread.postMessage({ ...message, keys });
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.workers) for (const p of w.pending.splice(0)) p.reject(this.failure);
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.thread.terminate()));
  }
}

function startWorker(entry: string): Worker {
  const options = { workerData: { [WORKER_TAG]: true } };
  if (!entry.endsWith('.ts')) return new Worker(entry, options);
  // Run from the TypeScript sources (tests, benchmarks): the worker compiles them with tsx too.
  const code = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(entry)});`;
  return new Worker(code, { ...options, eval: true });
}

/** The worker's side: keeps the producer keys of the current session, checks each batch it is sent. */
function serveBatches(): void {
  let session = -1;
  const keys = new Map<string, ProducerKeyEntry>();
  parentPort!.on('message', (m: BatchMessage) => {
    if (m.session !== session) keys.clear();
    session = m.session;
    for (const [id, key] of m.keys) keys.set(id, key);
    const checks = checkEventLines(m.bytes, m.ends, m.org, keys);
    // Handed over, not copied: the three arrays are the worker's own (not shared) memory.
    parentPort!.postMessage(checks, [checks.hashes.buffer as ArrayBuffer, checks.leafIndex.buffer as ArrayBuffer, checks.fieldsOk.buffer as ArrayBuffer]);
  });
}

if (!isMainThread && (workerData as Record<string, unknown> | null)?.[WORKER_TAG] === true) serveBatches();
