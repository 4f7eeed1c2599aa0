/**
 * The export bundle format (docs/ledger-spec.md §11, docs/verification.md §3):
 * NDJSON, one JSON object per line, each with a `type`. In order:
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
 * Types only (and the line formatter): the exporter writes these records, bundle-verifier.ts reads them.
 */
import type { CommittedField } from './commitment';

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
/** One line of NDJSON for a record (no trailing newline). */
export function formatBundleRecord(record: BundleRecord): string {
  return JSON.stringify(record);
}
