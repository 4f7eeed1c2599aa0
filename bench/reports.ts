/**
 * bench:reports — a six-year patient report over a 1M-event log, beside the plain SQL count of
 * the same rows measured in the same run (docs/reports.md "How it scales").
 *
 * A private PostgreSQL cluster (never the shared one) gets the server's migrations (the real
 * server, started as a child process, applies them and creates the organization), then a log of
 * `--events` events spread evenly over seven years of recordedAt is written straight into the
 * events table with one INSERT … SELECT generate_series per month (monthly partitions as the worker
 * creates them; 20,000 patients, 2,000 principals), and one stored checkpoint covering it. The
 * reports do not re-verify leaves, so placeholder commitments are enough here (the integrity
 * report's cost is bench:verify's). Then, for a typical patient and a heavy one (1 % of the log),
 * each report format is requested `--repeat` times over HTTP and timed: wall-clock to the last
 * byte and the server's CPU time from /proc/<pid>/stat (utime + stime) — next to the SQL count of
 * exactly the rows the report lists (same organization, patient, range and tree size) on its own
 * connection. Prints figures; never fails on time.
 *
 *   npm run bench:reports                      # 1,000,000 events (about 2–4 minutes to fill)
 *   npm run bench:reports -- --events 100000 --repeat 3
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { CompactRange, formatCheckpoint, frontierNodes, generateSignerKey, leafHash, parseSignerKey, rootFromFrontier, signNote } from '../server/src/ledger';
import { formatTable, ms, num, section } from './lib/report';
import { startPrivateCluster, type PrivateCluster } from './lib/private-postgres';
import { freePort, sampleProcess, startServer, type ServerProcess } from './lib/server-process';
import { summarize } from './lib/stats';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    repeat: { type: 'string', default: '5' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('usage: npm run bench:reports -- [--events N (1000000)] [--repeat N (5)]');
  process.exit(0);
}
const EVENTS = Number(args.events);
const REPEAT = Number(args.repeat);
const YEARS = 7;
const PATIENTS = 20_000;
const HEAVY = 'patient-heavy';
const TYPICAL = 'patient-42';
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
    }, { readyTimeoutMs: 300_000 });

    db = new pg.Client({ connectionString: url });
    await db.connect();
    const conn = db;
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
                'user-' || (i * 7919 % 2000), 'session:clinician', 'Observation', 'obs-' || (i % 50000),
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
    const to = end;
    const from = new Date(to.getTime() - (6 * 365 + 2) * 86_400_000);
    const rows: string[][] = [];
    for (const patient of [TYPICAL, HEAVY]) {
      const count = async () => {
        const t = process.hrtime.bigint();
        const r = await conn.query<{ n: string }>(
          'SELECT count(*) AS n FROM events WHERE organization_id = $1 AND patient_id = $2 AND recorded_at >= $3 AND recorded_at < $4 AND leaf_index < $5',
          [org, patient, from.toISOString(), to.toISOString(), EVENTS],
        );
        return { n: Number(r.rows[0]!.n), wall: Number(process.hrtime.bigint() - t) / 1e6 };
      };
      await count(); // warm
      const counts = [];
      for (let i = 0; i < REPEAT; i++) counts.push(await count());
      const n = counts[0]!.n;
      rows.push([`SQL count(*) ${patient}`, num(n), ms(summarize(counts.map((c) => c.wall)).p50), '–', '–']);
      for (const format of ['json', 'csv', 'pdf'] as const) {
        const walls: number[] = [];
        const cpus: number[] = [];
        let bytes = 0;
        for (let i = 0; i <= REPEAT; i++) {
          const before = sampleProcess(server.pid).cpuSeconds;
          const t = process.hrtime.bigint();
          const res = await fetch(`${server.url}/api/v1/reports`, {
            method: 'POST',
            headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ kind: 'patient-access', patientId: patient, from: from.toISOString(), to: to.toISOString(), format }),
          });
          const body = Buffer.from(await res.arrayBuffer());
          const wall = Number(process.hrtime.bigint() - t) / 1e6;
          const cpu = sampleProcess(server.pid).cpuSeconds - before;
          if (res.status !== 200) throw new Error(`report ${format}: ${res.status} ${body.toString('utf8').slice(0, 300)}`);
          if (format === 'json') {
            const listed = (JSON.parse(body.toString('utf8')) as { summary: { rows: number } }).summary.rows;
            if (listed !== n) throw new Error(`the JSON report lists ${listed} rows, the SQL count is ${n}`);
          }
          if (i === 0) continue; // warm-up
          walls.push(wall);
          cpus.push(cpu * 1000);
          bytes = body.length;
        }
        const w = summarize(walls);
        rows.push([`patient-access ${format} ${patient}`, num(n), ms(w.p50), ms(w.max), `${ms(summarize(cpus).p50)} (${num(bytes / 1024)} KiB)`]);
      }
    }
    section(`six-year patient-access report (${from.toISOString().slice(0, 10)} – ${to.toISOString().slice(0, 10)}) over ${num(EVENTS)} events, ${REPEAT} runs each after a warm-up`);
    console.log(formatTable(['what', 'rows', 'wall p50', 'wall max', 'server CPU p50 (size)'], rows));
    console.log(`\nserver CPU: utime+stime of the server process from /proc/${server.pid}/stat (10 ms ticks) per request; the count runs on the bench's own connection`);
    console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (${os.cpus().length} CPUs)`);
  } finally {
    await db?.end().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    cluster?.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
