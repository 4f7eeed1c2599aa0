/**
 * Offline verification of export bundles (bundle-format.ts; docs/ledger-spec.md §12).
 *
 * {@link BundleVerifier} consumes records one at a time (flat memory for any size): it re-hashes
 * every field value against its commitment, rebuilds every leaf and the tree incrementally
 * (compact-range.ts), recomputes the root at every checkpoint and compares it with the signed one,
 * checks every checkpoint signature against the keys the auditor trusts and every consistency
 * proof between consecutive checkpoints. Erased fields (no salt, no value) are reported as erased,
 * not as failures.
 *
 * Nothing here does I/O: the CLI reads lines, the server's self-audit and `audit-admin
 * verify-ledger` feed records from the exporter.
 */
import type {
  BundleCheckpoint,
  BundleConsistency,
  BundleEnd,
  BundleEvent,
  BundleFrontier,
  BundleHeader,
  BundleKey,
  BundleProducerKey,
} from './bundle-format';
import { BUNDLE_FORMAT } from './bundle-format';
import { CompactRange, frontierLevels } from './compact-range';
import { decodeBase64Strict } from './encoding';
import { VerificationError } from './errors';
import { committedFieldStatus, rebuildLeafHash } from './fast-commitment';
import { HASH_SIZE } from './hash';
import { openCheckpoint, type Checkpoint, type Verifier } from './note';
import { producerKeyId, verifyProducerSignature } from './producer';
import { verifyConsistency } from './tree';

/** Where a failure is. */
export type BundleFailureKind = 'leaf' | 'checkpoint' | 'bundle';

/** One verification failure; the first one is what an auditor acts on. */
export interface BundleFailure {
  kind: BundleFailureKind;
  /** The leaf index concerned (`leaf` failures). */
  leafIndex?: number;
  /** The checkpoint size concerned (`checkpoint` failures). */
  treeSize?: number;
  /** 1-based line number of the record, when known. */
  line?: number;
  /** Human-readable reason. */
  reason: string;
}

/** An erased field: committed, but its value and salt were removed (GDPR). Not a failure. */
export interface ErasedField {
  leafIndex: number;
  field: string;
}

/** Result of {@link BundleVerifier.finish}. */
export interface BundleReport {
  /** True only when every check held (erasures allowed). */
  ok: boolean;
  origin: string | null;
  organizationId: string | null;
  start: number | null;
  end: number | null;
  events: number;
  fieldsVerified: number;
  erasedFields: number;
  /** The first erased fields (at most `maxListed`). */
  erased: ErasedField[];
  checkpointsVerified: number;
  consistencyProofsVerified: number;
  /** Producer signatures that verified. */
  producerSignaturesVerified: number;
  /** Producer signatures that cannot be checked any more because a field was erased. */
  producerSignaturesUnverifiable: number;
  /** The latest verified checkpoint (what a client should pin next). */
  latest: { treeSize: number; rootHash: string; note: string } | null;
  /** The first failures, in bundle order (at most `maxListed`). */
  failures: BundleFailure[];
  failureCount: number;
  warnings: string[];
}

/** Options of {@link BundleVerifier}. */
export interface BundleVerifierOptions {
  /** Keys the auditor trusts; a checkpoint must carry a valid signature from one of them. */
  verifiers: Verifier[];
  /** A checkpoint the auditor pinned earlier: the log must contain it (same root at its size). */
  pinned?: Checkpoint;
  /** Most failures and erasures listed in the report (default 100); counting goes on. */
  maxListed?: number;
  /**
   * Called with every complete subtree hash the verifier computes, (level, index) as in
   * {@link NodeId} (the self-audit compares them with the stored tree).
   */
  onNode?: (level: number, index: number, hash: Buffer) => void;
}

const b64 = (h: Buffer) => h.toString('base64');

/** A producer key as the verifier holds it (from a `producerKey` record, {@link readProducerKey}). */
export interface ProducerKeyEntry {
  /** The raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  /** Milliseconds since the epoch; Infinity when not revoked. */
  revokedAt: number;
}

/**
 * What the order-independent checks of one event found ({@link checkEvent}): everything but its
 * position in the log, which only the sequential part knows. The verifier turns it into failures
 * (`leaf N: ` + each problem, N the position), counts, and one leaf folded into the tree.
 */
export interface EventCheck {
  /** Fields whose value re-hashed to its commitment. */
  fieldsOk: number;
  /** The erased fields (no salt, no value), in the event's order. */
  erased: readonly string[];
  /** The failures in the order found, each reason without its `leaf N: ` prefix. */
  problems: readonly string[];
  /** The rebuilt leaf hash (all zeros when it cannot be rebuilt); null when the check threw. */
  hash: Buffer | null;
  /** The producer signature, when it counts: verified, or unverifiable because a field was erased. */
  producer: 'verified' | 'unverifiable' | null;
  /** The producer key the event names and the entry found for it (the result depends on it). */
  producerKey?: { keyId: unknown; key: ProducerKeyEntry | undefined };
  /** The check stopped on an exception: malformed input (a failure) or a bug (propagates). */
  thrown?: { message: string; malformed: boolean };
}

/** An event checked elsewhere, for {@link BundleVerifier.pushChecked}. */
export interface CheckedEvent {
  /** The organization the leaf was rebuilt for. */
  org: string;
  /** The leaf index the event claims (a claim that is not a number may be its String()). */
  leafIndex: unknown;
  check: EventCheck;
}

/**
 * The order-independent checks of one event, a pure function of the event, the organization (the
 * header's) and the producer keys known at its place in the bundle: every field value re-hashed
 * against its commitment (erased fields counted apart), the leaf rebuilt from the commitments and
 * compared with the log's, and the producer signature, if any, checked over the values. Never
 * throws: an exception is returned in `thrown`, with what was found before it.
 * {@link BundleVerifier} calls it for every event it is pushed; the CLI's worker threads call it
 * for batches of events and hand the results to {@link BundleVerifier.pushChecked}.
 */
export function checkEvent(org: string, e: BundleEvent, producerKeys: ReadonlyMap<string, ProducerKeyEntry>): EventCheck {
  const erased: string[] = [];
  const problems: string[] = [];
  const c: EventCheck = { fieldsOk: 0, erased, problems, hash: null, producer: null };
  try {
    let leafOk = true;
    let allOk = true; // every field re-hashed to its commitment: all are 64 lower-case hex
    const commitments: Record<string, string> = {};
    if (typeof e.fields !== 'object' || e.fields === null || Array.isArray(e.fields)) {
      problems.push('fields missing');
      leafOk = false;
    } else {
      for (const [name, field] of Object.entries(e.fields)) {
        if (typeof field !== 'object' || field === null) {
          problems.push(`field ${name} is malformed`);
          leafOk = false;
          allOk = false;
          continue;
        }
        const status = committedFieldStatus(field);
        commitments[name] = field.commitment;
        if (status === 'ok') {
          c.fieldsOk++;
        } else if (status === 'erased') {
          allOk = false;
          erased.push(name);
        } else {
          problems.push(`field ${name} does not match its commitment`);
          leafOk = false;
          allOk = false;
        }
      }
    }
    let hash: Buffer;
    try {
      hash = rebuildLeafHash(org, e.id, e.recordedAt, commitments, allOk);
    } catch (err) {
      problems.push(`cannot rebuild the leaf: ${(err as Error).message}`);
      hash = Buffer.alloc(HASH_SIZE); // keep the tree going so later checks still run
      leafOk = false;
    }
    // Canonical base64 of 32 bytes is unique, so comparing the strings compares the hashes.
    if (leafOk && e.leafHash !== b64(hash)) {
      problems.push(
        `rebuilt leaf hash ${b64(hash)} differs from the log's leaf ${typeof e.leafHash === 'string' && e.leafHash !== '' ? e.leafHash : '(none)'}`,
      );
    }
    if (leafOk) checkProducerSignature(e, producerKeys, c, problems);
    c.hash = hash;
  } catch (err) {
    c.thrown = { message: err instanceof Error ? err.message : String(err), malformed: isMalformedInput(err) };
  }
  return c;
}

/** Checks a producer signature over the committed values (all present: the event as sent). */
function checkProducerSignature(e: BundleEvent, keys: ReadonlyMap<string, ProducerKeyEntry>, c: EventCheck, problems: string[]): void {
  const ps = e.producerSignature;
  if (ps === undefined || ps === null) return;
  const key = keys.get(ps.keyId);
  c.producerKey = { keyId: ps.keyId, key };
  if (!key) {
    problems.push(`signed by unknown producer key ${String(ps.keyId)}`);
    return;
  }
  const values: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(e.fields)) {
    if (f.salt === null) {
      c.producer = 'unverifiable'; // erased: the signed message cannot be rebuilt, by design
      return;
    }
    values[name] = f.value;
  }
  if (Date.parse(e.recordedAt) > key.revokedAt) {
    problems.push(`recorded after producer key ${ps.keyId} was revoked`);
  } else if (!verifyProducerSignature(values, ps.signature, key.publicKey)) {
    problems.push(`producer signature of key ${ps.keyId} does not verify`);
  } else {
    c.producer = 'verified';
  }
}

/**
 * The key of a `producerKey` record.
 * @throws TypeError if its public key is not base64 of 32 bytes or does not match its key id.
 */
export function readProducerKey(k: BundleProducerKey): ProducerKeyEntry {
  const pk = typeof k.publicKey === 'string' ? decodeBase64Strict(k.publicKey) : null;
  if (pk === null || pk.length !== 32) throw new TypeError('producerKey.publicKey must be base64 of 32 bytes');
  if (producerKeyId(pk) !== k.keyId) throw new TypeError(`producer key id ${String(k.keyId)} does not match its public key`);
  return { publicKey: pk, revokedAt: k.revokedAt === null ? Infinity : Date.parse(k.revokedAt) };
}

/** Whether two producer key entries (or their absence) would check a signature alike. */
function sameProducerKey(a: ProducerKeyEntry | undefined, b: ProducerKeyEntry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.compare(a.publicKey, b.publicKey) === 0 && Object.is(a.revokedAt, b.revokedAt);
}

/** Errors that malformed input raises (a failure of the record), as opposed to a bug. */
function isMalformedInput(err: unknown): boolean {
  return err instanceof VerificationError || err instanceof TypeError || err instanceof RangeError;
}

/**
 * Streaming verifier of a bundle: `push` every record in order (parsed JSON), then `finish`.
 * Memory is O(log n) for the tree plus the listed failures, whatever the bundle size.
 */
export class BundleVerifier {
  private readonly maxListed: number;
  private header: BundleHeader | null = null;
  private readonly keys: BundleKey[] = [];
  private readonly producerKeys = new Map<string, ProducerKeyEntry>();
  private producerVerified = 0;
  private producerUnverifiable = 0;
  /** The leaves folded in so far, as a compact range [0, size) (RFC 9162 §2.1.1). */
  private tree = new CompactRange();
  private started = false;
  private lastCheckpoint: { size: number; root: Buffer } | null = null;
  /** The largest size at which a signed root was compared with the root rebuilt from the leaves. */
  private rootComparedAt = -1;
  private pendingConsistency: BundleConsistency | null = null;
  private latest: BundleReport['latest'] = null;
  private events = 0;
  private checkpointsSeen = 0;
  private fieldsVerified = 0;
  private erasedCount = 0;
  private readonly erased: ErasedField[] = [];
  private checkpointsVerified = 0;
  private consistencyVerified = 0;
  private readonly failures: BundleFailure[] = [];
  private failureCount = 0;
  private readonly warnings: string[] = [];
  private ended: BundleEnd | null = null;
  private line = 0;
  private pinnedChecked = false;

  constructor(private readonly options: BundleVerifierOptions) {
    this.maxListed = options.maxListed ?? 100;
    if (options.verifiers.length === 0) throw new RangeError('BundleVerifier needs at least one trusted key');
  }

  /** Feeds the next record (a parsed JSON line). Never throws for bad input: it records a failure. */
  push(record: unknown): void {
    this.line++;
    try {
      this.dispatch(record);
    } catch (err) {
      this.malformed(err);
    }
  }

  /**
   * Feeds the next record when it is an event whose order-independent part {@link checkEvent}
   * already checked elsewhere (a worker thread) for organization `org`: the same as pushing the
   * event, without checking it again. The verifier takes the result only when it is the one it
   * would compute now, with the same organization (the header's) and the same producer key (the
   * one the event names, or none, as this verifier knows it at this point of the bundle);
   * otherwise it returns false and consumes nothing, and the caller pushes the record itself.
   */
  pushChecked(event: CheckedEvent): boolean {
    if (this.header === null || this.ended || event.org !== this.header.organizationId) return false;
    const used = event.check.producerKey;
    if (used !== undefined && !sameProducerKey(used.key, this.producerKeys.get(used.keyId as string))) return false;
    this.line++;
    try {
      this.onCheckedEvent(event.leafIndex, () => event.check);
    } catch (err) {
      this.malformed(err);
    }
    return true;
  }

  /** A record that threw while it was checked: malformed input is a failure; anything else is a bug and propagates. */
  private malformed(err: unknown): void {
    if (isMalformedInput(err)) {
      this.fail({ kind: 'bundle', reason: `malformed record: ${(err as Error).message}` });
    } else {
      throw err;
    }
  }

  /** Failures found so far (a caller that pushes record by record can tell which record failed). */
  get failuresSoFar(): number {
    return this.failureCount;
  }

  /** Records a line that is not JSON at all (the CLI's parser calls this). */
  pushUnparsable(message: string): void {
    this.line++;
    this.fail({ kind: 'bundle', reason: `line is not JSON: ${message}` });
  }

  private fail(f: BundleFailure): void {
    this.failureCount++;
    if (this.failures.length < this.maxListed) this.failures.push({ ...f, line: f.line ?? this.line });
  }

  private dispatch(record: unknown): void {
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw new TypeError('a bundle line must be a JSON object');
    }
    const r = record as { type?: unknown };
    if (this.ended) {
      this.fail({ kind: 'bundle', reason: 'data after the end record' });
      return;
    }
    if (this.header === null && r.type !== 'header') {
      throw new TypeError('the first line must be the header');
    }
    switch (r.type) {
      case 'header':
        return this.onHeader(record as BundleHeader);
      case 'key':
        return this.onKey(record as BundleKey);
      case 'producerKey':
        return this.onProducerKey(record as BundleProducerKey);
      case 'frontier':
        return this.onFrontier(record as BundleFrontier);
      case 'event':
        return this.onEvent(record as BundleEvent);
      case 'consistency':
        return this.onConsistency(record as BundleConsistency);
      case 'checkpoint':
        return this.onCheckpoint(record as BundleCheckpoint);
      case 'end':
        return this.onEnd(record as BundleEnd);
      default:
        throw new TypeError(`unknown record type ${JSON.stringify(r.type)}`);
    }
  }

  private onHeader(h: BundleHeader): void {
    if (this.header !== null) throw new TypeError('a second header');
    if (h.format !== BUNDLE_FORMAT) throw new TypeError(`unsupported format ${JSON.stringify(h.format)}`);
    checkString(h.origin, 'header.origin');
    checkString(h.organizationId, 'header.organizationId');
    checkIndex(h.start, 'header.start');
    checkIndex(h.end, 'header.end');
    checkIndex(h.headSize, 'header.headSize');
    if (h.end < h.start) throw new RangeError('header.end is before header.start');
    this.header = h;
    if (h.start === 0) this.started = true;
  }

  private onKey(k: BundleKey): void {
    checkString(k.verifierKey, 'key.verifierKey');
    this.keys.push(k);
  }

  private onProducerKey(k: BundleProducerKey): void {
    this.producerKeys.set(k.keyId, readProducerKey(k));
  }

  private onFrontier(f: BundleFrontier): void {
    const h = this.header!;
    if (this.started || f.size !== h.start) throw new TypeError(`unexpected frontier for size ${String(f.size)}`);
    if (!Array.isArray(f.hashes)) throw new TypeError('frontier.hashes must be an array');
    // The frontier of a tree of n leaves has one complete subtree per set bit of n, largest first.
    const levels = frontierLevels(f.size);
    if (levels.length !== f.hashes.length) throw new TypeError(`frontier of size ${f.size} needs ${levels.length} hashes`);
    this.tree = new CompactRange(f.size, f.hashes.map((s, i) => hashOf(s, `frontier.hashes[${i}]`)));
    this.started = true;
  }

  private onEvent(e: BundleEvent): void {
    this.onCheckedEvent(e.leafIndex, () => checkEvent(this.header!.organizationId, e, this.producerKeys));
  }

  /**
   * The sequential part of an event: its position (the leaf index it claims against the next one
   * expected), then the failures and counts of its order-independent check (`check`, called once
   * the position is known) under that position, and its leaf hash folded into the tree.
   * `leafIndex` is what the event claims; a claim that is not a number may be given as its
   * String() (all that is used of it).
   */
  private onCheckedEvent(leafIndex: unknown, check: () => EventCheck): void {
    const h = this.header!;
    if (!this.started) throw new TypeError('an event before the frontier');
    this.events++;
    const expected = this.size;
    if (typeof leafIndex === 'number' && leafIndex === expected - 1 && expected > 0) {
      this.fail({ kind: 'leaf', leafIndex, reason: `leaf ${leafIndex} appears twice (a second event claims its position)` });
      return;
    }
    if (typeof leafIndex !== 'number' || leafIndex !== expected) {
      this.fail({
        kind: 'leaf',
        leafIndex: expected,
        reason:
          typeof leafIndex === 'number' && leafIndex > expected
            ? `leaf ${expected} is missing (next event has leaf index ${leafIndex})`
            : `leaf ${expected} expected, got an event with leaf index ${String(leafIndex)} (duplicate or out of order)`,
      });
      // Resynchronise on what the bundle claims only when it skipped ahead: the tree is broken anyway.
      if (typeof leafIndex !== 'number' || leafIndex < expected) return;
    }
    if (expected >= h.end) {
      this.fail({ kind: 'leaf', leafIndex: expected, reason: `leaf ${expected} is past the bundle end ${h.end}` });
    }
    const idx = expected;
    const c = check();
    for (const problem of c.problems) this.fail({ kind: 'leaf', leafIndex: idx, reason: `leaf ${idx}: ${problem}` });
    this.fieldsVerified += c.fieldsOk;
    for (const field of c.erased) {
      this.erasedCount++;
      if (this.erased.length < this.maxListed) this.erased.push({ leafIndex: idx, field });
    }
    if (c.producer === 'verified') this.producerVerified++;
    else if (c.producer === 'unverifiable') this.producerUnverifiable++;
    if (c.thrown !== undefined) throw c.thrown.malformed ? new TypeError(c.thrown.message) : new Error(c.thrown.message);
    this.append(c.hash!);
  }

  /** Appends a leaf hash, reporting completed nodes to `onNode` (the self-audit compares them). */
  private append(hash: Buffer): void {
    this.tree.append(hash, this.options.onNode);
  }

  /** Number of leaves folded in (= next expected leaf index once started). */
  private get size(): number {
    return this.tree.size;
  }

  /** Root of the leaves seen so far (RFC 9162 §2.1.1). */
  private root(): Buffer {
    return this.tree.root();
  }

  private onConsistency(c: BundleConsistency): void {
    if (this.pendingConsistency) throw new TypeError('two consistency proofs in a row');
    checkIndex(c.fromSize, 'consistency.fromSize');
    checkIndex(c.toSize, 'consistency.toSize');
    if (!Array.isArray(c.hashes)) throw new TypeError('consistency.hashes must be an array');
    this.pendingConsistency = c;
  }

  private onCheckpoint(c: BundleCheckpoint): void {
    const h = this.header!;
    this.checkpointsSeen++;
    const pending = this.pendingConsistency;
    this.pendingConsistency = null;
    const size = c.treeSize;
    checkIndex(size, 'checkpoint.treeSize');
    let cp: Checkpoint;
    try {
      const opened = openCheckpoint(String(c.note), this.options.verifiers);
      cp = opened.checkpoint;
      this.checkKeyWindows(opened.signatures.filter((s) => s.verified).map((s) => s.keyId), c);
    } catch (err) {
      this.fail({ kind: 'checkpoint', treeSize: size, reason: `checkpoint ${size}: ${(err as Error).message}` });
      return;
    }
    if (cp.origin !== h.origin) {
      this.fail({ kind: 'checkpoint', treeSize: size, reason: `checkpoint ${size}: origin ${cp.origin} is not ${h.origin}` });
      return;
    }
    if (cp.size !== size) {
      this.fail({ kind: 'checkpoint', treeSize: size, reason: `checkpoint record says size ${size}, its note says ${cp.size}` });
      return;
    }
    this.checkpointsVerified++;

    const prev = this.lastCheckpoint;
    if (prev !== null) {
      if (size <= prev.size) {
        this.fail({ kind: 'checkpoint', treeSize: size, reason: `checkpoint ${size} does not follow checkpoint ${prev.size}` });
        return;
      }
      if (!pending || pending.fromSize !== prev.size || pending.toSize !== size) {
        this.fail({ kind: 'checkpoint', treeSize: size, reason: `no consistency proof from checkpoint ${prev.size} to ${size}` });
      } else {
        try {
          const proof = pending.hashes.map((s, i) => hashOf(s, `consistency.hashes[${i}]`));
          verifyConsistency(prev.size, size, proof, prev.root, cp.rootHash);
          this.consistencyVerified++;
        } catch (err) {
          this.fail({
            kind: 'checkpoint',
            treeSize: size,
            reason: `checkpoint ${size} is not consistent with checkpoint ${prev.size}: ${(err as Error).message}`,
          });
        }
      }
    } else if (pending) {
      this.fail({ kind: 'checkpoint', treeSize: size, reason: `unexpected consistency proof before the first checkpoint` });
    }

    if (!this.started) {
      this.fail({ kind: 'checkpoint', treeSize: size, reason: `checkpoint ${size} before the frontier` });
    } else if (size === this.size) {
      // The leaves of the bundle (and the frontier before them) must reproduce the signed root.
      this.rootComparedAt = size;
      const root = this.root();
      if (!root.equals(cp.rootHash)) {
        const from = prev ? prev.size : h.start;
        this.fail({
          kind: 'checkpoint',
          treeSize: size,
          reason:
            size === h.start
              ? `checkpoint ${size}: the frontier does not reproduce the signed root`
              : `checkpoint ${size}: root ${b64(root)} rebuilt from the leaves differs from the signed root ${b64(cp.rootHash)}; the first altered leaf is in [${from}, ${size})`,
        });
      }
      this.checkPinned(cp);
    } else if (size < this.size || size <= h.end) {
      this.fail({ kind: 'checkpoint', treeSize: size, reason: `checkpoint ${size} is out of place (after leaf ${this.size - 1})` });
    } else {
      this.checkPinned(cp);
    }
    this.lastCheckpoint = { size, root: cp.rootHash };
    this.latest = { treeSize: size, rootHash: b64(cp.rootHash), note: c.note };
  }

  /** Whether the auditor's pinned checkpoint is the same tree at its size as this bundle's. */
  private checkPinned(cp: Checkpoint): void {
    const pin = this.options.pinned;
    if (!pin || this.pinnedChecked) return;
    if (pin.origin !== cp.origin) {
      this.pinnedChecked = true;
      this.fail({ kind: 'checkpoint', treeSize: pin.size, reason: `pinned checkpoint is for origin ${pin.origin}, not ${cp.origin}` });
      return;
    }
    if (cp.size === pin.size) {
      this.pinnedChecked = true;
      if (!cp.rootHash.equals(pin.rootHash)) {
        this.fail({ kind: 'checkpoint', treeSize: pin.size, reason: `the log's root at the pinned size ${pin.size} differs from the pinned checkpoint: history was rewritten` });
      }
    } else if (this.size === pin.size && cp.size > pin.size && this.started) {
      this.pinnedChecked = true;
      // The auditor's own (earlier verified) checkpoint binds the leaves up to its size.
      this.rootComparedAt = Math.max(this.rootComparedAt, pin.size);
      if (!this.root().equals(pin.rootHash)) {
        this.fail({ kind: 'checkpoint', treeSize: pin.size, reason: `the leaves up to the pinned size ${pin.size} do not reproduce the pinned root: history was rewritten` });
      }
    }
  }

  private checkKeyWindows(keyIds: string[], c: BundleCheckpoint): void {
    if (c.createdAt === null || c.createdAt === undefined) return;
    const at = Date.parse(c.createdAt);
    for (const id of keyIds) {
      const k = this.keys.find((x) => x.keyId === id);
      if (!k) continue;
      const before = Date.parse(k.notBefore);
      const after = k.notAfter === null ? Infinity : Date.parse(k.notAfter);
      // Replicas may sign a moment before a new key is registered or after it is retired: a minute of slack.
      if (at < before - 60_000 || at > after + 60_000) {
        this.warnings.push(`checkpoint ${c.treeSize} was stored at ${c.createdAt}, outside the window of key ${k.name}+${id}`);
      }
    }
  }

  private onEnd(e: BundleEnd): void {
    this.ended = e;
  }

  /** Final checks (bundle complete, head matches the latest checkpoint, pin found) and the report. */
  finish(): BundleReport {
    const h = this.header;
    if (h === null) this.fail({ kind: 'bundle', reason: 'empty bundle (no header)' });
    if (h !== null) {
      if (this.ended === null) this.fail({ kind: 'bundle', reason: 'bundle is truncated (no end record)' });
      else if (this.ended.events !== this.events || this.ended.checkpoints !== this.checkpointsSeen) {
        this.fail({
          kind: 'bundle',
          reason: `end record counts ${this.ended.events} events and ${this.ended.checkpoints} checkpoints, the bundle has ${this.events} and ${this.checkpointsSeen}`,
        });
      }
      if (this.pendingConsistency) this.fail({ kind: 'bundle', reason: 'a consistency proof without its checkpoint' });
      if (this.started && this.size < h.end) {
        this.fail({ kind: 'leaf', leafIndex: this.size, reason: `leaves [${this.size}, ${h.end}) are missing` });
      }
      if (h.end > h.start && (this.lastCheckpoint === null || this.lastCheckpoint.size < h.end)) {
        this.fail({ kind: 'checkpoint', treeSize: h.end, reason: `no signed checkpoint covers the bundle end ${h.end}` });
      } else if (h.end > h.start && this.size === h.end && this.rootComparedAt !== h.end) {
        // A checkpoint past the end proves (by consistency) that the log grew from the previous
        // checkpoint, not what the leaves after that checkpoint were: without a root compared at
        // the end itself, those leaves could be rewritten with matching commitments and leaf
        // hashes and nothing would notice. Exports end every range at a stored checkpoint.
        const from = Math.max(this.rootComparedAt, h.start);
        this.fail({
          kind: 'checkpoint',
          treeSize: h.end,
          reason: `no signed checkpoint at the bundle end ${h.end}: leaves [${from}, ${h.end}) are bound to no signed root`,
        });
      }
      const latest = this.lastCheckpoint;
      if (latest !== null && latest.size !== h.headSize) {
        this.fail({
          kind: 'checkpoint',
          treeSize: latest.size,
          reason:
            latest.size > h.headSize
              ? `the log head is at ${h.headSize} but a checkpoint at ${latest.size} was signed: the head was rolled back`
              : `the log head is at ${h.headSize} but the latest signed checkpoint is at ${latest.size}: unsigned leaves were appended`,
        });
      }
      const pin = this.options.pinned;
      if (pin && !this.pinnedChecked) {
        if (latest !== null && pin.size > latest.size) {
          this.fail({
            kind: 'checkpoint',
            treeSize: pin.size,
            reason: `the pinned checkpoint (size ${pin.size}) is beyond the log's latest signed checkpoint (${latest.size}): the log was rolled back`,
          });
        } else {
          this.warnings.push(`the pinned checkpoint (size ${pin.size}) is outside this bundle's range and could not be checked`);
        }
      }
    }
    return {
      ok: this.failureCount === 0,
      origin: h?.origin ?? null,
      organizationId: h?.organizationId ?? null,
      start: h?.start ?? null,
      end: h?.end ?? null,
      events: this.events,
      fieldsVerified: this.fieldsVerified,
      erasedFields: this.erasedCount,
      erased: this.erased,
      checkpointsVerified: this.checkpointsVerified,
      consistencyProofsVerified: this.consistencyVerified,
      producerSignaturesVerified: this.producerVerified,
      producerSignaturesUnverifiable: this.producerUnverifiable,
      latest: this.latest,
      failures: this.failures,
      failureCount: this.failureCount,
      warnings: this.warnings,
    };
  }
}

/**
 * Verifies a whole bundle from an iterable of records (parsed JSON lines); convenience over
 * {@link BundleVerifier} for bundles already in memory or read by an async line reader.
 */
export async function verifyBundle(
  records: Iterable<unknown> | AsyncIterable<unknown>,
  options: BundleVerifierOptions,
): Promise<BundleReport> {
  const v = new BundleVerifier(options);
  for await (const r of records) v.push(r);
  return v.finish();
}

function checkIndex(n: unknown, what: string): asserts n is number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new TypeError(`${what} must be a non-negative integer`);
}

function checkString(s: unknown, what: string): asserts s is string {
  if (typeof s !== 'string' || s === '') throw new TypeError(`${what} must be a non-empty string`);
}

function hashOf(s: unknown, what: string): Buffer {
  const b = typeof s === 'string' ? decodeBase64Strict(s) : null;
  if (b === null || b.length !== HASH_SIZE) throw new TypeError(`${what} must be standard base64 of ${HASH_SIZE} bytes`);
  return b;
}
