/**
 * The NDJSON line of a bundle `event` record (ledger/bundle-format.ts, docs/ledger-spec.md §11),
 * written straight from an event row read as text: no record object, no per-field objects, no
 * whole-record `JSON.stringify`. The REST export writes these lines; everything else (self-audit,
 * tRPC, retention, reports) reads the records of bundle-export.ts, and those records, formatted
 * with `formatBundleRecord`, are the reference: this module must give the same bytes for every row
 * (server/test/export/event-line.test.ts compares both over generated events on both backends).
 *
 * Sameness is kept by doing, per value, what the reference does to it: strings and JSON values go
 * through `JSON.stringify` one by one, jsonb is parsed as Drizzle's jsonb column reads it, instants
 * are formatted by `formatRecordedAt` from the instant the column holds. A row whose
 * committed fields are not what ingest writes (a forged or damaged row) is formatted with the
 * reference's own field code, so even its quirks come out the same.
 */
import { EVENT_FIELDS, type EventField } from '../events/schema';
import { formatRecordedAt, type CommittedField } from '../ledger';

/**
 * An event row as the export's text query reads it (repository.ts `eventLinePage`): every column
 * text. Each committed field's column under its field name: text columns as they are, `details`
 * and `sessionContext` as jsonb text, `timestamp` as integer epoch milliseconds.
 */
export type EventLineRow = {
  leafIndex: string;
  id: string;
  /** `recorded_at` as integer milliseconds since the epoch (the column has millisecond precision). */
  recordedAtMs: string;
  /** The stored level-0 node's hash in standard base64, null when the node is missing. */
  leafHash: string | null;
  /** jsonb text. */
  commitments: string;
  /** jsonb text. */
  salts: string;
  producerKeyId: string | null;
  producerSignature: string | null;
} & { [F in EventField]: string | null };

/**
 * A jsonb column's text as Drizzle's jsonb column reads it: the driver parses the text once and
 * Drizzle parses again when that gives a string (a jsonb string holding JSON becomes its value).
 * The reference records are read that way, so the lines must be too.
 */
export function readJsonb(text: string): unknown {
  const once: unknown = JSON.parse(text);
  if (typeof once !== 'string') return once;
  try {
    return JSON.parse(once) as unknown;
  } catch {
    return once;
  }
}

/** `"name":{"commitment":` for every committed field name, built once. */
const FIELD_OPENING: ReadonlyMap<string, string> = new Map(EVENT_FIELDS.map((f) => [f, `${JSON.stringify(f)}:{"commitment":`]));

/**
 * Formats instants read as epoch milliseconds, as `valuesOf` formats the `timestamp` column and
 * bundle-export.ts the leaf's recordedAt: `formatRecordedAt` of the instant the column holds
 * (there read from PostgreSQL's text, exactly, years below 100 included; here it comes as a
 * number and needs no parsing). It remembers the last one: the events of one append share their
 * recordedAt, and a producer's events often their timestamp.
 */
function instantFormatter(): (ms: string) => string {
  let lastMs = '';
  let last = '';
  return (ms) => {
    if (ms !== lastMs) {
      last = formatRecordedAt(new Date(Number(ms)));
      lastMs = ms;
    }
    return last;
  };
}
const recordedAtOf = instantFormatter();
const timestampOf = instantFormatter();

/** The JSON of a present field's value, as `valuesOf` gives it and `JSON.stringify` writes it. */
function valueJson(row: EventLineRow, field: EventField): string {
  const text = row[field];
  if (text === null) return 'null';
  // Always `YYYY-MM-DDTHH:MM:SS.mmmZ` (formatRecordedAt throws otherwise): nothing to escape.
  if (field === 'timestamp') return `"${timestampOf(text)}"`;
  if (field === 'details' || field === 'sessionContext') {
    const v = readJsonb(text);
    // valuesOf leaves a JSON null out, and the field then shows `value: null`: the same text.
    return v === null ? 'null' : JSON.stringify(v);
  }
  return JSON.stringify(text);
}

/** The value of `field` exactly as events/repository.ts `valuesOf` has it (for the reference fallback). */
function referenceValue(row: EventLineRow, field: EventField): unknown {
  const text = row[field];
  if (text === null) return undefined;
  if (field === 'timestamp') return timestampOf(text);
  if (field === 'details' || field === 'sessionContext') return readJsonb(text) ?? undefined;
  return text;
}

/**
 * The reference's `fields` object (bundle-export.ts `fieldsOf` over events/repository.ts
 * `valuesOf`), built the same way from the text row; used only for rows the fast loop does not
 * take, so their bytes are the reference's whatever they hold.
 */
function referenceFields(row: EventLineRow, commitments: unknown, salts: Record<string, unknown>): Record<string, CommittedField> {
  const values: Record<string, unknown> = {};
  for (const f of EVENT_FIELDS) {
    if (!(f in salts)) continue;
    const v = referenceValue(row, f);
    if (v !== null && v !== undefined) values[f] = v;
  }
  const fields: Record<string, CommittedField> = {};
  for (const [name, commitment] of Object.entries(commitments as Record<string, string>)) {
    const salt = (salts[name] as string | undefined) ?? null;
    fields[name] = salt === null ? { commitment, salt } : { commitment, salt, value: values[name] ?? null };
  }
  return fields;
}

/**
 * The `fields` member's JSON: for each committed field in the commitments' key order (jsonb's,
 * as the reference iterates it), `{"commitment":…,"salt":null}` once erased, else with the salt
 * and the value (docs/ledger-spec.md §4).
 */
function fieldsJson(row: EventLineRow): string {
  const commitments = readJsonb(row.commitments);
  const salts = readJsonb(row.salts);
  // `in` on a non-object throws in valuesOf: the reference path decides what happens then.
  if (typeof salts !== 'object' || salts === null) return JSON.stringify(referenceFields(row, commitments, salts as Record<string, unknown>));
  const saltOf = salts as Record<string, unknown>;
  const committed = commitments as Record<string, unknown>;
  // PostgreSQL's jsonb text escapes every `"`, `\` and control character in a string with a
  // backslash, and its strings are well-formed UTF-8: in a text without one, every string needs
  // no escaping, and JSON.stringify(s) is `"` + s + `"` (RFC 8259 §7). Commitments (hex) and salts
  // (base64) as ingest writes them never have one, which spares 2 × 14 JSON.stringify calls.
  const plainCommitments = row.commitments.indexOf('\\') === -1;
  const plainSalts = row.salts.indexOf('\\') === -1;
  // Object.keys: the order of the reference's Object.entries, without an array per field.
  const names = Object.keys(committed);
  let out = '{';
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const commitment = committed[name];
    const opening = FIELD_OPENING.get(name);
    const salt = saltOf[name] ?? null;
    // Only the shape ingest writes is taken here: a known field, a string commitment, a string
    // salt or none. Anything else (a forged row) gets the reference's own code.
    if (opening === undefined || typeof commitment !== 'string' || (salt !== null && typeof salt !== 'string')) {
      return JSON.stringify(referenceFields(row, commitments, saltOf));
    }
    if (i > 0) out += ',';
    out += plainCommitments ? `${opening}"${commitment}"` : opening + JSON.stringify(commitment);
    if (salt === null) out += ',"salt":null}';
    else out += `,"salt":${plainSalts ? `"${salt}"` : JSON.stringify(salt)},"value":${valueJson(row, name as EventField)}}`;
  }
  return out + '}';
}

/**
 * One bundle `event` line (no newline), the same bytes as
 * `formatBundleRecord` of the record bundle-export.ts builds from the same row. Members in the
 * reference's order: type, leafIndex, id, recordedAt, leafHash, fields, producerSignature.
 */
export function formatEventLine(row: EventLineRow): string {
  // A uuid, a leaf index, an RFC 3339 instant and base64 need no escaping.
  let line = `{"type":"event","leafIndex":${Number(row.leafIndex)},"id":"${row.id}","recordedAt":"${recordedAtOf(row.recordedAtMs)}","leafHash":"${row.leafHash ?? ''}","fields":${fieldsJson(row)}`;
  if (row.producerKeyId && row.producerSignature) {
    line += `,"producerSignature":{"keyId":${JSON.stringify(row.producerKeyId)},"signature":${JSON.stringify(row.producerSignature)}}`;
  }
  return line + '}';
}
