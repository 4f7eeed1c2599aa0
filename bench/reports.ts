/**
 * bench:reports — a six-year patient report over a 1M-event log, beside the plain SQL count of
 * the same rows measured in the same run (docs/reports.md "How it scales").
 *
 * A private PostgreSQL cluster (never the shared one) gets the server's migrations (the real
 * server, started as a child process, applies them and creates the organization), then a log of
 * `--events` events spread evenly over seven years of recordedAt is written straight into the
 * events table with one INSERT … SELECT generate_series per month (monthly partitions as the worker
 * creates them; 20,000 patients, 2,000 principals plus one with 10 % and one with 2 % of the log),
 * and one stored checkpoint covering it. The
 * reports do not re-verify leaves, so placeholder commitments are enough here (the integrity
 * report's cost is bench:verify's). Then, for a typical patient and a heavy one (1 % of the log),
 * each report format is requested `--repeat` times over HTTP and timed: wall-clock to the last
 * byte, the server's CPU time from /proc/<pid>/stat (utime + stime) and its peak RSS (VmRSS sampled
 * every 20 ms) — next to the SQL count of exactly the rows the report lists (same organization,
 * patient, range and tree size) on its own connection. Then memory: the whole-log user-activity
 * report of the 2 % and the 10 % principal in each format, and the 10 % one to a slow client,
 * with the server's RSS before and at its peak: flat memory means the peak does not grow with the
 * rows. Prints figures; never fails on time.
 *
 *   npm run bench:reports                      # 1,000,000 events (about 2–4 minutes to fill)
 *   npm run bench:reports -- --events 100000 --repeat 3
 *   npm run bench:reports -- --server-cpu-prof /tmp/prof   # the server's V8 CPU profile
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { CompactRange, formatCheckpoint, frontierNodes, generateSignerKey, leafHash, parseSignerKey, rootFromFrontier, signNote } from '../server/src/ledger';
import { formatTable, mib, ms, num, section } from './lib/report';
import { startPrivateCluster, type PrivateCluster } from './lib/private-postgres';
import { freePort, sampleProcess, startServer, type ServerProcess } from './lib/server-process';
import { summarize } from './lib/stats';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    repeat: { type: 'string', default: '5' },
    'server-cpu-prof': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('usage: npm run bench:reports -- [--events N (1000000)] [--repeat N (5)] [--server-cpu-prof DIR]');
  process.exit(0);
}
const EVENTS = Number(args.events);
const REPEAT = Number(args.repeat);
const YEARS = 7;
const PATIENTS = 20_000;
const HEAVY = 'patient-heavy';
const TYPICAL = 'patient-42';
/** Principals with 10 % and 2 % of the log, for the memory phase. */
const HEAVY_PRINCIPAL = 'user-heavy';
const MEDIUM_PRINCIPAL = 'user-medium';
const ADMIN_KEY = `sak_bench_${randomBytes(24).toString('hex')}`;

async function main(): Promise<void> {
  let cluster: PrivateCluster | null = null;
  let server: ServerProcess | null = null;
  let db: pg.Client | null = null;
  try {
    cluster = startPrivateCluster(await freePort(), ['shared_buffers = 256MB', 'fsync = off', 'synchronous_commit = off', 'max_wal_size = 4GB'], 'bench-reports-pg-');
    const url = cluster.url.replace(/\/postgres$/, '/audit');
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    await admin.query('CREATE DATABASE audit');
    await admin.end();

    const { signerKey } = generateSignerKey('bench.audit');
    server = await startServer({
      NODE_ENV: 'production',
      DATABASE_URL: url,
      AUDIT_SIGNING_KEY: signerKey,
      AUDIT_BOOTSTRAP_API_KEY: ADMIN_KEY,
      AUDIT_ROLE: 'api',
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
      AUTH_SECRET: randomBytes(32).toString('base64'),
    }, { readyTimeoutMs: 300_000, nodeArgs: args['server-cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', args['server-cpu-prof']] : [] });

    db = new pg.Client({ connectionString: url });
    await db.connect();
    const conn = db;
    pgCpuConn = db;
    const org = (await db.query<{ id: string }>('SELECT id FROM organizations LIMIT 1')).rows[0]!.id;

    // --- fill -----------------------------------------------------------------------------------
    section(`filling: ${num(EVENTS)} events over ${YEARS} years, ${num(PATIENTS)} patients (+ ${HEAVY} in 1 %)`);
    const end = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1));
    const start = new Date(end);
    start.setUTCFullYear(end.getUTCFullYear() - YEARS);
    const spanMs = end.getTime() - start.getTime();
    const fillStart = Date.now();
    for (let m = new Date(start); m < end; m.setUTCMonth(m.getUTCMonth() + 1)) {
      const next = new Date(m);
      next.setUTCMonth(m.getUTCMonth() + 1);
      const name = `events_y${m.getUTCFullYear()}m${String(m.getUTCMonth() + 1).padStart(2, '0')}`;
      await db.query(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF events FOR VALUES FROM ('${m.toISOString()}') TO ('${next.toISOString()}')`);
      // Leaves whose recordedAt falls in this month: i·span/N in [m, next).
      const lo = Math.ceil(((m.getTime() - start.getTime()) * EVENTS) / spanMs);
      const hi = Math.min(EVENTS, Math.ceil(((next.getTime() - start.getTime()) * EVENTS) / spanMs));
      if (hi <= lo) continue;
      await db.query(
        `INSERT INTO events (organization_id, id, recorded_at, leaf_index, leaf_hash, "timestamp", action, status, principal_id, principal_type,
           target_resource_type, target_resource_id, patient_id, data_classification, correlation_id, commitments, salts)
         SELECT $1::uuid, gen_random_uuid(), $2::timestamptz + (i * $3::float8) * interval '1 millisecond', i, '\\x00'::bytea,
                $2::timestamptz + (i * $3::float8) * interval '1 millisecond',
                (ARRAY['data.read','data.read','data.read','data.write','data.query','fhir.Patient.read','disclosure.insurer','auth.login.success'])[1 + i % 8],
                CASE WHEN i % 10 = 0 THEN 'failure' ELSE 'success' END,
                CASE WHEN i % 10 = 3 THEN '${HEAVY_PRINCIPAL}' WHEN i % 50 = 7 THEN '${MEDIUM_PRINCIPAL}' ELSE 'user-' || (i * 7919 % 2000) END, 'session:clinician', 'Observation', 'obs-' || (i % 50000),
                CASE WHEN i % 100 = 0 THEN '${HEAVY}' WHEN i % 5 = 0 THEN NULL ELSE 'patient-' || (i * 104729 % ${PATIENTS}) END,
                'PHI', 'corr-' || (i / 4), '{}'::jsonb, '{}'::jsonb
           FROM generate_series($4::bigint, $5::bigint - 1) AS i`,
        [org, start.toISOString(), spanMs / EVENTS, lo, hi],
      );
    }
    // The tree over placeholder leaves (nothing here re-verifies field commitments): its frontier
    // nodes and head, so the server can append after it (each report appends its own audit event
    // with a receipt), and one stored, signed checkpoint covering every leaf.
    const tree = new CompactRange();
    for (let i = 0; i < EVENTS; i++) tree.append(leafHash(`bench leaf ${i}`));
    const frontier = tree.frontier();
    const root = rootFromFrontier(frontier);
    const ids = frontierNodes(EVENTS);
    for (let k = 0; k < ids.length; k++) {
      await db.query('INSERT INTO ledger_nodes (organization_id, level, idx, hash) VALUES ($1, $2, $3, $4)', [org, ids[k]!.level, ids[k]!.index, frontier[k]]);
    }
    const signer = parseSignerKey(signerKey);
    const note = signNote(formatCheckpoint({ origin: `bench.audit/${org}`, size: EVENTS, rootHash: root }), [signer]);
    await db.query(`UPDATE ledger_heads SET size = $2, root_hash = $3, frontier = $4 WHERE organization_id = $1`, [org, EVENTS, root, Buffer.concat(frontier)]);
    await db.query(`INSERT INTO checkpoints (organization_id, tree_size, root_hash, note, key_id) VALUES ($1, $2, $3, $4, $5)`, [org, EVENTS, root, note, signer.keyId.toString('hex')]);
    await db.query('ANALYZE events');
    console.log(`filled in ${ms(Date.now() - fillStart)}`);

    // --- measure ----------------------------------------------------------------------------------
    const serverPid = server.pid;
    const serverUrl = server.url;
    const to = end;
    const from = new Date(to.getTime() - (6 * 365 + 2) * 86_400_000);
    const sqlCount = async (column: 'patient_id' | 'principal_id', subject: string, range: boolean) => {
      const t = process.hrtime.bigint();
      const r = await conn.query<{ n: string }>(
        `SELECT count(*) AS n FROM events WHERE organization_id = $1 AND ${column} = $2 AND recorded_at >= $3 AND recorded_at < $4 AND leaf_index < $5`,
        [org, subject, range ? from.toISOString() : start.toISOString(), range ? to.toISOString() : end.toISOString(), EVENTS],
      );
      return { n: Number(r.rows[0]!.n), wall: Number(process.hrtime.bigint() - t) / 1e6 };
    };
    const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
    console.log(`load average before measuring: ${load()} (${os.cpus().length} CPUs)`);

    const patientRows: string[][] = [];
    for (const patient of [TYPICAL, HEAVY]) {
      await sqlCount('patient_id', patient, true); // warm
      const counts = [];
      for (let i = 0; i < REPEAT; i++) counts.push(await sqlCount('patient_id', patient, true));
      const n = counts[0]!.n;
      const countP50 = summarize(counts.map((c) => c.wall)).p50;
      for (const format of ['json', 'csv', 'pdf'] as const) {
        const runs: Measured[] = [];
        for (let i = 0; i <= REPEAT; i++) {
          const m = await measureReport(serverUrl, serverPid, { kind: 'patient-access', patientId: patient, from: from.toISOString(), to: to.toISOString(), format });
          if (m.listed !== null && m.listed !== n) throw new Error(`the JSON report lists ${m.listed} rows, the SQL count is ${n}`);
          if (i > 0) runs.push(m); // the first is a warm-up
        }
        const w = summarize(runs.map((r) => r.wallMs));
        patientRows.push([
          `patient-access ${format} ${patient}`,
          num(n),
          ms(countP50),
          ms(w.p50),
          ms(w.max),
          ms(summarize(runs.map((r) => r.cpuMs)).p50),
          ms(summarize(runs.map((r) => r.pgCpuMs)).p50),
          mib(Math.max(...runs.map((r) => r.peakRssBytes))),
          `${num(runs[0]!.bytes / 1024)} KiB`,
        ]);
      }
    }
    section(`six-year patient-access report (${from.toISOString().slice(0, 10)} – ${to.toISOString().slice(0, 10)}) over ${num(EVENTS)} events, ${REPEAT} runs each after a warm-up`);
    console.log(formatTable(['what', 'rows', 'SQL count p50', 'wall p50', 'wall max', 'server CPU p50', 'PG CPU p50', 'server peak RSS', 'size'], patientRows));
    console.log(`load average: ${load()}`);

    // Memory: the whole log of one principal (user-activity), at two sizes, each format once after
    // the runs above warmed the server; the large one also to a client that reads slowly, so the
    // server has to hold back (backpressure) instead of buffering the report.
    const memoryRows: string[][] = [];
    for (const [principal, slow] of [[MEDIUM_PRINCIPAL, false], [HEAVY_PRINCIPAL, false], [HEAVY_PRINCIPAL, true]] as const) {
      const count = await sqlCount('principal_id', principal, false);
      for (const format of ['json', 'csv', 'pdf'] as const) {
        const m = await measureReport(serverUrl, serverPid, { kind: 'user-activity', principalId: principal, format }, slow);
        if (m.listed !== null && m.listed !== count.n) throw new Error(`the JSON report lists ${m.listed} rows, the SQL count is ${count.n}`);
        memoryRows.push([
          `user-activity ${format} ${principal}${slow ? ' (slow client)' : ''}`,
          num(count.n),
          ms(count.wall),
          ms(m.wallMs),
          ms(m.cpuMs),
          ms(m.pgCpuMs),
          mib(m.rssBeforeBytes),
          mib(m.peakRssBytes),
          mib(m.peakRssBytes - m.rssBeforeBytes),
          `${num(m.bytes / 1024)} KiB`,
        ]);
      }
    }
    section(`memory: user-activity over the whole log (${start.toISOString().slice(0, 10)} – ${end.toISOString().slice(0, 10)}), one run each`);
    console.log(formatTable(['what', 'rows', 'SQL count', 'wall', 'server CPU', 'PG CPU', 'RSS before', 'peak RSS', 'peak − before', 'size'], memoryRows));
    console.log(`\nserver CPU: utime+stime of the server process from /proc/${serverPid}/stat (10 ms ticks) per request; PG CPU: the same for the server's PostgreSQL backends (pg_stat_activity of the audit database); RSS: VmRSS of the server from /proc/${serverPid}/status every ${RSS_SAMPLE_MS} ms during the request; the SQL count runs on the bench's own connection; slow client: reads ${SLOW_READ_BYTES / 1024} KiB every ${SLOW_READ_PAUSE_MS} ms`);
    console.log(`load average at the end: ${load()} (${os.cpus().length} CPUs)`);
  } finally {
    await db?.end().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    cluster?.destroy();
  }
}

const RSS_SAMPLE_MS = 20;

/** The connection that reads the server's PostgreSQL backends (set in main). */
let pgCpuConn: pg.Client | null = null;

/**
 * CPU seconds of the server's PostgreSQL backends now, by pid: the sessions of the audit database
 * other than the bench's own (pg_stat_activity), each from /proc/<pid>/stat. The server's pool
 * keeps its connections, so a report's queries run on backends seen before and after it.
 */
async function postgresCpu(): Promise<Map<number, number>> {
  const { rows } = await pgCpuConn!.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`);
  const out = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      out.set(pid, sampleProcess(pid).cpuSeconds);
    } catch {
      // gone between the query and the read
    }
  }
  return out;
}

function cpuSince(before: Map<number, number>, after: Map<number, number>): number {
  let s = 0;
  for (const [pid, cpu] of after) s += cpu - (before.get(pid) ?? 0);
  return s;
}
const SLOW_READ_BYTES = 64 * 1024;
const SLOW_READ_PAUSE_MS = 5;

interface Measured {
  wallMs: number;
  cpuMs: number;
  /** CPU of the server's PostgreSQL backends during the request. */
  pgCpuMs: number;
  rssBeforeBytes: number;
  peakRssBytes: number;
  bytes: number;
  /** The JSON report's summary.rows (null for the other formats). */
  listed: number | null;
}

/**
 * Requests one report and reads it to the last byte without keeping it (the JSON summary is taken
 * from the tail), sampling the server's RSS all along. `slow`: the client reads SLOW_READ_BYTES,
 * then pauses SLOW_READ_PAUSE_MS, so the server's writes have to wait for it.
 */
async function measureReport(url: string, pid: number, body: Record<string, string>, slow = false): Promise<Measured> {
  const pgBefore = await postgresCpu();
  const before = sampleProcess(pid);
  let peak = before.rssBytes;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, sampleProcess(pid).rssBytes);
    } catch {
      // the server is gone: the request fails below
    }
  }, RSS_SAMPLE_MS);
  try {
    const t = process.hrtime.bigint();
    const res = await fetch(`${url}/api/v1/reports`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    let bytes = 0;
    let tail = '';
    let sincePause = 0;
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.length;
      if (body.format === 'json' || res.status !== 200) tail = (tail + Buffer.from(value).toString('utf8')).slice(-8192);
      sincePause += value.length;
      if (slow && sincePause >= SLOW_READ_BYTES) {
        sincePause = 0;
        await new Promise((r) => setTimeout(r, SLOW_READ_PAUSE_MS));
      }
    }
    const wallMs = Number(process.hrtime.bigint() - t) / 1e6;
    const after = sampleProcess(pid);
    const pgCpuMs = cpuSince(pgBefore, await postgresCpu()) * 1000;
    peak = Math.max(peak, after.rssBytes);
    if (res.status !== 200) throw new Error(`report ${body.format}: ${res.status} ${tail.slice(0, 300)}`);
    let listed: number | null = null;
    if (body.format === 'json') {
      const m = /"summary":(\{.*\})\}\n?$/.exec(tail);
      if (!m) throw new Error('the JSON report has no summary at its end');
      listed = (JSON.parse(m[1]!) as { rows: number }).rows;
    }
    return { wallMs, cpuMs: (after.cpuSeconds - before.cpuSeconds) * 1000, pgCpuMs, rssBeforeBytes: before.rssBytes, peakRssBytes: peak, bytes, listed };
  } finally {
    clearInterval(timer);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
