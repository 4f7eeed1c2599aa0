/**
 * Queries of behaviour analytics (docs/analytics.md). The analytics tables exist only where the
 * pgvector extension does (migration 0016), so they are not part of the Drizzle schema: every
 * query here is SQL through Drizzle's `sql` template, the same on node-postgres and PGlite.
 * Vectors travel as pgvector's text form (`[…]`), cast in SQL; numbers as float8 or text.
 */
import { sql, type SQL } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import type { EmbeddingSource } from './embedding';

type Runner = Db | Tx;

/** A uuid[] built from one JSON parameter (arrays are bound alike by node-postgres and PGlite this way). */
function uuidArray(ids: string[]): SQL {
  return sql`ARRAY(SELECT json_array_elements_text(${JSON.stringify(ids)}::json)::uuid)`;
}

async function rows<T>(db: Runner, query: SQL): Promise<T[]> {
  // node-postgres answers a QueryResult, PGlite a Results: both carry `rows`.
  const result: unknown = await db.execute(query);
  return (result as { rows: T[] }).rows;
}

/** Whether the `vector` extension and the analytics tables are present. */
export async function analyticsInstalled(db: Runner): Promise<boolean> {
  const [r] = await rows<{ ok: boolean }>(
    db,
    sql`SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'vector') AND to_regclass('event_embeddings') IS NOT NULL AND to_regclass('analytics_progress') IS NOT NULL AS ok`,
  );
  return r?.ok === true;
}

/** An event as the embedding reads it, with its place in the log. */
export interface EmbeddableEvent extends EmbeddingSource {
  id: string;
  leafIndex: number;
}

interface EventRow {
  id: string;
  recorded_at: Date | string;
  ts: string | null;
  action: string | null;
  status: string | null;
  principal_type: string | null;
  target_resource_type: string | null;
  has_patient: boolean;
  data_classification: string | null;
  ip: string | null;
  ua: string | null;
  leaf_index: string | number;
}

// The columns the embedding reads: never the patient id or the principal id themselves.
const EVENT_COLUMNS = sql`e.id, e.recorded_at,
  to_char(e."timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ts,
  e.action, e.status, e.principal_type, e.target_resource_type, e.patient_id IS NOT NULL AS has_patient,
  e.data_classification, e.session_context->>'ipAddress' AS ip, e.session_context->>'userAgent' AS ua, e.leaf_index::text AS leaf_index`;

function toEmbeddable(r: EventRow): EmbeddableEvent {
  return {
    id: r.id,
    leafIndex: Number(r.leaf_index),
    recordedAt: r.recorded_at instanceof Date ? r.recorded_at : new Date(r.recorded_at),
    timestamp: r.ts,
    action: r.action,
    status: r.status,
    principalType: r.principal_type,
    targetResourceType: r.target_resource_type,
    hasPatient: r.has_patient,
    dataClassification: r.data_classification,
    ipAddress: r.ip,
    userAgent: r.ua,
  };
}

/** Organizations whose log has leaves the worker has not embedded yet, with how far each is. */
export async function organizationsBehind(db: Db): Promise<Array<{ organizationId: string; next: number; size: number }>> {
  const found = await rows<{ organization_id: string; next: string; size: string }>(
    db,
    sql`SELECT h.organization_id, coalesce(p.next_leaf_index, 0)::text AS next, h.size::text AS size
        FROM ledger_heads h LEFT JOIN analytics_progress p ON p.organization_id = h.organization_id
        WHERE h.size > coalesce(p.next_leaf_index, 0)
        ORDER BY h.organization_id`,
  );
  return found.map((r) => ({ organizationId: r.organization_id, next: Number(r.next), size: Number(r.size) }));
}

/**
 * Locks the organization's cursor for this transaction and returns it, or null when another
 * worker holds it (SKIP LOCKED: two workers never embed the same batch).
 */
export async function lockProgress(tx: Tx, org: string): Promise<number | null> {
  await tx.execute(sql`INSERT INTO analytics_progress (organization_id) VALUES (${org}) ON CONFLICT (organization_id) DO NOTHING`);
  const [r] = await rows<{ next: string }>(
    tx,
    sql`SELECT next_leaf_index::text AS next FROM analytics_progress WHERE organization_id = ${org} FOR UPDATE SKIP LOCKED`,
  );
  return r ? Number(r.next) : null;
}

/** Moves the organization's cursor to `next`. */
export async function saveProgress(tx: Tx, org: string, next: number): Promise<void> {
  await tx.execute(sql`UPDATE analytics_progress SET next_leaf_index = ${next}, updated_at = now() WHERE organization_id = ${org}`);
}

/** Up to `limit` events from leaf `from` on, in log order. */
export async function eventsFrom(db: Runner, org: string, from: number, limit: number): Promise<EmbeddableEvent[]> {
  const found = await rows<EventRow>(
    db,
    sql`SELECT ${EVENT_COLUMNS} FROM events e WHERE e.organization_id = ${org} AND e.leaf_index >= ${from} ORDER BY e.leaf_index LIMIT ${limit}`,
  );
  return found.map(toEmbeddable);
}

/** The events `ids` of `org` (those that exist). */
export async function eventsById(db: Runner, org: string, ids: string[]): Promise<EmbeddableEvent[]> {
  if (ids.length === 0) return [];
  const found = await rows<EventRow>(
    db,
    sql`SELECT ${EVENT_COLUMNS} FROM events e WHERE e.organization_id = ${org} AND e.id = ANY(${uuidArray(ids)})`,
  );
  return found.map(toEmbeddable);
}

/** A computed embedding, ready to store. */
export interface EmbeddingRow {
  eventId: string;
  recordedAt: Date;
  leafIndex: number;
  /** pgvector text form. */
  embedding: string;
}

/** Stores embeddings in one statement (a JSON recordset parameter); an existing one is kept. */
export async function insertEmbeddings(db: Runner, org: string, version: number, list: EmbeddingRow[]): Promise<void> {
  if (list.length === 0) return;
  const json = JSON.stringify(list.map((r) => ({ event_id: r.eventId, recorded_at: r.recordedAt.toISOString(), leaf_index: r.leafIndex, embedding: r.embedding })));
  await db.execute(
    sql`INSERT INTO event_embeddings (organization_id, event_id, recorded_at, leaf_index, version, embedding)
        SELECT ${org}, x.event_id, x.recorded_at, x.leaf_index, ${version}, x.embedding::vector
        FROM json_to_recordset(${json}::json) AS x(event_id uuid, recorded_at timestamptz, leaf_index bigint, embedding text)
        ON CONFLICT (organization_id, event_id) DO NOTHING`,
  );
}

/** Rewrites the stored embeddings of `list` (events without one are left alone); returns how many. */
export async function updateEmbeddings(db: Runner, org: string, version: number, list: EmbeddingRow[]): Promise<number> {
  if (list.length === 0) return 0;
  const json = JSON.stringify(list.map((r) => ({ event_id: r.eventId, embedding: r.embedding })));
  const found = await rows<{ event_id: string }>(
    db,
    sql`UPDATE event_embeddings m SET embedding = x.embedding::vector, version = ${version}
        FROM json_to_recordset(${json}::json) AS x(event_id uuid, embedding text)
        WHERE m.organization_id = ${org} AND m.event_id = x.event_id
        RETURNING m.event_id`,
  );
  return found.length;
}

/** Deletes the embeddings of `ids`; returns how many existed. */
export async function deleteEmbeddingRows(db: Runner, org: string, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const found = await rows<{ event_id: string }>(
    db,
    sql`DELETE FROM event_embeddings WHERE organization_id = ${org} AND event_id = ANY(${uuidArray(ids)}) RETURNING event_id`,
  );
  return found.length;
}

/** The stored embedding of an event (text form), or null. */
export async function storedEmbedding(db: Runner, org: string, id: string): Promise<string | null> {
  const [r] = await rows<{ v: string }>(db, sql`SELECT embedding::text AS v FROM event_embeddings WHERE organization_id = ${org} AND event_id = ${id}`);
  return r?.v ?? null;
}

/** What a neighbour or an anomaly reports about its event (no patient ids, no free text). */
export interface EventSummary {
  eventId: string;
  recordedAt: string;
  action: string | null;
  status: string | null;
  principalId: string | null;
  targetResourceType: string | null;
}

interface SummaryRow {
  id: string;
  recorded_at: Date | string;
  action: string | null;
  status: string | null;
  principal_id: string | null;
  target_resource_type: string | null;
}

function summaryOf(r: SummaryRow): EventSummary {
  return {
    eventId: r.id,
    recordedAt: (r.recorded_at instanceof Date ? r.recorded_at : new Date(r.recorded_at)).toISOString(),
    action: r.action,
    status: r.status,
    principalId: r.principal_id,
    targetResourceType: r.target_resource_type,
  };
}

const JOIN_EVENTS = sql`JOIN events e ON e.organization_id = m.organization_id AND e.recorded_at = m.recorded_at AND e.id = m.event_id`;

/**
 * The `k` events of `org` nearest to `vector` by cosine distance, nearest first, without
 * `excludeId`. The HNSW index answers it; pgvector's iterative index scan (0.8) keeps reading the
 * graph until `k` rows of this organization pass the filter, so other tenants' vectors never
 * shorten the answer. `exact` forces a sequential scan (the benchmark's baseline).
 */
export async function nearest(
  db: Db,
  org: string,
  vector: string,
  k: number,
  options: { excludeId?: string; principalId?: string; beforeLeaf?: number; exact?: boolean; efSearch?: number } = {},
): Promise<Array<EventSummary & { distance: number }>> {
  return db.transaction(async (tx) => {
    if (options.exact) {
      await tx.execute(sql`SET LOCAL enable_indexscan = off`);
      await tx.execute(sql`SET LOCAL enable_bitmapscan = off`);
    } else {
      await tx.execute(sql`SET LOCAL hnsw.iterative_scan = strict_order`);
      await tx.execute(sql.raw(`SET LOCAL hnsw.ef_search = ${Math.max(40, Math.min(1000, options.efSearch ?? 2 * k))}`));
    }
    const filters = [sql`m.organization_id = ${org}`];
    if (options.excludeId) filters.push(sql`m.event_id <> ${options.excludeId}`);
    if (options.beforeLeaf !== undefined) filters.push(sql`m.leaf_index < ${options.beforeLeaf}`);
    if (options.principalId !== undefined) filters.push(sql`e.principal_id = ${options.principalId}`);
    const found = await rows<SummaryRow & { distance: number }>(
      tx,
      sql`WITH near AS MATERIALIZED (
            SELECT m.organization_id, m.event_id, m.recorded_at, m.embedding <=> ${vector}::vector AS distance
            FROM event_embeddings m ${options.principalId !== undefined ? JOIN_EVENTS : sql``}
            WHERE ${sql.join(filters, sql` AND `)}
            ORDER BY m.embedding <=> ${vector}::vector
            LIMIT ${k})
          SELECT e.id, e.recorded_at, e.action, e.status, e.principal_id, e.target_resource_type, n.distance::float8 AS distance
          FROM near n JOIN events e ON e.organization_id = n.organization_id AND e.recorded_at = n.recorded_at AND e.id = n.event_id
          ORDER BY n.distance, e.id`,
    );
    return found.map((r) => ({ ...summaryOf(r), distance: Number(r.distance) }));
  });
}

/** A principal's embeddings in a window, summarised. */
export interface BaselineRow {
  events: number;
  centroid: string | null;
  meanDistance: number | null;
  stddevDistance: number | null;
  maxDistance: number | null;
}

/** Centroid (mean vector) and spread (distances of the principal's events from it) over [from, to). */
export async function principalBaseline(db: Db, org: string, principalId: string, from: Date, to: Date): Promise<BaselineRow> {
  const [r] = await rows<{ n: string; centroid: string | null; mean: number | null; sd: number | null; max: number | null }>(
    db,
    sql`WITH h AS MATERIALIZED (
          SELECT m.embedding FROM event_embeddings m ${JOIN_EVENTS}
          WHERE m.organization_id = ${org} AND m.recorded_at >= ${from.toISOString()}::timestamptz AND m.recorded_at < ${to.toISOString()}::timestamptz
            AND e.principal_id = ${principalId}),
        c AS (SELECT avg(embedding) AS centroid, count(*) AS n FROM h)
        SELECT c.n::text AS n, c.centroid::text AS centroid,
          (SELECT avg(h.embedding <=> c.centroid)::float8 FROM h) AS mean,
          (SELECT stddev_pop(h.embedding <=> c.centroid)::float8 FROM h) AS sd,
          (SELECT max(h.embedding <=> c.centroid)::float8 FROM h) AS max
        FROM c`,
  );
  return {
    events: Number(r?.n ?? 0),
    centroid: r?.centroid ?? null,
    meanDistance: r?.mean ?? null,
    stddevDistance: r?.sd ?? null,
    maxDistance: r?.max ?? null,
  };
}

/** Which events to score and which history is their baseline. */
export type ScoringScope =
  /** Events recorded in [from, to) against each principal's events in [baselineFrom, from). */
  | { kind: 'window'; from: Date; to: Date; baselineFrom: Date }
  /** Leaves [fromLeaf, toLeaf) against each principal's earlier leaves recorded since baselineFrom. */
  | { kind: 'leaves'; fromLeaf: number; toLeaf: number; baselineFrom: Date };

/** A scored event. */
export interface ScoredRow extends EventSummary {
  distance: number;
  score: number;
  baselineEvents: number;
  meanDistance: number;
  stddevDistance: number;
  /** pgvector text of the event's embedding (for the nearest normal events). */
  embedding: string;
}

/**
 * Scores events against their principal's baseline: score = (distance − mean) / max(stddev,
 * `spreadFloor`), where distance is the cosine distance of the event from the centroid of the
 * principal's baseline events and mean/stddev are those events' own distances from it. Principals
 * with fewer than `minBaselineEvents` baseline events are not scored. Returns those above
 * `threshold`, highest first.
 */
export async function scoreEvents(
  db: Db,
  org: string,
  scope: ScoringScope,
  options: { threshold: number; limit: number; minBaselineEvents: number; spreadFloor: number },
): Promise<ScoredRow[]> {
  const candidates =
    scope.kind === 'window'
      ? sql`m.recorded_at >= ${scope.from.toISOString()}::timestamptz AND m.recorded_at < ${scope.to.toISOString()}::timestamptz`
      : sql`m.leaf_index >= ${scope.fromLeaf} AND m.leaf_index < ${scope.toLeaf} AND m.recorded_at >= ${scope.baselineFrom.toISOString()}::timestamptz`;
  const history =
    scope.kind === 'window'
      ? sql`m.recorded_at >= ${scope.baselineFrom.toISOString()}::timestamptz AND m.recorded_at < ${scope.from.toISOString()}::timestamptz`
      : sql`m.leaf_index < ${scope.fromLeaf} AND m.recorded_at >= ${scope.baselineFrom.toISOString()}::timestamptz`;
  const found = await rows<SummaryRow & { distance: number; score: number; n: string; mean: number; sd: number; v: string }>(
    db,
    sql`WITH cand AS MATERIALIZED (
          SELECT e.id, e.recorded_at, e.action, e.status, e.principal_id, e.target_resource_type, m.embedding
          FROM event_embeddings m ${JOIN_EVENTS}
          WHERE m.organization_id = ${org} AND ${candidates} AND e.principal_id IS NOT NULL),
        hist AS MATERIALIZED (
          SELECT e.principal_id, m.embedding
          FROM event_embeddings m ${JOIN_EVENTS}
          WHERE m.organization_id = ${org} AND ${history} AND e.principal_id IN (SELECT DISTINCT principal_id FROM cand)),
        centroid AS (
          SELECT principal_id, avg(embedding) AS c, count(*) AS n FROM hist GROUP BY principal_id HAVING count(*) >= ${options.minBaselineEvents}),
        spread AS (
          SELECT h.principal_id, avg(h.embedding <=> c.c) AS mean, coalesce(stddev_pop(h.embedding <=> c.c), 0) AS sd
          FROM hist h JOIN centroid c USING (principal_id) GROUP BY h.principal_id),
        scored AS (
          SELECT cand.*, (cand.embedding <=> c.c) AS distance, c.n, s.mean, s.sd,
            ((cand.embedding <=> c.c) - s.mean) / greatest(s.sd, ${options.spreadFloor}::float8) AS score
          FROM cand JOIN centroid c USING (principal_id) JOIN spread s USING (principal_id))
        SELECT id, recorded_at, action, status, principal_id, target_resource_type, distance::float8 AS distance, score::float8 AS score,
          n::text AS n, mean::float8 AS mean, sd::float8 AS sd, embedding::text AS v
        FROM scored WHERE score > ${options.threshold}::float8
        ORDER BY score DESC, id
        LIMIT ${options.limit}`,
  );
  return found.map((r) => ({
    ...summaryOf(r),
    distance: Number(r.distance),
    score: Number(r.score),
    baselineEvents: Number(r.n),
    meanDistance: Number(r.mean),
    stddevDistance: Number(r.sd),
    embedding: r.v,
  }));
}

/** The organization's own anomaly threshold, or null. */
export async function organizationThreshold(db: Db, org: string): Promise<number | null> {
  const [r] = await rows<{ t: number }>(db, sql`SELECT anomaly_threshold::float8 AS t FROM analytics_settings WHERE organization_id = ${org}`);
  return r ? Number(r.t) : null;
}

/** Sets (or with null, clears) the organization's anomaly threshold. */
export async function setOrganizationThreshold(db: Db, org: string, threshold: number | null): Promise<void> {
  if (threshold === null) {
    await db.execute(sql`DELETE FROM analytics_settings WHERE organization_id = ${org}`);
    return;
  }
  await db.execute(
    sql`INSERT INTO analytics_settings (organization_id, anomaly_threshold) VALUES (${org}, ${threshold})
        ON CONFLICT (organization_id) DO UPDATE SET anomaly_threshold = EXCLUDED.anomaly_threshold, updated_at = now()`,
  );
}
