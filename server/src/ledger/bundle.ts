/**
 * Export bundles and their offline verification (docs/ledger-spec.md §11, §12).
 *
 * A bundle is NDJSON: one JSON object per line, each with a `type`. In order:
 *
 * 1. `header`: format, origin, organization, the leaf range [start, end) and the log's head size.
 * 2. `key` ×k: every checkpoint signing key the log ever used, with its validity window; then
 *    `producerKey` ×p: the organization's registered producer keys (for producer signatures).
 * 3. `frontier` (only when start > 0): the hashes of the complete subtrees that make up [0, start)
 *    (RFC 9162 §2.1.1 decomposition, largest first), followed by the signed checkpoint at `start`
 *    whose root they must reproduce.
 * 4. `event` ×(end − start) in leaf order, each followed, when a signed checkpoint ends there, by a
 *    `consistency` proof from the previous checkpoint (RFC 9162 §2.1.4) and that `checkpoint`.
 * 5. Possibly one more `consistency` + `checkpoint` past `end`: the log's latest signed checkpoint.
 * 6. `end`: how many events and checkpoints were written, so truncation is detected.
 *
 * {@link BundleVerifier} consumes records one at a time (flat memory for any size): it re-hashes
 * every field value against its commitment, rebuilds every leaf and the tree incrementally,
 * recomputes the root at every checkpoint and compares it with the signed one, checks every
 * checkpoint signature against the keys the auditor trusts and every consistency proof between
 * consecutive checkpoints. Erased fields (no salt, no value) are reported as erased, not as failures.
 *
 * Nothing here does I/O: the CLI reads lines, the server's self-audit feeds records from the database.
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import { SALT_SIZE, leafBytes, type CommittedField } from './commitment';
import { decodeBase64Strict } from './encoding';
import { EMPTY_ROOT, HASH_SIZE, leafHash, nodeHash } from './hash';
import { canonicalize } from './jcs';
import { openCheckpoint, type Checkpoint, type Verifier } from './note';
import { producerKeyId, verifyProducerSignature } from './producer';
import { verifyConsistency } from './tree';
import { VerificationError } from './errors';

/** The `format` of the header line of bundles this module writes and reads. */
export const BUNDLE_FORMAT = 'smedrec-audit-bundle/1';

/** First line: what the bundle covers. */
export interface BundleHeader {
  type: 'header';
  format: typeof BUNDLE_FORMAT;
  /** Checkpoint origin of the log (`<AUDIT_LOG_ORIGIN>/<organizationId>`). */
  origin: string;
  organizationId: string;
  /** First leaf index in the bundle (a signed checkpoint size, or 0). */
  start: number;
  /** One past the last leaf index in the bundle (a signed checkpoint size). */
  end: number;
  /** The log's head size when exported; must equal the size of the latest signed checkpoint. */
  headSize: number;
  /** RFC 3339 time of the export (informational). */
  exportedAt: string;
}

/** A checkpoint signing key with its validity window (rotation never invalidates old checkpoints). */
export interface BundleKey {
  type: 'key';
  keyId: string;
  name: string;
  /** Signed-note verifier key `<name>+<hex id>+<base64(0x01 || public key)>`. */
  verifierKey: string;
  notBefore: string;
  notAfter: string | null;
}

/** A producer's Ed25519 key, registered with the organization (producer signatures). */
export interface BundleProducerKey {
  type: 'producerKey';
  /** First 8 bytes of SHA-256(public key), hex. */
  keyId: string;
  name: string;
  /** Standard base64 of the raw 32-byte public key. */
  publicKey: string;
  createdAt: string;
  revokedAt: string | null;
}

/** Hashes of the complete subtrees that make up [0, size), largest first (standard base64). */
export interface BundleFrontier {
  type: 'frontier';
  size: number;
  hashes: string[];
}

/** One event in its committed form. */
export interface BundleEvent {
  type: 'event';
  leafIndex: number;
  id: string;
  /** RFC 3339 UTC, millisecond precision, `Z` (as in the leaf). */
  recordedAt: string;
  /** The log's stored hash of this leaf (level-0 tree node), standard base64. */
  leafHash: string;
  /** Every committed field: commitment, and unless erased its salt and value. */
  fields: Record<string, CommittedField>;
  /** The producer's signature over the event as sent (not committed; checked separately). */
  producerSignature?: { keyId: string; signature: string };
}

/** A signed checkpoint (C2SP tlog-checkpoint signed note). */
export interface BundleCheckpoint {
  type: 'checkpoint';
  treeSize: number;
  note: string;
  /** When the server stored it (not signed; compared with key windows for a warning only). */
  createdAt: string | null;
}

/** RFC 9162 §2.1.4 consistency proof between two checkpoint sizes (standard base64 hashes). */
export interface BundleConsistency {
  type: 'consistency';
  fromSize: number;
  toSize: number;
  hashes: string[];
}

/** Last line: counts, so a truncated bundle does not verify. */
export interface BundleEnd {
  type: 'end';
  events: number;
  checkpoints: number;
}

/** Any line of a bundle. */
export type BundleRecord =
  | BundleHeader
  | BundleKey
  | BundleProducerKey
  | BundleFrontier
  | BundleEvent
  | BundleCheckpoint
  | BundleConsistency
  | BundleEnd;

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

/**
 * Streaming verifier of a bundle: `push` every record in order (parsed JSON), then `finish`.
 * Memory is O(log n) for the tree plus the listed failures, whatever the bundle size.
 */
export class BundleVerifier {
  private readonly maxListed: number;
  private header: BundleHeader | null = null;
  private readonly keys: BundleKey[] = [];
  private readonly producerKeys = new Map<string, { publicKey: Buffer; revokedAt: number }>();
  private producerVerified = 0;
  private producerUnverifiable = 0;
  /** Complete subtree roots of [0, size), largest first, with their levels (RFC 9162 §2.1.1). */
  private stack: Buffer[] = [];
  private levels: number[] = [];
  /** Leaves folded into the stack so far (= next expected leaf index once started). */
  private size = 0;
  private started = false;
  private lastCheckpoint: { size: number; root: Buffer } | null = null;
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
      if (err instanceof VerificationError || err instanceof TypeError || err instanceof RangeError) {
        this.fail({ kind: 'bundle', reason: `malformed record: ${err.message}` });
      } else {
        throw err;
      }
    }
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
    const pk = typeof k.publicKey === 'string' ? decodeBase64Strict(k.publicKey) : null;
    if (pk === null || pk.length !== 32) throw new TypeError('producerKey.publicKey must be base64 of 32 bytes');
    if (producerKeyId(pk) !== k.keyId) throw new TypeError(`producer key id ${String(k.keyId)} does not match its public key`);
    this.producerKeys.set(k.keyId, { publicKey: pk, revokedAt: k.revokedAt === null ? Infinity : Date.parse(k.revokedAt) });
  }

  /** Checks a producer signature over the committed values (all present: the event as sent). */
  private checkProducerSignature(e: BundleEvent, idx: number): void {
    const ps = e.producerSignature;
    if (ps === undefined || ps === null) return;
    const key = this.producerKeys.get(ps.keyId);
    if (!key) {
      this.fail({ kind: 'leaf', leafIndex: idx, reason: `leaf ${idx}: signed by unknown producer key ${String(ps.keyId)}` });
      return;
    }
    const values: Record<string, unknown> = {};
    for (const [name, f] of Object.entries(e.fields)) {
      if (f.salt === null) {
        this.producerUnverifiable++; // erased: the signed message cannot be rebuilt, by design
        return;
      }
      values[name] = f.value;
    }
    if (Date.parse(e.recordedAt) > key.revokedAt) {
      this.fail({ kind: 'leaf', leafIndex: idx, reason: `leaf ${idx}: recorded after producer key ${ps.keyId} was revoked` });
    } else if (!verifyProducerSignature(values, ps.signature, key.publicKey)) {
      this.fail({ kind: 'leaf', leafIndex: idx, reason: `leaf ${idx}: producer signature of key ${ps.keyId} does not verify` });
    } else {
      this.producerVerified++;
    }
  }

  private onFrontier(f: BundleFrontier): void {
    const h = this.header!;
    if (this.started || f.size !== h.start) throw new TypeError(`unexpected frontier for size ${String(f.size)}`);
    if (!Array.isArray(f.hashes)) throw new TypeError('frontier.hashes must be an array');
    // The frontier of a tree of n leaves has one complete subtree per set bit of n, largest first.
    const levels: number[] = [];
    for (let n = f.size, level = 0; n > 0; n = Math.floor(n / 2), level++) if (n % 2 === 1) levels.unshift(level);
    if (levels.length !== f.hashes.length) throw new TypeError(`frontier of size ${f.size} needs ${levels.length} hashes`);
    this.stack = f.hashes.map((s, i) => hashOf(s, `frontier.hashes[${i}]`));
    this.levels = levels;
    this.size = f.size;
    this.started = true;
  }

  private onEvent(e: BundleEvent): void {
    const h = this.header!;
    if (!this.started) throw new TypeError('an event before the frontier');
    this.events++;
    const expected = this.size;
    if (typeof e.leafIndex === 'number' && e.leafIndex === expected - 1 && expected > 0) {
      this.fail({ kind: 'leaf', leafIndex: e.leafIndex, reason: `leaf ${e.leafIndex} appears twice (a second event claims its position)` });
      return;
    }
    if (typeof e.leafIndex !== 'number' || e.leafIndex !== expected) {
      this.fail({
        kind: 'leaf',
        leafIndex: expected,
        reason:
          typeof e.leafIndex === 'number' && e.leafIndex > expected
            ? `leaf ${expected} is missing (next event has leaf index ${e.leafIndex})`
            : `leaf ${expected} expected, got an event with leaf index ${String(e.leafIndex)} (duplicate or out of order)`,
      });
      // Resynchronise on what the bundle claims only when it skipped ahead: the tree is broken anyway.
      if (typeof e.leafIndex !== 'number' || e.leafIndex < expected) return;
    }
    if (expected >= h.end) {
      this.fail({ kind: 'leaf', leafIndex: expected, reason: `leaf ${expected} is past the bundle end ${h.end}` });
    }
    const idx = expected;
    let leafOk = true;
    const commitments: Record<string, string> = {};
    if (typeof e.fields !== 'object' || e.fields === null || Array.isArray(e.fields)) {
      this.fail({ kind: 'leaf', leafIndex: idx, reason: `leaf ${idx}: fields missing` });
      leafOk = false;
    } else {
      for (const [name, field] of Object.entries(e.fields)) {
        if (typeof field !== 'object' || field === null) {
          this.fail({ kind: 'leaf', leafIndex: idx, reason: `leaf ${idx}: field ${name} is malformed` });
          leafOk = false;
          continue;
        }
        const status = committedFieldStatus(field);
        commitments[name] = field.commitment;
        if (status === 'ok') {
          this.fieldsVerified++;
        } else if (status === 'erased') {
          this.erasedCount++;
          if (this.erased.length < this.maxListed) this.erased.push({ leafIndex: idx, field: name });
        } else {
          this.fail({ kind: 'leaf', leafIndex: idx, reason: `leaf ${idx}: field ${name} does not match its commitment` });
          leafOk = false;
        }
      }
    }
    let hash: Buffer;
    try {
      hash = rebuildLeafHash(h.organizationId, e.id, e.recordedAt, commitments);
    } catch (err) {
      this.fail({ kind: 'leaf', leafIndex: idx, reason: `leaf ${idx}: cannot rebuild the leaf: ${(err as Error).message}` });
      hash = Buffer.alloc(HASH_SIZE); // keep the tree going so later checks still run
      leafOk = false;
    }
    // Canonical base64 of 32 bytes is unique, so comparing the strings compares the hashes.
    if (leafOk && e.leafHash !== b64(hash)) {
      this.fail({
        kind: 'leaf',
        leafIndex: idx,
        reason: `leaf ${idx}: rebuilt leaf hash ${b64(hash)} differs from the log's leaf ${typeof e.leafHash === 'string' && e.leafHash !== '' ? e.leafHash : '(none)'}`,
      });
    }
    if (leafOk) this.checkProducerSignature(e, idx);
    this.append(hash);
  }

  /*
   * Incremental RFC 9162 §2.1.1 tree: the stack holds the complete subtrees of [0, size) with
   * strictly decreasing levels (the binary representation of size). Appending leaf n pushes a
   * level-0 node; while the two top entries have the same level L they are siblings and merge into
   * their parent at L + 1, which covers [n + 1 − 2^(L+1), n + 1), i.e. index (n + 1) / 2^(L+1) − 1.
   */
  private append(hash: Buffer): void {
    const onNode = this.options.onNode;
    const n = this.size;
    onNode?.(0, n, hash);
    this.stack.push(hash);
    this.levels.push(0);
    const end = n + 1;
    let top = this.levels.length - 1;
    while (top >= 1 && this.levels[top] === this.levels[top - 1]) {
      const right = this.stack.pop()!;
      const left = this.stack.pop()!;
      this.levels.pop();
      const level = this.levels.pop()! + 1;
      const parent = nodeHash(left, right);
      onNode?.(level, end / 2 ** level - 1, parent);
      this.stack.push(parent);
      this.levels.push(level);
      top--;
    }
    this.size = end;
  }

  /** Root of the leaves seen so far: the stack folded right to left (RFC 9162 §2.1.1). */
  private root(): Buffer {
    if (this.stack.length === 0) return EMPTY_ROOT;
    let r = this.stack[this.stack.length - 1]!;
    for (let i = this.stack.length - 2; i >= 0; i--) r = nodeHash(this.stack[i]!, r);
    return r;
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

/** One line of NDJSON for a record (no trailing newline). */
export function formatBundleRecord(record: BundleRecord): string {
  return JSON.stringify(record);
}

/** Describes the first failure of a report as one line: `leaf 12: …`, `checkpoint 40: …`. */
export function describeFirstFailure(report: BundleReport): string | null {
  const f = report.failures[0];
  if (!f) return null;
  const where = f.kind === 'leaf' ? `leaf ${f.leafIndex}` : f.kind === 'checkpoint' ? `checkpoint ${f.treeSize}` : `line ${f.line}`;
  return `${where}: ${f.reason}`;
}

// ---------------------------------------------------------------------------------------------
// Hot path. A bundle of a million events means ~15 million field commitments: these are the same
// computations as verifyCommittedField and leafHash(leafBytes(…)) (commitment.ts), with fast paths
// for the common shapes and a fall-back to the reference code for everything else. The tests
// check them against the reference on random input.
// ---------------------------------------------------------------------------------------------

/** Canonical standard base64 of exactly 16 bytes: 21 free characters, one with 4 zero low bits, `==`. */
const SALT_B64_RE = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
const ALL_HEX_RE = /^[0-9a-f]*$/;
const RECORDED_AT_MS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const SURROGATE_RE = /[\uD800-\uDFFF]/;

/**
 * RFC 8785 of a value. A string without surrogates serializes exactly as JSON.stringify does it
 * (RFC 8785 §3.2.2.2 adopts the ECMAScript escaping), so that shortcut is exact; anything else
 * (objects, numbers, strings with surrogate pairs or lone surrogates) goes through canonicalize.
 */
function jcs(value: unknown): string {
  if (typeof value === 'string' && !SURROGATE_RE.test(value)) return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) {
    try {
      const out = jcsParsed(value);
      if (out !== null) return out;
    } catch {
      // too deep for recursion: the iterative reference handles it
    }
  }
  return canonicalize(value);
}

/**
 * RFC 8785 for what JSON.parse returns (no cycles, no undefined, only plain objects and arrays),
 * recursively: members sorted by UTF-16 code units (§3.2.3, the default sort), numbers by
 * ECMAScript Number::toString (§3.2.2.3, which `String` is; JSON.parse never yields NaN or ±∞),
 * strings as JSON.stringify writes them (§3.2.2.2). Returns null, to fall back on the reference
 * code, for anything else: a surrogate anywhere, a non-plain object, a non-finite number.
 */
function jcsParsed(value: unknown): string | null {
  switch (typeof value) {
    case 'string':
      return SURROGATE_RE.test(value) ? null : JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : null;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        const parts: string[] = [];
        for (const item of value as unknown[]) {
          const p = jcsParsed(item);
          if (p === null) return null;
          parts.push(p);
        }
        return `[${parts.join(',')}]`;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype) return null;
      const obj = value as Record<string, unknown>;
      const parts: string[] = [];
      for (const key of Object.keys(obj).sort()) {
        const v = obj[key];
        if (v === undefined) continue; // as canonicalize: absent members are omitted
        if (SURROGATE_RE.test(key)) return null;
        const p = jcsParsed(v);
        if (p === null) return null;
        parts.push(`${JSON.stringify(key)}:${p}`);
      }
      return `{${parts.join(',')}}`;
    }
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      return null;
  }
}

/** Scratch space for salt || JCS(value), so hashing a field allocates nothing on the way. */
let scratch = Buffer.alloc(64 * 1024);

/** Same verdict as verifyCommittedField: 'ok', 'erased' (no salt, no value) or 'mismatch'. */
export function committedFieldStatus(f: CommittedField): 'ok' | 'erased' | 'mismatch' {
  const hasValue = 'value' in f && f.value !== undefined;
  if (f.salt === null) return hasValue ? 'mismatch' : 'erased';
  // A malformed commitment needs no separate check: it can never equal a lower-case hex digest.
  if (!hasValue || typeof f.commitment !== 'string') return 'mismatch';
  if (typeof f.salt !== 'string' || !SALT_B64_RE.test(f.salt)) return 'mismatch';
  let text: string;
  try {
    text = jcs(f.value);
  } catch {
    return 'mismatch'; // not JSON (NaN, a lone surrogate…): cannot be what was committed
  }
  // c = SHA-256(salt || UTF-8(JCS(value))) (docs/ledger-spec.md §4).
  const need = SALT_SIZE + text.length * 3; // UTF-8 needs at most 3 bytes per UTF-16 code unit
  if (need > scratch.length) scratch = Buffer.alloc(Math.max(need, scratch.length * 2));
  scratch.write(f.salt, 0, 'base64');
  const n = scratch.write(text, SALT_SIZE, 'utf8');
  const digest = oneShotHash('sha256', scratch.subarray(0, SALT_SIZE + n), 'hex');
  return digest === f.commitment ? 'ok' : 'mismatch';
}

/**
 * leafHash(leafBytes({org, id, recordedAt, fields})). JCS orders members by UTF-16 code units:
 * "fields" < "id" < "org" < "recordedAt" < "v", and field names by the default sort. Inputs the
 * fast path does not cover exactly (surrogates, malformed values) go through the reference code,
 * which throws for what is not a valid leaf.
 */
export function rebuildLeafHash(org: string, id: string, recordedAt: string, fields: Record<string, string>): Buffer {
  const simple = (s: unknown): s is string => typeof s === 'string' && !SURROGATE_RE.test(s);
  const names = Object.keys(fields).sort();
  const values = names.map((n) => fields[n]);
  // One pattern test for all commitments: each a string of 64 lower-case hex digits.
  const joined = values.every((c) => typeof c === 'string' && c.length === 64) ? values.join('') : null;
  if (!simple(org) || !simple(id) || typeof recordedAt !== 'string' || !RECORDED_AT_MS_RE.test(recordedAt) || joined === null || !ALL_HEX_RE.test(joined) || !names.every(simple)) {
    return leafHash(leafBytes({ org, id, recordedAt, fields }));
  }
  const members = names.map((n) => `${JSON.stringify(n)}:"${fields[n]}"`).join(',');
  const text = `{"fields":{${members}},"id":${JSON.stringify(id)},"org":${JSON.stringify(org)},"recordedAt":"${recordedAt}","v":1}`;
  return createHash('sha256').update(LEAF_PREFIX).update(text, 'utf8').digest(); // RFC 9162 §2.1.1: SHA-256(0x00 || leaf)
}

const LEAF_PREFIX = Uint8Array.of(0x00);

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
