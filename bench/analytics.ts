/**
 * `npm run bench:analytics`: behaviour analytics (docs/analytics.md) on the embedded default
 * (PGlite 0.4 with pgvector 0.8.1), in one process, so the CPU time read from /proc/<pid>/stat
 * (utime + stime) is the database's and the server's together.
 *
 *  1. Embedding throughput in the worker: `--events` events (bench/lib/workload.ts) appended
 *     through the ingest service, then the worker's catch-up task (`AnalyticsService.catchUp`:
 *     read a batch, embed, store, move the cursor, score the batch with the anomaly detector) until
 *     nothing is left: events per second of wall clock and CPU per event. The pure embedding
 *     function alone on the same events, for comparison.
 *  2. k-NN at `--vectors` vectors (default 1,000,000): embeddings of workload events stored
 *     directly in `event_embeddings` (one organization), the HNSW index built after loading (its
 *     build time printed), then `--queries` query vectors (events not in the table), each asked
 *     with the HNSW index (the production query: iterative scan, ef_search 40) and with an exact
 *     scan of the same table (index scans off) in turn: p50/p95/p99 of each, CPU per query, and
 *     recall@10 of the index against the exact answer. The vectors come from discrete features, so
 *     many share a distance: recall counts an index result as correct when its distance is within
 *     1e-6 of the exact 10th distance or below (tie-aware), not by event id.
 *
 * With `--database-url`, both parts run on that PostgreSQL instead (pgvector installed; an empty
 * database, migrated here), over one connection: the CPU time is then ours plus that backend's.
 *
 * Figures are printed, never asserted (docs/architecture.md §9). Every loop is bounded by a count.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import { embedEvent, toVectorLiteral, type EmbeddingSource } from '../server/src/analytics/embedding';
import { loadConfig } from '../server/src/config';
import { openDatabase, type Database } from '../server/src/db/client';
import { migrate } from '../server/src/db/migrate';
import { DEFAULT_EVENT_LIMITS } from '../server/src/events/limits';
import { eventInputSchemaFor, parseBulkItem } from '../server/src/events/schema';
import { generateSignerKey } from '../server/src/ledger';
import { createLogger } from '../server/src/observability/logger';
import { startRuntime } from '../server/src/runtime';
import { formatTable, ms, num, section } from './lib/report';
import { sampleProcess } from './lib/server-process';
import { nowMs, summarize } from './lib/stats';
import { makeEvent, type BenchEvent } from './lib/workload';

const HELP = `Usage: npm run bench:analytics -- [options]

  --events N     events appended and embedded by the worker's catch-up (default 20000; --quick 5000)
  --vectors N    vectors in the k-NN table (default 1000000; --quick 100000)
  --queries N    k-NN queries, each asked with the index and with an exact scan (default 100; --quick 50)
  --quick        small run
  --skip-embed   only the k-NN part
  --skip-knn     only the embedding part
  --seed N       workload seed (default 1)
  --database-url URL  run on this PostgreSQL (with pgvector) instead of PGlite; its
                 tables are created by the server's migrations, so use an empty database`;

interface Options {
  events: number;
  vectors: number;
  queries: number;
  seed: number;
  embed: boolean;
  knn: boolean;
  databaseUrl: string | undefined;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      events: { type: 'string' },
      vectors: { type: 'string' },
      queries: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'skip-embed': { type: 'boolean', default: false },
      'skip-knn': { type: 'boolean', default: false },
      seed: { type: 'string' },
      'database-url': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const quick = values.quick === true;
  return {
    events: Number(values.events ?? (quick ? 5_000 : 20_000)),
    vectors: Number(values.vectors ?? (quick ? 100_000 : 1_000_000)),
    queries: Number(values.queries ?? (quick ? 50 : 100)),
    seed: Number(values.seed ?? 1),
    embed: values['skip-embed'] !== true,
    knn: values['skip-knn'] !== true,
    databaseUrl: values['database-url'],
  };
}

/** What the embedding reads of a workload event (as the repository would select it). */
function sourceOf(e: BenchEvent, recordedAt: Date): EmbeddingSource {
  return {
    timestamp: e.timestamp,
    recordedAt,
    action: e.action,
    status: e.status,
    principalType: e.principalType,
    targetResourceType: e.targetResourceType,
    hasPatient: e.patientId !== undefined,
    dataClassification: e.dataClassification,
    ipAddress: e.sessionContext.ipAddress,
    userAgent: e.sessionContext.userAgent,
  };
}

const cpu = () => sampleProcess(process.pid).cpuSeconds;

/** The PostgreSQL backend process of the (single) pooled connection. */
async function backendPid(database: Database): Promise<number> {
  const r: unknown = await database.db.execute(sql`SELECT pg_backend_pid() AS pid`);
  return Number((r as { rows: { pid: number }[] }).rows[0]!.pid);
}

async function benchEmbedding(o: Options): Promise<void> {
  const where = o.databaseUrl ? 'PostgreSQL; CPU is this process only, not its backends' : 'PGlite, in process';
  section(`worker embedding throughput: ${num(o.events)} events (${where})`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-bench-analytics-'));
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    NODE_ENV: 'test',
    ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl } : { AUDIT_DATA_DIR: dir }),
    AUDIT_SIGNING_KEY: generateSignerKey('bench.audit').signerKey,
    AUDIT_BOOTSTRAP_API_KEY: 'sak_bench_admin_key_0123456789abcdefghijklmnop',
    AUDIT_SELF_AUDIT_INTERVAL_MS: '0',
    ANALYTICS_INTERVAL_MS: '0',
    ANALYTICS_MAX_BATCHES_PER_RUN: '1',
    RATE_LIMIT_PER_MINUTE: '0',
  });
  const runtime = await startRuntime(config, createLogger('silent'));
  try {
    const org = runtime.bootstrap!.organizationId;
    const schema = eventInputSchemaFor(DEFAULT_EVENT_LIMITS);
    let t = nowMs();
    for (let i = 0; i < o.events; i += 1000) {
      const items = [];
      for (let j = i; j < Math.min(o.events, i + 1000); j++) items.push(parseBulkItem(schema, makeEvent(o.seed, j)));
      await runtime.services.events.bulkCreate(org, items, { proofs: false });
    }
    console.log(`appended ${num(o.events)} events in ${((nowMs() - t) / 1000).toFixed(1)} s`);

    const analytics = runtime.services.analytics;
    const cpu0 = cpu();
    t = nowMs();
    let embedded = 0;
    let runs = 0;
    for (let guard = 0; guard < 1_000_000; guard++) {
      const r = await analytics.catchUp(null);
      embedded += r.embedded;
      runs++;
      if (!r.more) break;
    }
    const wall = (nowMs() - t) / 1000;
    const cpuUsed = cpu() - cpu0;

    // The pure function alone, on the same events.
    const sources = Array.from({ length: o.events }, (_, i) => sourceOf(makeEvent(o.seed, i), new Date()));
    const cpu1 = cpu();
    const t1 = nowMs();
    for (const s of sources) toVectorLiteral(embedEvent(s));
    const pureWall = (nowMs() - t1) / 1000;
    const pureCpu = cpu() - cpu1;

    console.log(
      formatTable(
        ['what', 'events', 'wall s', 'events/s', 'CPU s', 'CPU µs/event'],
        [
          ['catch-up (read, embed, store, cursor, detector)', num(embedded), wall.toFixed(2), num(embedded / wall), cpuUsed.toFixed(2), ((cpuUsed / embedded) * 1e6).toFixed(0)],
          ['embedEvent + text form only', num(o.events), pureWall.toFixed(3), num(o.events / pureWall), pureCpu.toFixed(2), ((pureCpu / o.events) * 1e6).toFixed(1)],
        ],
      ),
    );
    console.log(`batch size ${config.ANALYTICS_BATCH_SIZE}, ${runs} catch-up runs of one batch each`);
  } finally {
    await runtime.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const ORG = '01900000-0000-7000-8000-0000000000a1';

async function load(database: Database, o: Options): Promise<void> {
  const recordedAt = new Date();
  const CHUNK = 5000;
  const t = nowMs();
  for (let i = 0; i < o.vectors; i += CHUNK) {
    const rows = [];
    for (let j = i; j < Math.min(o.vectors, i + CHUNK); j++) {
      const id = `01900000-0000-7000-8000-${j.toString(16).padStart(12, '0')}`;
      rows.push({ event_id: id, recorded_at: recordedAt.toISOString(), leaf_index: j, embedding: toVectorLiteral(embedEvent(sourceOf(makeEvent(o.seed, j), recordedAt))) });
    }
    await database.db.execute(
      sql`INSERT INTO event_embeddings (organization_id, event_id, recorded_at, leaf_index, version, embedding)
          SELECT ${ORG}, x.event_id, x.recorded_at, x.leaf_index, 1, x.embedding::vector
          FROM json_to_recordset(${JSON.stringify(rows)}::json) AS x(event_id uuid, recorded_at timestamptz, leaf_index bigint, embedding text)`,
    );
    if ((i / CHUNK) % 20 === 19) process.stdout.write(`  ${num(i + CHUNK)} vectors, ${((nowMs() - t) / 1000).toFixed(0)} s\r`);
  }
  console.log(`loaded ${num(o.vectors)} vectors in ${((nowMs() - t) / 1000).toFixed(1)} s`);
}

interface Hit {
  distance: number;
}

async function knn(database: Database, vector: string, exact: boolean): Promise<Hit[]> {
  return database.db.transaction(async (tx) => {
    if (exact) {
      await tx.execute(sql`SET LOCAL enable_indexscan = off`);
      await tx.execute(sql`SET LOCAL enable_bitmapscan = off`);
    } else {
      await tx.execute(sql`SET LOCAL hnsw.iterative_scan = strict_order`);
      await tx.execute(sql`SET LOCAL hnsw.ef_search = 40`);
    }
    const r: unknown = await tx.execute(
      sql`SELECT (embedding <=> ${vector}::vector)::float8 AS distance FROM event_embeddings
          WHERE organization_id = ${ORG} ORDER BY embedding <=> ${vector}::vector LIMIT 10`,
    );
    return (r as { rows: Hit[] }).rows.map((h) => ({ distance: Number(h.distance) }));
  });
}

async function benchKnn(o: Options): Promise<void> {
  const where = o.databaseUrl ? 'PostgreSQL, one connection' : 'PGlite, in process';
  section(`k-NN at ${num(o.vectors)} vectors: HNSW against an exact scan, ${o.queries} queries, k = 10 (${where})`);
  // One connection on PostgreSQL, so its backend's CPU time can be read from /proc beside ours.
  const database = await openDatabase(o.databaseUrl ? { url: o.databaseUrl, poolMax: 1 } : {});
  try {
    await migrate(database);
    const backend = o.databaseUrl ? await backendPid(database) : null;
    const cpu = () => sampleProcess(process.pid).cpuSeconds + (backend === null ? 0 : sampleProcess(backend).cpuSeconds);
    await database.db.execute(sql`DROP INDEX event_embeddings_hnsw_idx`);
    await load(database, o);
    const workMem = o.databaseUrl ? '2GB' : '512MB';
    await database.db.execute(sql.raw(`SET maintenance_work_mem = '${workMem}'`));
    const c0 = cpu();
    const t = nowMs();
    await database.db.execute(sql`CREATE INDEX event_embeddings_hnsw_idx ON event_embeddings USING hnsw (embedding vector_cosine_ops)`);
    // PostgreSQL may build with parallel workers, whose CPU time is not the backend's.
    const builders = o.databaseUrl ? ', plus any parallel build workers' : '';
    console.log(`HNSW index built in ${((nowMs() - t) / 1000).toFixed(1)} s wall, ${(cpu() - c0).toFixed(1)} s CPU${builders} (m 16, ef_construction 64, maintenance_work_mem ${workMem})`);
    // Statistics for the loaded table: without them PGlite's planner estimates it as nearly empty
    // and scans it instead of using the HNSW index (autovacuum, which would analyze, does not run in PGlite).
    await database.db.execute(sql`ANALYZE event_embeddings`);
    const plan: unknown = await database.db.execute(sql`EXPLAIN SELECT 1 FROM event_embeddings WHERE organization_id = ${ORG} ORDER BY embedding <=> ${toVectorLiteral(embedEvent(sourceOf(makeEvent(o.seed + 1, 0), new Date())))}::vector LIMIT 10`);
    const usesIndex = JSON.stringify(plan).includes('event_embeddings_hnsw_idx');
    console.log(`planner uses the HNSW index for the production query: ${usesIndex ? 'yes' : 'NO'}`);

    const lat = { hnsw: [] as number[], exact: [] as number[] };
    const cpuUsed = { hnsw: 0, exact: 0 };
    let correct = 0;
    for (let q = 0; q < o.queries; q++) {
      // Query vectors: workload events of another seed (not in the table).
      const v = toVectorLiteral(embedEvent(sourceOf(makeEvent(o.seed + 1, q), new Date())));
      let c = cpu();
      let s = nowMs();
      const approx = await knn(database, v, false);
      lat.hnsw.push(nowMs() - s);
      cpuUsed.hnsw += cpu() - c;
      c = cpu();
      s = nowMs();
      const truth = await knn(database, v, true);
      lat.exact.push(nowMs() - s);
      cpuUsed.exact += cpu() - c;
      const tenth = truth[truth.length - 1]?.distance ?? Infinity;
      correct += Math.min(10, approx.filter((h) => h.distance <= tenth + 1e-6).length);
    }
    const h = summarize(lat.hnsw);
    const e = summarize(lat.exact);
    console.log(
      formatTable(
        ['scan', 'p50', 'p95', 'p99', 'max', 'CPU ms/query'],
        [
          ['HNSW (ef_search 40, iterative)', ms(h.p50), ms(h.p95), ms(h.p99), ms(h.max), ((cpuUsed.hnsw / o.queries) * 1000).toFixed(1)],
          ['exact (sequential scan)', ms(e.p50), ms(e.p95), ms(e.p99), ms(e.max), ((cpuUsed.exact / o.queries) * 1000).toFixed(1)],
        ],
      ),
    );
    console.log(`recall@10 (tie-aware): ${((correct / (o.queries * 10)) * 100).toFixed(1)} %; p95 exact / HNSW: ${(e.p95 / h.p95).toFixed(1)}×`);
  } finally {
    await database.close();
  }
}

async function main(): Promise<void> {
  const o = options();
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  if (o.embed) await benchEmbedding(o);
  if (o.knn) await benchKnn(o);
  console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
