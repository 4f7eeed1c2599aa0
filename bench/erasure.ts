/**
 * `npm run bench:erasure`: what a subject erasure (docs/privacy.md §2, GDPR Art. 17) costs per
 * event, on PGlite and on PostgreSQL, in-process through the real services (the server's runtime,
 * started as the tests start it). Two subjects get `--events` events each; one is erased by the
 * erasure service (batches of PRIVACY_ERASURE_BATCH_SIZE, each one transaction with its lease
 * check, progress row and hooks, then the completion event), the other by the same-run baseline:
 * raw `UPDATE events SET <personal fields> = NULL, salts = salts - <fields>` of the same number of
 * rows in batches of the same size, nothing else.
 *
 * Figures: events/s (wall clock) and CPU µs/event of this process from /proc/self/stat (utime +
 * stime). PGlite runs inside this process, so its CPU is the whole cost; with PostgreSQL the
 * database server's own CPU is not in the figure (the wall clock includes it). Prints figures,
 * never fails on time (docs/architecture.md §9).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../server/src/config';
import { generateSignerKey } from '../server/src/ledger';
import { createLogger } from '../server/src/observability/logger';
import { startRuntime, type Runtime } from '../server/src/runtime';
import { createBenchDatabase } from './lib/database';
import { formatTable, num, section } from './lib/report';
import { sampleProcess } from './lib/server-process';

const HELP = `Usage: npm run bench:erasure -- [options]

  --events N         events per subject (default 100000)
  --batch N          events per erasure batch and per baseline UPDATE (default 1000)
  --backend B        pglite | postgres | both (default both)
  --database-url U   PostgreSQL maintenance URL (default BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  --help             this text
`;

const PERSONAL = ['principal_id', 'patient_id', 'session_context', 'outcome_description', 'details'];
const PERSONAL_FIELDS = ['principalId', 'patientId', 'sessionContext', 'outcomeDescription', 'details'];

interface Row {
  backend: string;
  name: string;
  events: number;
  cpuS: number;
  wallS: number;
}

async function measure(backend: string, name: string, events: number, run: () => Promise<void>): Promise<Row> {
  const cpu0 = sampleProcess(process.pid).cpuSeconds;
  const t0 = performance.now();
  await run();
  return { backend, name, events, wallS: (performance.now() - t0) / 1000, cpuS: sampleProcess(process.pid).cpuSeconds - cpu0 };
}

async function benchBackend(backend: 'pglite' | 'postgres', events: number, batch: number, adminUrl: string): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-erasure-'));
  const db = backend === 'postgres' ? await createBenchDatabase(adminUrl) : null;
  let runtime: Runtime | null = null;
  try {
    const env: Record<string, string> = {
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      AUDIT_LOG_ORIGIN: 'bench.audit',
      AUDIT_SIGNING_KEY: generateSignerKey('bench.audit').signerKey,
      AUDIT_BOOTSTRAP_API_KEY: 'sak_bench_erasure_admin_key_0123456789abcdef',
      ...(db ? { DATABASE_URL: db.url } : { AUDIT_DATA_DIR: dir }),
      PRIVACY_ERASURE_BATCH_SIZE: String(batch),
      PRIVACY_ERASURE_WAIT_MS: '0',
      AUDIT_SELF_AUDIT_INTERVAL_MS: '0',
      RETENTION_INTERVAL_MS: '0',
      ANALYTICS_INTERVAL_MS: '0',
      ALERTS_DETECTORS_ENABLED: 'false',
    };
    runtime = await startRuntime(loadConfig(env), createLogger('silent'));
    const org = runtime.bootstrap!.organizationId;
    const services = runtime.services;
    const event = (subject: string, i: number) => ({
      action: 'data.read',
      status: 'success' as const,
      dataClassification: 'PHI' as const,
      principalId: `dr-${i % 500}`,
      patientId: subject,
      sessionContext: { sessionId: `s-${i >> 4}`, ipAddress: '192.0.2.7' },
      outcomeDescription: `chart ${i} opened`,
      details: { chart: i, section: 'notes' },
    });
    const t0 = performance.now();
    for (const subject of ['patient-bench-erased', 'patient-bench-raw']) {
      for (let i = 0; i < events; i += 1000) {
        const items = Array.from({ length: Math.min(1000, events - i) }, (_, k) => ({ ok: true as const, input: event(subject, i + k) }));
        const results = await services.events.bulkCreate(org, items, { proofs: false });
        if (results.some((r) => !r.ok)) throw new Error('an event was refused');
      }
    }
    console.log(`${backend}: ${num(2 * events)} events appended in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const service = await measure(backend, `erasure service (batches of ${num(batch)})`, events, async () => {
      const erasure = await services.privacy.erasures.request(org, { principalId: 'bench', principalType: 'system' }, 'patientId', 'patient-bench-erased', 'bench');
      await services.privacy.erasures.drain();
      const done = await services.privacy.erasures.get(org, erasure.id);
      if (done?.state !== 'completed' || done.eventsErased !== events) throw new Error(`erasure ended ${done?.state} with ${done?.eventsErased} events`);
    });
    const conn = await runtime.database.connect();
    let raw: Row;
    try {
      raw = await measure(backend, `baseline: raw UPDATE (batches of ${num(batch)})`, events, async () => {
        let total = 0;
        for (;;) {
          const { rows } = await conn.query<{ n: string }>(
            `WITH victims AS (SELECT recorded_at, id FROM events WHERE organization_id = $1 AND patient_id = $2 LIMIT ${batch}),
                  done AS (UPDATE events e SET ${PERSONAL.map((c) => `${c} = NULL`).join(', ')}, salts = e.salts - $3::text[], erased_at = now()
                             FROM victims v WHERE e.organization_id = $1 AND e.recorded_at = v.recorded_at AND e.id = v.id RETURNING 1)
             SELECT count(*) AS n FROM done`,
            [org, 'patient-bench-raw', PERSONAL_FIELDS],
          );
          const n = Number(rows[0]!.n);
          total += n;
          if (n < batch) break;
        }
        if (total !== events) throw new Error(`baseline erased ${total} events`);
      });
    } finally {
      conn.release();
    }
    return [service, raw];
  } finally {
    await runtime?.close();
    await db?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '100000' },
      batch: { type: 'string', default: '1000' },
      backend: { type: 'string', default: 'both' },
      'database-url': { type: 'string', default: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const events = Number(values.events);
  const batch = Number(values.batch);
  if (!Number.isInteger(events) || events < 100 || !Number.isInteger(batch) || batch < 1) throw new Error('--events ≥ 100 and --batch ≥ 1');
  const backends = values.backend === 'both' ? (['pglite', 'postgres'] as const) : [values.backend as 'pglite' | 'postgres'];
  console.log(`bench:erasure — node ${process.version}; ${num(events)} events per subject, ${os.cpus().length} cores; CPU of this process from /proc/self/stat`);
  const rows: Row[] = [];
  for (const b of backends) rows.push(...(await benchBackend(b, events, batch, values['database-url'])));
  section('erasing one subject');
  console.log(
    formatTable(
      ['backend', 'measure', 'events', 'wall events/s', 'CPU µs/event', 'wall ÷ baseline'],
      rows.map((r) => {
        const base = rows.find((x) => x.backend === r.backend && x.name.startsWith('baseline'))!;
        return [r.backend, r.name, num(r.events), num(r.events / r.wallS), ((r.cpuS * 1e6) / r.events).toFixed(1), (r.wallS / base.wallS).toFixed(2)];
      }),
    ),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
