/**
 * Event rows: insert, look-up, filtered keyset pages, stats and leaf ranges. The only module
 * that queries the events and idempotency tables.
 */
import { and, asc, count, desc, eq, gte, inArray, lt, sql, type SQL } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { parseTimestamptz } from '../db/timestamps';
import { events, idempotencyKeys } from '../db/schema';
import { formatRecordedAt } from '../ledger';
import type { FieldValues } from './commit-form';
import { EVENT_FIELDS, type EventField, type EventQuery, type EventRecord, type EventStatsInput } from './schema';

type Conn = Db | Tx;
/** A row of the events table. */
export type EventRow = typeof events.$inferSelect;
/** A row to insert. */
export type NewEventRow = typeof events.$inferInsert;

/** Builds the row for one committed event. */
export function toRow(
  org: string,
  id: string,
  recordedAt: Date,
  leafIndex: number,
  leafHash: Buffer,
  values: FieldValues,
  commitments: Record<string, string>,
  salts: Record<string, string>,
): NewEventRow {
  const str = (f: EventField) => (values[f] === undefined ? null : (values[f] as string));
  return {
    organizationId: org,
    id,
    recordedAt,
    leafIndex,
    leafHash,
    timestamp: values.timestamp === undefined ? null : (values.timestamp as string), // RFC 3339 UTC, ms
    action: str('action'),
    status: str('status'),
    principalId: str('principalId'),
    principalType: str('principalType'),
    targetResourceType: str('targetResourceType'),
    targetResourceId: str('targetResourceId'),
    patientId: str('patientId'),
    outcomeDescription: str('outcomeDescription'),
    dataClassification: str('dataClassification'),
    correlationId: str('correlationId'),
    sessionContext: values.sessionContext ?? null,
    retentionPolicy: str('retentionPolicy'),
    eventVersion: str('eventVersion'),
    details: values.details ?? null,
    idempotencyKey: str('idempotencyKey'),
    commitments,
    salts,
  };
}

/** The committed field values still present in a row (erased ones are absent). */
export function valuesOf(row: EventRow): FieldValues {
  const out: FieldValues = {};
  for (const f of EVENT_FIELDS) {
    if (!(f in row.salts)) continue; // erased or never present
    const v = f === 'timestamp' ? (row.timestamp ? formatRecordedAt(parseTimestamptz(row.timestamp)) : null) : row[f];
    if (v !== null && v !== undefined) out[f] = v;
  }
  return out;
}

/** The API view of a row. */
export function toRecord(row: EventRow): EventRecord {
  const values = valuesOf(row);
  const erasedFields = Object.keys(row.commitments).filter((f) => !(f in row.salts));
  return {
    id: row.id,
    organizationId: row.organizationId,
    recordedAt: formatRecordedAt(row.recordedAt),
    leafIndex: row.leafIndex,
    leafHash: row.leafHash.toString('base64'),
    ...(values as Partial<EventRecord>),
    erasedFields,
  };
}

/**
 * The INSERT of a batch of event rows as one statement of ONE parameter: the rows as a JSON array
 * read by `json_to_recordset`. Building a multi-row VALUES list through the query builder, and
 * later one array parameter per column, cost more CPU than the database spent inserting
 * (bench/ingest.ts profiles: the per-element array escaping of node-postgres); one native
 * JSON.stringify of the batch is the cheapest encoding there is, nested JSON columns included.
 * A null column is left out of its row's object (a missing key is NULL). It can run inside the
 * append's single CTE (events/ingest).
 */
export function insertEventsSql(rows: NewEventRow[]): SQL {
  const records = rows.map((r) => {
    const o: Record<string, unknown> = {
      o: r.organizationId,
      id: r.id,
      ra: r.recordedAt.toISOString(),
      li: r.leafIndex,
      lh: r.leafHash.toString('hex'),
      co: r.commitments,
      sa: r.salts,
    };
    const put = (k: string, v: unknown) => {
      if (v !== null && v !== undefined) o[k] = v;
    };
    put('ts', r.timestamp);
    put('ac', r.action);
    put('st', r.status);
    put('pi', r.principalId);
    put('pt', r.principalType);
    put('trt', r.targetResourceType);
    put('tri', r.targetResourceId);
    put('pa', r.patientId);
    put('od', r.outcomeDescription);
    put('dc', r.dataClassification);
    put('ci', r.correlationId);
    put('sc', r.sessionContext);
    put('rp', r.retentionPolicy);
    put('ev', r.eventVersion);
    put('de', r.details);
    put('ik', r.idempotencyKey);
    put('pk', r.producerKeyId);
    put('ps', r.producerSignature);
    return o;
  });
  return sql`
    INSERT INTO events (organization_id, id, recorded_at, leaf_index, leaf_hash, "timestamp", action, status,
      principal_id, principal_type, target_resource_type, target_resource_id, patient_id, outcome_description,
      data_classification, correlation_id, session_context, retention_policy, event_version, details,
      idempotency_key, commitments, salts, producer_key_id, producer_signature)
    SELECT o, id, ra, li, decode(lh, 'hex'), ts, ac, st, pi, pt, trt, tri, pa, od, dc, ci, sc, rp, ev, de, ik, co, sa, pk, ps
    FROM json_to_recordset(${JSON.stringify(records)}::json)
      AS t(o uuid, id uuid, ra timestamptz, li int8, lh text, ts timestamptz, ac text, st text, pi text, pt text, trt text, tri text,
           pa text, od text, dc text, ci text, sc jsonb, rp text, ev text, de jsonb, ik text, co jsonb, sa jsonb, pk text, ps text)`;
}

/** Idempotency keys already used in this organization, mapped to their first event. */
export async function findIdempotencyKeys(tx: Conn, org: string, keys: string[]) {
  if (keys.length === 0) return new Map<string, { eventId: string; leafIndex: number; recordedAt: Date }>();
  const rows = await tx
    .select()
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.organizationId, org), inArray(idempotencyKeys.key, keys)));
  return new Map(rows.map((r) => [r.key, { eventId: r.eventId, leafIndex: r.leafIndex, recordedAt: r.recordedAt }]));
}

/** The INSERT of idempotency keys of newly appended events (unnest, as {@link insertEventsSql}). */
export function insertIdempotencyKeysSql(
  org: string,
  rows: Array<{ key: string; eventId: string; recordedAt: Date; leafIndex: number }>,
): SQL {
  return sql`
    INSERT INTO idempotency_keys (organization_id, key, event_id, recorded_at, leaf_index)
    SELECT ${org}::uuid, k, e, r, l
    FROM unnest(${sql.param(rows.map((x) => x.key))}::text[], ${sql.param(rows.map((x) => x.eventId))}::uuid[],
                ${sql.param(rows.map((x) => x.recordedAt.toISOString()))}::timestamptz[], ${sql.param(rows.map((x) => x.leafIndex))}::int8[])
         AS t(k, e, r, l)`;
}

/** One event by id; `recordedAt` (from the UUIDv7) prunes partitions when known. */
export async function findById(db: Conn, org: string, id: string, recordedAt: Date | null): Promise<EventRow | null> {
  const where = [eq(events.organizationId, org), eq(events.id, id)];
  if (recordedAt) where.push(eq(events.recordedAt, recordedAt));
  const rows = await db.select().from(events).where(and(...where)).limit(1);
  return rows[0] ?? null;
}

/** One event by leaf index. */
export async function findByLeafIndex(db: Conn, org: string, leafIndex: number): Promise<EventRow | null> {
  const rows = await db
    .select()
    .from(events)
    .where(and(eq(events.organizationId, org), eq(events.leafIndex, leafIndex)))
    .limit(1);
  return rows[0] ?? null;
}

/** Events with leaf indexes in [start, end), in leaf order. */
export async function findLeafRange(db: Conn, org: string, start: number, end: number): Promise<EventRow[]> {
  return db
    .select()
    .from(events)
    .where(and(eq(events.organizationId, org), gte(events.leafIndex, start), lt(events.leafIndex, end)))
    .orderBy(asc(events.leafIndex));
}

/** Keyset position: (recordedAt, id) of the last row of a page. */
export interface Cursor {
  recordedAt: Date;
  id: string;
}

function filters(org: string, q: Pick<EventQuery, 'dateRange'> & Partial<EventQuery>): SQL[] {
  const where: SQL[] = [eq(events.organizationId, org)];
  if (q.dateRange?.from) where.push(gte(events.recordedAt, new Date(q.dateRange.from)));
  if (q.dateRange?.to) where.push(lt(events.recordedAt, new Date(q.dateRange.to)));
  if (q.principalIds) where.push(inArray(events.principalId, q.principalIds));
  if (q.actions) where.push(inArray(events.action, q.actions));
  if (q.statuses) where.push(inArray(events.status, q.statuses));
  if (q.dataClassifications) where.push(inArray(events.dataClassification, q.dataClassifications));
  if (q.targetResourceTypes) where.push(inArray(events.targetResourceType, q.targetResourceTypes));
  if (q.targetResourceIds) where.push(inArray(events.targetResourceId, q.targetResourceIds));
  if (q.patientIds) where.push(inArray(events.patientId, q.patientIds));
  if (q.correlationIds) where.push(inArray(events.correlationId, q.correlationIds));
  return where;
}

/** One page of filtered events, sorted by (recordedAt, id), after `cursor`. Fetches limit + 1. */
export async function queryPage(db: Conn, org: string, q: EventQuery, cursor: Cursor | null): Promise<EventRow[]> {
  const where = filters(org, q);
  if (cursor) {
    // Row-value comparison keeps the keyset scan on the (…, recorded_at, id) index order.
    where.push(
      q.sort === 'asc'
        ? sql`(${events.recordedAt}, ${events.id}) > (${cursor.recordedAt.toISOString()}::timestamptz, ${cursor.id}::uuid)`
        : sql`(${events.recordedAt}, ${events.id}) < (${cursor.recordedAt.toISOString()}::timestamptz, ${cursor.id}::uuid)`,
    );
  }
  const order = q.sort === 'asc' ? [asc(events.recordedAt), asc(events.id)] : [desc(events.recordedAt), desc(events.id)];
  return db
    .select()
    .from(events)
    .where(and(...where))
    .orderBy(...order)
    .limit(q.limit + 1);
}

/** Counts grouped by a column or by a day/hour bucket of recordedAt. */
export async function stats(db: Conn, org: string, input: EventStatsInput): Promise<Array<{ key: string; count: number }>> {
  const where = and(...filters(org, { dateRange: input.dateRange }));
  let key: SQL<string | null>;
  switch (input.groupBy) {
    case 'action':
      key = sql<string | null>`${events.action}`;
      break;
    case 'status':
      key = sql<string | null>`${events.status}`;
      break;
    case 'dataClassification':
      key = sql<string | null>`${events.dataClassification}`;
      break;
    case 'day':
      key = sql<string>`to_char(date_trunc('day', ${events.recordedAt} AT TIME ZONE 'UTC'), 'YYYY-MM-DD')`;
      break;
    case 'hour':
      key = sql<string>`to_char(date_trunc('hour', ${events.recordedAt} AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24:00"Z"')`;
      break;
  }
  const rows = await db
    .select({ key: key.as('k'), count: count() })
    .from(events)
    .where(where)
    .groupBy(sql`k`)
    .orderBy(sql`k`);
  return rows.map((r) => ({ key: r.key ?? '(erased)', count: Number(r.count) }));
}
