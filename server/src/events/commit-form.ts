/**
 * The committed form of an event (docs/ledger-spec.md §4, §5): normalized field values, a fresh salt and
 * a commitment per field, and the leaf bytes. Pure except for the random salts it is handed.
 *
 * It happens in two steps so that nothing a client sent can fail inside a group commit:
 * {@link prepareEvent} commits every field the client sent (RFC 8785 canonicalization of each
 * value) before the event joins a batch, and {@link sealEvent} adds what only the batch knows
 * (id, recordedAt, a defaulted timestamp) and builds the leaf — which cannot fail for any input.
 */
import { randomBytes } from 'node:crypto';
import { formatRecordedAt, SALT_SIZE } from '../ledger';
// Imported from the module itself, not through the index's re-export (a getter call per use).
import { commitFieldFast, rebuildLeafHash } from '../ledger/fast-commitment';
import { EVENT_FIELDS, type EventField, type EventInput } from './schema';

/** Field values exactly as committed (JSON values). */
export type FieldValues = Partial<Record<EventField, unknown>>;

/** An event whose sent fields are committed, waiting for its place in a log. */
export interface PreparedEvent {
  values: FieldValues;
  commitments: Record<string, string>;
  /** base64 salts, one per committed field. */
  salts: Record<string, string>;
  idempotencyKey?: string;
  producerSignature?: { keyId: string; signature: string };
}

/** Everything the ledger needs to store for one event. */
export interface CommittedEvent {
  values: FieldValues;
  commitments: Record<string, string>;
  /** base64 salts, one per committed field. */
  salts: Record<string, string>;
  leafHash: Buffer;
}

/**
 * Fresh 16-byte salts cut from random buffers of `chunk` salts: one CSPRNG call per chunk
 * instead of one per field (the per-call overhead showed in profiles). Each salt is used once.
 */
export function createSaltSource(chunk = 1024): () => Buffer {
  let pool = Buffer.alloc(0);
  let next = 0;
  return () => {
    if (next >= pool.length) {
      pool = randomBytes(SALT_SIZE * chunk);
      next = 0;
    }
    return pool.subarray(next, (next += SALT_SIZE));
  };
}

/**
 * Commits every field the client sent; the timestamp becomes RFC 3339 UTC with millisecond
 * precision. Throws only for a value the event schema should have refused (a server bug).
 * Commitments are computed by `commitFieldFast`, which tests check against the reference
 * `commitField` (server/test/ledger/fast-commitment.test.ts).
 */
export function prepareEvent(input: EventInput, salt: () => Buffer): PreparedEvent {
  const values: FieldValues = {};
  const commitments: Record<string, string> = {};
  const salts: Record<string, string> = {};
  for (const field of EVENT_FIELDS) {
    let v: unknown = input[field];
    if (v === undefined) continue;
    if (field === 'timestamp') v = formatRecordedAt(new Date(v as string));
    const s = salt();
    commitments[field] = commitFieldFast(s, v);
    salts[field] = s.toString('base64');
    values[field] = v;
  }
  return { values, commitments, salts, idempotencyKey: input.idempotencyKey, producerSignature: input.producerSignature };
}

/**
 * Places a prepared event: the timestamp defaults to `recordedAt` (committed here), and the leaf
 * is `UTF-8(JCS({"v":1,"org","id","recordedAt","fields"}))` (docs/ledger-spec.md §5), hashed by
 * `rebuildLeafHash` (checked against `leafHash(leafBytes(…))` in tests).
 * `recordedAtText` is `formatRecordedAt(recordedAt)`, computed once per batch by the caller.
 * Does not modify `prepared`, so a batch can be retried.
 */
export function sealEvent(
  org: string,
  id: string,
  recordedAt: Date,
  prepared: PreparedEvent,
  salt: () => Buffer,
  recordedAtText: string = formatRecordedAt(recordedAt),
): CommittedEvent {
  let { values, commitments, salts } = prepared;
  if (values.timestamp === undefined) {
    const timestamp = recordedAtText;
    const s = salt();
    values = { ...values, timestamp };
    commitments = { ...commitments, timestamp: commitFieldFast(s, timestamp) };
    salts = { ...salts, timestamp: s.toString('base64') };
  }
  return { values, commitments, salts, leafHash: rebuildLeafHash(org, id, recordedAtText, commitments) };
}
