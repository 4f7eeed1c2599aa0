/**
 * `GET /fhir/AuditEvent?…`: the search parameters this server supports, parsed from the query
 * string into one bounded, keyset-paged query on the events of the caller's organization.
 *
 * | parameter | type | matches |
 * | --- | --- | --- |
 * | `date` | date, prefixes `eq` (default) `ge` `gt` `le` `lt` | the AuditEvent's `recorded`: the event's timestamp (the producer's time; recordedAt when it sent none) |
 * | `_lastUpdated` | date, the same prefixes | the AuditEvent's `meta.lastUpdated`: recordedAt (when the log recorded the event, certified by the ledger) |
 * | `patient` | reference (`Patient/123` or `123`) | patientId |
 * | `agent` | reference or identifier value | principalId (as sent, or without its `Type/` prefix) |
 * | `entity` | reference (`Type/id` or `id`) | targetResourceType + targetResourceId, or the patient |
 * | `action` | token C R U D E | the AuditEvent's action (events not sent as FHIR: by the last segment of their action) |
 * | `outcome` | token 0 4 8 12 | the AuditEvent's outcome (others: status success → 0, failure → 8) |
 * | `type` | token `[system|]code` | the AuditEvent's type (others: our action, system {@link ACTION_SYSTEM}) |
 * | `subtype` | token `[system|]code` | any of the AuditEvent's subtypes |
 *
 * Comma-separated values are alternatives (OR); repeated parameters all apply (AND). `_count`
 * (1–100, default 20), `_sort` (`-date` default, or `date`: on `recorded`, ties by id), and `_cursor`
 * (the opaque (recorded, id) position of the next page, from the Bundle's `next` link). Anything else is refused (400) rather than
 * silently ignored, apart from `_format` (JSON only) and `_pretty`.
 */
import { and, asc, desc, eq, inArray, or, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client';
import { events } from '../db/schema';
import { parseTimestamptz } from '../db/timestamps';
import { cursorSchema, encodeCursor, type Cursor } from '../events/cursor';
import { splitReference } from '../privacy/identifiers';
import { ACTION_SYSTEM, DETAILS_KEY, NATIVE_VERBS, OUTCOME_OF_STATUS } from './mapping';

/** A search problem: the parameter named, and why (the HTTP layer answers 400 with an OperationOutcome). */
export class SearchParameterError extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(message);
  }
}

/** The supported search parameters, as the CapabilityStatement lists them. */
export const SEARCH_PARAMETERS = [
  {
    name: 'date',
    type: 'date',
    definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-date',
    documentation:
      'AuditEvent.recorded: the event timestamp as the producer sent it (recordedAt when it sent none); prefixes eq (default), ge, gt, le, lt; precision year to millisecond; _sort=date|-date',
  },
  { name: 'patient', type: 'reference', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-patient', documentation: 'the patient (Patient/123 or 123): patientId' },
  { name: 'agent', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-agent', type: 'reference', documentation: 'who did it: principalId as sent (reference, identifier value or name), or the id of a Type/id reference' },
  { name: 'entity', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-entity', type: 'reference', documentation: 'what it was done to: Type/id or id of targetResourceType/targetResourceId, or the patient' },
  { name: 'action', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-action', type: 'token', documentation: 'C, R, U, D or E' },
  { name: 'outcome', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-outcome', type: 'token', documentation: '0, 4, 8 or 12' },
  { name: 'type', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-type', type: 'token', documentation: '[system|]code of AuditEvent.type' },
  { name: 'subtype', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-subtype', type: 'token', documentation: '[system|]code of any AuditEvent.subtype' },
  {
    name: '_lastUpdated',
    type: 'date',
    definition: 'http://hl7.org/fhir/SearchParameter/Resource-lastUpdated',
    documentation: 'meta.lastUpdated: recordedAt, when the log recorded the event (RFC 9162 leaf time, certified by the ledger); prefixes eq (default), ge, gt, le, lt; precision year to millisecond',
  },
] as const;

/** Result parameters: `_count` (1–100, default 20), `_sort` (date or -date), `_cursor` (paging). */
export const MAX_COUNT = 100;
const DEFAULT_COUNT = 20;

/** A parsed search. */
export interface AuditEventSearch {
  where: SQL[];
  count: number;
  sort: 'date' | '-date';
  cursor: Cursor | null;
  /** The parameters as given, for the `self` link (paging parameters left out). */
  params: Array<[string, string]>;
}

const SUPPORTED = new Set<string>(SEARCH_PARAMETERS.map((p) => p.name));

const fhir = sql`${events.details} -> ${DETAILS_KEY}`;
const notFhir = sql`(${events.details} IS NULL OR NOT (${events.details} ? ${DETAILS_KEY}))`;

/** Parses the query string (values as Express gives them: a string or a list for repeats). */
export function parseSearch(query: Record<string, unknown>): AuditEventSearch {
  const where: SQL[] = [];
  let count = DEFAULT_COUNT;
  let sort: 'date' | '-date' = '-date';
  let cursor: Cursor | null = null;
  const params: Array<[string, string]> = [];
  for (const [rawName, raw] of Object.entries(query)) {
    const values = (Array.isArray(raw) ? raw : [raw]).map(String);
    const [name, modifier] = rawName.split(':') as [string, string | undefined];
    if (modifier !== undefined) throw new SearchParameterError(rawName, `modifier :${modifier} is not supported`);
    if (name === '_format') {
      if (values.some((v) => !['json', 'application/json', 'application/fhir+json'].includes(v))) throw new SearchParameterError(name, 'only JSON is served');
      continue;
    }
    if (name === '_pretty') continue;
    if (name === '_count') {
      const n = Number(single(name, values));
      if (!Number.isInteger(n) || n < 1 || n > MAX_COUNT) throw new SearchParameterError(name, `must be an integer from 1 to ${MAX_COUNT}`);
      count = n;
      continue;
    }
    if (name === '_sort') {
      const v = single(name, values);
      if (v !== 'date' && v !== '-date') throw new SearchParameterError(name, 'only date and -date are supported');
      sort = v;
      continue;
    }
    if (name === '_cursor') {
      const parsed = cursorSchema.safeParse(single(name, values));
      if (!parsed.success) throw new SearchParameterError(name, 'not a position this server issued');
      cursor = parsed.data;
      continue;
    }
    if (!SUPPORTED.has(name)) throw new SearchParameterError(name, `unknown search parameter (supported: ${[...SUPPORTED].join(', ')}, _count, _sort)`);
    for (const value of values) {
      params.push([name, value]);
      const alternatives = value.split(',').map((v) => v.trim());
      if (alternatives.some((v) => v === '')) throw new SearchParameterError(name, 'empty value');
      where.push(or(...alternatives.map((v) => condition(name, v)))!);
    }
  }
  params.push(['_count', String(count)], ['_sort', sort]);
  return { where, count, sort, cursor, params };
}

function single(name: string, values: string[]): string {
  if (values.length !== 1) throw new SearchParameterError(name, 'may be given once');
  return values[0]!;
}

/** The id of a reference value (`Patient/123` → `123`), or the value itself. */
function idOf(value: string): string {
  return splitReference(value)?.id ?? value;
}

function condition(name: string, v: string): SQL {
  switch (name) {
    case 'date':
      return dateCondition(name, recorded, v);
    case '_lastUpdated':
      return dateCondition(name, sql`${events.recordedAt}`, v);
    case 'patient':
      return eq(events.patientId, idOf(v));
    case 'agent':
      return inArray(events.principalId, [...new Set([v, idOf(v)])]);
    case 'entity': {
      const ref = splitReference(v);
      if (ref) {
        return or(
          and(eq(events.targetResourceType, ref.type), eq(events.targetResourceId, ref.id)),
          ref.type === 'Patient' ? eq(events.patientId, ref.id) : sql`false`,
        )!;
      }
      return or(eq(events.targetResourceId, v), eq(events.patientId, v))!;
    }
    case 'action': {
      if (!['C', 'R', 'U', 'D', 'E'].includes(v)) throw new SearchParameterError(name, `${v} is not an AuditEvent action (C, R, U, D, E)`);
      const native = v === 'E' ? nativeVerbIsNot(Object.values(NATIVE_VERBS).flat()) : nativeVerbIs(NATIVE_VERBS[v as 'C' | 'R' | 'U' | 'D']);
      return or(sql`${fhir} ->> 'action' = ${v}`, and(notFhir, native))!;
    }
    case 'outcome': {
      if (!['0', '4', '8', '12'].includes(v)) throw new SearchParameterError(name, `${v} is not an AuditEvent outcome (0, 4, 8, 12)`);
      const statuses = Object.entries(OUTCOME_OF_STATUS).filter(([, o]) => o === v).map(([s]) => s);
      return or(sql`${fhir} ->> 'outcome' = ${v}`, statuses.length > 0 ? and(notFhir, inArray(events.status, statuses)) : sql`false`)!;
    }
    case 'type':
    case 'subtype': {
      const { system, code } = token(name, v);
      const coding = JSON.stringify([{ ...(system !== undefined ? { system } : {}), code }]);
      if (name === 'type') {
        const sent = system === undefined ? sql`${fhir} -> 'type' ->> 'code' = ${code}` : sql`(${fhir} -> 'type' ->> 'code' = ${code} AND ${fhir} -> 'type' ->> 'system' = ${system})`;
        const native = system === undefined || system === ACTION_SYSTEM ? and(notFhir, eq(events.action, code)) : sql`false`;
        return or(sent, native)!;
      }
      return sql`${fhir} -> 'subtype' @> ${coding}::jsonb`;
    }
    default:
      throw new SearchParameterError(name, 'unknown search parameter');
  }
}

function token(name: string, v: string): { system: string | undefined; code: string } {
  const i = v.indexOf('|');
  if (i < 0) return { system: undefined, code: v };
  const system = v.slice(0, i);
  const code = v.slice(i + 1);
  if (code === '') throw new SearchParameterError(name, 'a token needs a code ([system|]code)');
  return { system: system === '' ? undefined : system, code };
}

const verbPattern = (verbs: readonly string[]) => `\\.(${verbs.join('|')})$`;
function nativeVerbIs(verbs: readonly string[]): SQL {
  return sql`lower(${events.action}) ~ ${verbPattern(verbs)}`;
}
function nativeVerbIsNot(verbs: readonly string[]): SQL {
  return sql`NOT (lower(coalesce(${events.action}, '')) ~ ${verbPattern(verbs)})`;
}

const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** The instant range [start, end) a FHIR date value denotes at its precision (UTC when no zone is given). */
export function dateRange(value: string, parameter = 'date'): { start: Date; end: Date } {
  const m = DATE.exec(value);
  if (!m) throw new SearchParameterError(parameter, `${value} is not a FHIR date or dateTime`);
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  if (h !== undefined && mi === undefined) throw new SearchParameterError(parameter, `${value}: hours need minutes`);
  const start = new Date(0);
  start.setUTCFullYear(Number(y), mo ? Number(mo) - 1 : 0, d ? Number(d) : 1);
  start.setUTCHours(h ? Number(h) : 0, mi ? Number(mi) : 0, s ? Number(s) : 0, frac ? Number(frac.padEnd(3, '0').slice(0, 3)) : 0);
  if (zone && zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    start.setTime(start.getTime() - sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000);
  }
  const end = new Date(start);
  if (frac !== undefined) end.setTime(start.getTime() + 1);
  else if (s !== undefined) end.setTime(start.getTime() + 1000);
  else if (mi !== undefined) end.setTime(start.getTime() + 60_000);
  else if (d !== undefined) end.setUTCDate(end.getUTCDate() + 1);
  else if (mo !== undefined) end.setUTCMonth(end.getUTCMonth() + 1);
  else end.setUTCFullYear(end.getUTCFullYear() + 1);
  if (Number.isNaN(start.getTime()) || (mo && (Number(mo) < 1 || Number(mo) > 12)) || (d && (Number(d) < 1 || Number(d) > 31))) {
    throw new SearchParameterError(parameter, `${value} is not a valid date`);
  }
  return { start, end };
}

/**
 * What `date` and `_sort=date` use: the instant the AuditEvent shows as `recorded` (mapping.ts:
 * `details.fhir.recorded`, or the event's timestamp). Ingest always stores the timestamp — the
 * producer's, or recordedAt when it sent none (commit-form.ts commits the default into the leaf) —
 * and erasure never clears it, so the column itself is that instant (ms precision) and its index
 * (organization_id, timestamp, id) serves the keyset order.
 */
const recorded = sql`${events.timestamp}`;

/** A date condition on `column` at the value's precision: [start, end) compared per prefix. */
function dateCondition(name: string, column: SQL, v: string): SQL {
  const m = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.*)$/.exec(v)!;
  const prefix = m[1] ?? 'eq';
  const { start, end } = dateRange(m[2]!, name);
  const from = sql`${start.toISOString()}::timestamptz`;
  const to = sql`${end.toISOString()}::timestamptz`;
  switch (prefix) {
    case 'eq':
      return sql`(${column} >= ${from} AND ${column} < ${to})`;
    case 'ge':
      return sql`${column} >= ${from}`;
    case 'gt':
      return sql`${column} >= ${to}`;
    case 'le':
      return sql`${column} < ${to}`;
    case 'lt':
      return sql`${column} < ${from}`;
    default:
      throw new SearchParameterError(name, `prefix ${prefix} is not supported (eq, ge, gt, le, lt)`);
  }
}

/** One page of matches (count + 1 rows read: the extra one says whether there is a next page). */
export async function searchPage(db: Db, org: string, s: AuditEventSearch) {
  const where = [eq(events.organizationId, org), ...s.where];
  if (s.cursor) {
    // The cursor's instant is the last row's `recorded` (encodeCursor's field name is events.query's).
    const at = s.cursor.recordedAt.toISOString();
    where.push(
      s.sort === 'date'
        ? sql`(${recorded}, ${events.id}) > (${at}::timestamptz, ${s.cursor.id}::uuid)`
        : sql`(${recorded}, ${events.id}) < (${at}::timestamptz, ${s.cursor.id}::uuid)`,
    );
  }
  const order = s.sort === 'date' ? [asc(recorded), asc(events.id)] : [desc(recorded), desc(events.id)];
  const rows = await db
    .select()
    .from(events)
    .where(and(...where))
    .orderBy(...order)
    .limit(s.count + 1);
  const page = rows.slice(0, s.count);
  const last = rows.length > s.count ? page.at(-1)! : null;
  return { rows: page, next: last ? encodeCursor(recordedOf(last), last.id) : null };
}

/** The `recorded` instant of a row, as the search compares it (recordedAt only if the column were empty). */
function recordedOf(row: { timestamp: string | null; recordedAt: Date }): Date {
  return row.timestamp === null ? row.recordedAt : parseTimestamptz(row.timestamp);
}
