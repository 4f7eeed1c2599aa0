/**
 * The committed form of an event (docs/ledger-spec.md §4, §5): normalized field values, a fresh salt and a
 * commitment per field, and the leaf bytes. Pure except for the random salts it is handed.
 */
import { commitField, formatRecordedAt, leafBytes, leafHash } from '../ledger';
import { EVENT_FIELDS, type EventField, type EventInput } from './schema';

/** Field values exactly as committed (JSON values). */
export type FieldValues = Partial<Record<EventField, unknown>>;

/** Everything the ledger needs to store for one event. */
export interface CommittedEvent {
  values: FieldValues;
  commitments: Record<string, string>;
  /** base64 salts, one per committed field. */
  salts: Record<string, string>;
  leafHash: Buffer;
}

/**
 * Normalizes an event for commitment: the timestamp becomes RFC 3339 UTC with millisecond
 * precision (default: `recordedAt`), absent fields stay absent.
 */
export function normalizeEvent(input: EventInput, recordedAt: Date): FieldValues {
  const values: FieldValues = {};
  for (const field of EVENT_FIELDS) {
    const v = input[field];
    if (v !== undefined) values[field] = v;
  }
  values.timestamp = formatRecordedAt(input.timestamp ? new Date(input.timestamp) : recordedAt);
  return values;
}

/** Commits each field with its salt and builds the leaf (docs/ledger-spec.md §5). */
export function commitEvent(
  org: string,
  id: string,
  recordedAt: Date,
  values: FieldValues,
  salt: () => Buffer,
): CommittedEvent {
  const commitments: Record<string, string> = {};
  const salts: Record<string, string> = {};
  for (const field of EVENT_FIELDS) {
    const v = values[field];
    if (v === undefined) continue;
    const s = salt();
    commitments[field] = commitField(s, v);
    salts[field] = s.toString('base64');
  }
  const leaf = leafBytes({ org, id, recordedAt: formatRecordedAt(recordedAt), fields: commitments });
  return { values, commitments, salts, leafHash: leafHash(leaf) };
}
