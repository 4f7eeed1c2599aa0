/**
 * `npm run bench:detectors`: what the security detectors cost the ingest, with and without them in
 * the same run.
 *
 *  1. two server processes, each over its own fresh database, identical but for
 *     ALERTS_DETECTORS_ENABLED (false / true; the detectors' windows in Redis when --redis-url is
 *     given, in process otherwise),
 *  2. the same workload to both, in alternating rounds (A B, then B A, …) so both see the same
 *     moments of a machine whose load changes:
 *     - bulk: `POST /api/v1/events/bulk` of 1000 events on --clients clients,
 *     - single: `POST /api/v1/events` on --clients clients (group commit gathers them),
 *     the workload's events as bench/lib/workload.ts makes them (55 % PHI, reads, exports, failures,
 *     2,000 principals), at office hours (so off-hours PHI does not fire on every event; --night
 *     puts them at night: the alert-storm case, every PHI event raising),
 *  3. per server and phase: events/s over the wall-clock time of its rounds, server CPU per event
 *     from /proc/<pid>/stat (utime + stime) — measured after the detectors' queue has drained, so
 *     work done after the answers is counted — and the alerts raised.
 *
 * Figures are printed, never asserted (docs/architecture.md §9). Every loop is bounded by a count.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { generateSignerKey } from '../server/src/ledger';
import { runBounded } from './lib/concurrency';
import { createBenchDatabase, type BenchDatabase } from './lib/database';
import { HttpClient, expectStatus } from './lib/http-client';
import { formatTable, num, section } from './lib/report';
import { sampleProcess, startServer, type ServerProcess } from './lib/server-process';
import { nowMs } from './lib/stats';
import { makeEvent, type BenchEvent } from './lib/workload';

const HELP = `Usage: npm run bench:detectors -- [options]

  --rounds N        alternating rounds per phase (default 6; --quick 2)
  --bulk N          bulk requests of 1000 events per server and round (default 10; quick 3)
  --single N        single appends per server and round (default 2000; quick 500)
  --clients N       concurrent clients (default 8)
  --night           event timestamps at night: off-hours PHI fires on every PHI event (alert storm)
  --redis-url URL   detectors' windows in Redis (default $BENCH_REDIS_URL; none = in process)
  --database-url U  maintenance connection of the local cluster
                    (default $BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  --seed N          workload seed (default 1)`;

interface Options {
  rounds: number;
  bulk: number;
  single: number;
  clients: number;
  night: boolean;
  redisUrl: string | undefined;
  databaseUrl: string;
  seed: number;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string' },
      bulk: { type: 'string' },
      single: { type: 'string' },
      clients: { type: 'string' },
      quick: { type: 'boolean' },
      night: { type: 'boolean' },
      'redis-url': { type: 'string' },
      'database-url': { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const quick = values.quick === true;
  const int = (v: string | undefined, d: number) => (v === undefined ? d : Number.parseInt(v, 10));
  return {
    rounds: int(values.rounds, quick ? 2 : 6),
    bulk: int(values.bulk, quick ? 3 : 10),
    single: int(values.single, quick ? 500 : 2000),
    clients: int(values.clients, 8),
    night: values.night === true,
    redisUrl: values['redis-url'] ?? (process.env.BENCH_REDIS_URL || undefined),
    databaseUrl: values['database-url'] ?? process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    seed: int(values.seed, 1),
  };
}

/** Event `i` of the workload at office hours (12:00 UTC on), or at night (00:00 UTC on). */
function event(o: Options, i: number): BenchEvent {
  const e = makeEvent(o.seed, i);
  const base = Date.UTC(2026, 0, 5, o.night ? 0 : 12);
  return { ...e, timestamp: new Date(base + (i % 3_000_000)).toISOString() };
}

interface Target {
  label: string;
  srv: ServerProcess;
  client: HttpClient;
  /** Wall-clock ms and events of each phase. */
  ms: Record<string, number>;
  events: Record<string, number>;
  cpu: Record<string, number>;
}

/** A counter's value (sum over labels) from a server's /metrics. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Waits until the detectors' evaluated-batch count stops moving (bounded: 100 polls). */
async function settle(t: Target): Promise<void> {
  let last = -1;
  for (let i = 0; i < 100; i++) {
    const n = await metric(t.srv.url, 'audit_detector_batch_seconds_count');
    if (n === last) return;
    last = n;
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function phase(t: Target, name: string, o: Options, next: () => number, kind: 'bulk' | 'single'): Promise<void> {
  const cpu0 = sampleProcess(t.srv.pid).cpuSeconds;
  const t0 = nowMs();
  let events = 0;
  if (kind === 'bulk') {
    await runBounded(o.bulk, o.clients, async () => {
      const start = next();
      const items = Array.from({ length: 1000 }, (_, k) => event(o, start + k));
      const res = await t.client.post('/api/v1/events/bulk', JSON.stringify({ events: items, receipts: 'compact' }));
      expectStatus(res, 200, `${t.label} bulk`);
      events += 1000;
    });
  } else {
    await runBounded(o.single, o.clients, async () => {
      const res = await t.client.post('/api/v1/events', JSON.stringify(event(o, next())));
      expectStatus(res, 201, `${t.label} single`);
      events++;
    });
  }
  t.ms[name] = (t.ms[name] ?? 0) + (nowMs() - t0);
  await settle(t);
  t.cpu[name] = (t.cpu[name] ?? 0) + (sampleProcess(t.srv.pid).cpuSeconds - cpu0);
  t.events[name] = (t.events[name] ?? 0) + events;
}

async function main(): Promise<void> {
  const o = options();
  const key = `sak_bench_${randomBytes(24).toString('base64url')}`;
  const { signerKey } = generateSignerKey('bench.audit');
  const dbs: BenchDatabase[] = [];
  try {
    dbs.push(await createBenchDatabase(o.databaseUrl), await createBenchDatabase(o.databaseUrl));
    console.log(`PostgreSQL ${dbs[0]!.serverVersion} (${dbs[0]!.settings})`);
    console.log(`detectors' windows: ${o.redisUrl ? `Redis ${new URL(o.redisUrl).host}` : 'in process'}; events at ${o.night ? 'night (alert storm)' : 'office hours'}`);
    const base = {
      AUDIT_SIGNING_KEY: signerKey,
      AUDIT_BOOTSTRAP_API_KEY: key,
      AUDIT_LOG_ORIGIN: 'bench.audit',
      AUDIT_ROLE: 'api',
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      ...(o.redisUrl ? { REDIS_URL: o.redisUrl } : {}),
    };
    // Each server its own Redis key prefix (read cache, the detectors' windows, job queues): the
    // two runs must not share window state or queues, nor touch anyone else's keys.
    const keys = () => {
      const prefix = `bench:${randomBytes(4).toString('hex')}:`;
      return { CACHE_KEY_PREFIX: prefix, JOBS_KEY_PREFIX: `${prefix}jobs` };
    };
    const off = await startServer({ ...base, ...keys(), DATABASE_URL: dbs[0]!.url, ALERTS_DETECTORS_ENABLED: 'false' });
    const on = await startServer({ ...base, ...keys(), DATABASE_URL: dbs[1]!.url, ALERTS_DETECTORS_ENABLED: 'true' });
    const mk = (label: string, srv: ServerProcess): Target => ({ label, srv, client: new HttpClient(srv.url, key, o.clients), ms: {}, events: {}, cpu: {} });
    const targets = [mk('detectors off', off), mk('detectors on', on)];
    try {
      // Warm-up: JIT, pools, prepared plans.
      for (const t of targets) {
        let n = 10_000_000;
        await phase(t, 'warm-up', { ...o, bulk: 2, single: 200 }, () => (n += 1000), 'bulk');
      }
      console.log(`load average before measuring: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
      const counters = targets.map((_, k) => k * 100_000_000);
      for (const kind of ['bulk', 'single'] as const) {
        section(`${kind}: ${o.rounds} rounds, ${kind === 'bulk' ? `${o.bulk} × 1000 events` : `${num(o.single)} single appends`} per server and round, ${o.clients} clients`);
        for (let r = 0; r < o.rounds; r++) {
          const order = r % 2 === 0 ? targets : [...targets].reverse();
          for (const t of order) {
            const k = targets.indexOf(t);
            await phase(t, kind, o, () => (counters[k]! += kind === 'bulk' ? 1000 : 1) - (kind === 'bulk' ? 1000 : 1), kind);
          }
          process.stdout.write(`  round ${r + 1}/${o.rounds}\r`);
        }
        console.log('');
      }
      console.log(`load average after: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);

      section('Results (events/s over each server’s own rounds; server CPU per event from /proc/<pid>/stat, after the detectors drained)');
      const rows: string[][] = [];
      for (const kind of ['bulk', 'single']) {
        for (const t of targets) {
          const rate = (t.events[kind]! * 1000) / t.ms[kind]!;
          rows.push([kind, t.label, num(t.events[kind]!), num(Math.round(rate)), `${((t.cpu[kind]! * 1e6) / t.events[kind]!).toFixed(1)} µs`]);
        }
      }
      console.log(formatTable(['phase', 'server', 'events', 'events/s', 'CPU/event'], rows));
      const raised = await metric(on.url, 'audit_alerts_raised_total');
      const dropped = await metric(on.url, 'audit_detector_events_dropped_total');
      console.log(`\nalerts raised or added to on the detectors-on server: ${num(raised)}; events skipped (queue full): ${num(dropped)}`);
      for (const kind of ['bulk', 'single']) {
        const [a, b] = targets;
        const rateOff = (a!.events[kind]! * 1000) / a!.ms[kind]!;
        const rateOn = (b!.events[kind]! * 1000) / b!.ms[kind]!;
        const cpuOff = a!.cpu[kind]! / a!.events[kind]!;
        const cpuOn = b!.cpu[kind]! / b!.events[kind]!;
        const cost = (1 - rateOn / rateOff) * 100;
        console.log(
          `${kind}: throughput ${num(Math.round(rateOff))} → ${num(Math.round(rateOn))} events/s (${cost >= 0 ? '−' : '+'}${Math.abs(cost).toFixed(1)} %), ` +
            `CPU/event ${(cpuOff * 1e6).toFixed(1)} → ${(cpuOn * 1e6).toFixed(1)} µs (${(((cpuOn - cpuOff) / cpuOff) * 100).toFixed(1)} %); ` +
            `target detectors ≤ 10 % of throughput: ${cost <= 10 ? 'met' : 'NOT met'}`,
        );
      }
    } finally {
      for (const t of targets) t.client.close();
      await Promise.all([off.stop(), on.stop()]);
    }
  } finally {
    for (const db of dbs) await db.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
