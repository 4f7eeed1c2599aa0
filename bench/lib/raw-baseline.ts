/**
 * The raw baseline: the same rows the server would store for the same events, inserted straight
 * through node-postgres as multi-row INSERTs into a plain copy of the events table
 * (`CREATE TABLE bench_raw (LIKE events INCLUDING ALL)`: same columns, primary key and the seven
 * filter indexes, but not partitioned and without the ledger work). It answers "how fast can this
 * PostgreSQL absorb these rows at all", against which the HTTP path is compared.
 *
 * Row values are computed before timing exactly as the server computes them (the server's own
 * zod schema, normalization and per-field salted commitments, one recorded_at per batch), so the
 * JSONB and bytea columns have the real sizes. The timed part is only building the parameter
 * list, sending the INSERT and waiting for its autocommit.
 */
import { DEFAULT_EVENT_LIMITS } from '../../server/src/events/limits';
import { eventInputSchemaFor } from '../../server/src/events/schema';
import { prepareEvent, sealEvent } from '../../server/src/events/commit-form';
import { newSalt } from '../../server/src/ledger';
import { uuidv7 } from '../../server/src/util/uuid';
import pg from 'pg';
import { runBounded } from './concurrency';
import { makeEvent } from './workload';
import { nowMs, rate, summarize, type LatencySummary } from './stats';

const COLUMNS = [
  'organization_id',
  'id',
  'recorded_at',
  'leaf_index',
  'leaf_hash',
  'timestamp',
  'action',
  'status',
  'principal_id',
  'principal_type',
  'target_resource_type',
  'target_resource_id',
  'patient_id',
  'outcome_description',
  'data_classification',
  'correlation_id',
  'session_context',
  'retention_policy',
  'event_version',
  'details',
  'idempotency_key',
  'commitments',
  'salts',
] as const;

/** What the baseline measured. */
export interface RawBaselineResult {
  rows: number;
  batchSize: number;
  connections: number;
  elapsedMs: number;
  rowsPerSecond: number;
  /** Latency of one multi-row INSERT (ms). */
  batchLatency: LatencySummary;
  /** Time spent computing row values before the timed part (ms). */
  prepareMs: number;
}

function insertSql(rows: number): string {
  const width = COLUMNS.length;
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) {
    tuples.push(`(${COLUMNS.map((_, c) => `$${r * width + c + 1}`).join(',')})`);
  }
  return `INSERT INTO bench_raw (${COLUMNS.map((c) => `"${c}"`).join(',')}) VALUES ${tuples.join(',')}`;
}

const eventInputSchema = eventInputSchemaFor(DEFAULT_EVENT_LIMITS);

function rowParams(org: string, seed: number, start: number, count: number): unknown[] {
  const recordedAt = new Date();
  const params: unknown[] = [];
  for (let i = start; i < start + count; i++) {
    const input = eventInputSchema.parse(makeEvent(seed, i));
    const id = uuidv7(recordedAt.getTime());
    const c = sealEvent(org, id, recordedAt, prepareEvent(input, newSalt), newSalt);
    const values = c.values;
    const v = (k: keyof typeof values) => (values[k] === undefined ? null : values[k]);
    const json = (x: unknown) => (x === undefined || x === null ? null : JSON.stringify(x));
    params.push(
      org,
      id,
      recordedAt,
      i,
      c.leafHash,
      new Date(values.timestamp as string),
      v('action'),
      v('status'),
      v('principalId'),
      v('principalType'),
      v('targetResourceType'),
      v('targetResourceId'),
      v('patientId'),
      v('outcomeDescription'),
      v('dataClassification'),
      v('correlationId'),
      json(values.sessionContext),
      v('retentionPolicy'),
      v('eventVersion'),
      json(values.details),
      v('idempotencyKey'),
      JSON.stringify(c.commitments),
      JSON.stringify(c.salts),
    );
  }
  return params;
}

/**
 * Creates `bench_raw` in the database at `url`, inserts events [0, rows) of the workload in
 * batches of `batchSize` over `connections` concurrent connections, and drops the table again.
 */
export async function runRawBaseline(options: {
  url: string;
  organizationId: string;
  seed: number;
  rows: number;
  batchSize: number;
  connections: number;
}): Promise<RawBaselineResult> {
  const { url, organizationId, seed, rows, batchSize, connections } = options;
  const pool = new pg.Pool({ connectionString: url, max: connections, application_name: 'audit-bench-raw' });
  try {
    await pool.query('DROP TABLE IF EXISTS bench_raw');
    await pool.query('CREATE TABLE bench_raw (LIKE events INCLUDING ALL)');
    const batches = Math.ceil(rows / batchSize);
    const prepStart = nowMs();
    const prepared: unknown[][] = [];
    for (let b = 0; b < batches; b++) {
      const start = b * batchSize;
      prepared.push(rowParams(organizationId, seed, start, Math.min(batchSize, rows - start)));
    }
    const prepareMs = nowMs() - prepStart;
    const sqlBySize = new Map<number, string>();
    const latencies: number[] = [];
    // Open every connection before the clock starts, as the HTTP client's keep-alive sockets are.
    const warm = await Promise.all(Array.from({ length: connections }, () => pool.connect()));
    warm.forEach((c) => c.release());
    const started = nowMs();
    await runBounded(batches, connections, async (b) => {
      const params = prepared[b]!;
      const n = params.length / COLUMNS.length;
      let text = sqlBySize.get(n);
      if (text === undefined) sqlBySize.set(n, (text = insertSql(n)));
      const t0 = nowMs();
      await pool.query(text, params);
      latencies.push(nowMs() - t0);
    });
    const elapsedMs = nowMs() - started;
    await pool.query('DROP TABLE bench_raw');
    return {
      rows,
      batchSize,
      connections,
      elapsedMs,
      rowsPerSecond: rate(rows, elapsedMs),
      batchLatency: summarize(latencies),
      prepareMs,
    };
  } finally {
    await pool.end();
  }
}
