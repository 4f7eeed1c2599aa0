/**
 * `npm run bench:cache`: the read cache, off and on, in the same run over the same database.
 *
 *  1. fill one organization's log to `--events` (default 1,000,000) through the bulk API,
 *  2. with the cache off (CACHE_TTL_SECONDS=0), then on (the default TTL, Redis when --redis-url
 *     is given, the in-process LRU otherwise), each on a fresh server process over that database:
 *     - stats: sequential `GET /api/v1/events/stats` over 10 shapes (groupBy × with/without a date
 *       range), after one warm-up pass: p50/p95/p99,
 *     - getById: sequential `GET /api/v1/events/:id` over ids drawn from the log: p50/p95/p99,
 *     - a read mix on `--clients` concurrent clients (getById 50 %, stats 25 %, checkpoint 10 %,
 *       filtered query 15 %, each id and shape drawn with a skew) with `--write-share` single
 *       appends interleaved (each invalidates the organization's log caches), and the hit ratio
 *       per cache from the server's own /metrics,
 *     - server CPU per request of every phase from /proc/<pid>/stat (utime + stime),
 *  3. the target: cached stats p95 ≤ 2 ms at the filled size (met / not met).
 *
 * Figures are printed, never asserted (docs/architecture.md §9). Every loop is bounded by a count.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { generateSignerKey } from '../server/src/ledger';
import { runBounded } from './lib/concurrency';
import { createBenchDatabase, type BenchDatabase } from './lib/database';
import { HttpClient, expectStatus } from './lib/http-client';
import { formatTable, ms, num, section } from './lib/report';
import { sampleProcess, startServer, type ServerProcess } from './lib/server-process';
import { nowMs, summarize, type LatencySummary } from './lib/stats';
import { bulkBody, makeEvent, prng } from './lib/workload';

const HELP = `Usage: npm run bench:cache -- [options]

  --events N        events in the log (default 1000000; --quick 20000)
  --quick           small run: --events 20000 and fewer requests
  --requests N      sequential requests per latency phase (default 2000; quick 500)
  --mix N           requests of the read mix (default 5000; quick 1000)
  --clients N       concurrent clients of the read mix and the fill (default 4)
  --write-share F   share of single appends in the read mix (default 0.01)
  --redis-url URL   run the cache-on server with REDIS_URL (default $BENCH_REDIS_URL; none = in-process LRU)
  --database-url U  maintenance connection of the local cluster
                    (default $BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  --seed N          workload seed (default 1)
  --keep            keep the audit_bench_* database`;

interface Options {
  events: number;
  requests: number;
  mix: number;
  clients: number;
  writeShare: number;
  redisUrl: string | undefined;
  databaseUrl: string;
  seed: number;
  keep: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      events: { type: 'string' },
      quick: { type: 'boolean' },
      requests: { type: 'string' },
      mix: { type: 'string' },
      clients: { type: 'string' },
      'write-share': { type: 'string' },
      'redis-url': { type: 'string' },
      'database-url': { type: 'string' },
      seed: { type: 'string' },
      keep: { type: 'boolean' },
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
    events: int(values.events, quick ? 20_000 : 1_000_000),
    requests: int(values.requests, quick ? 500 : 2000),
    mix: int(values.mix, quick ? 1000 : 5000),
    clients: int(values.clients, 4),
    writeShare: values['write-share'] === undefined ? 0.01 : Number(values['write-share']),
    redisUrl: values['redis-url'] ?? (process.env.BENCH_REDIS_URL || undefined),
    databaseUrl: values['database-url'] ?? process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    seed: int(values.seed, 1),
    keep: values.keep === true,
  };
}

const STATS_SHAPES = ['action', 'status', 'dataClassification', 'day', 'hour'].flatMap((g) => [
  `/api/v1/events/stats?groupBy=${g}`,
  `/api/v1/events/stats?groupBy=${g}&from=2020-01-01T00:00:00Z`,
]);
const QUERY_SHAPES = ['statuses=failure&limit=20', 'dataClassifications=PHI&limit=50', 'actions=data.read&limit=20', 'limit=100'].map((q) => `/api/v1/events?${q}`);

/** CPU seconds the server used while `work` ran, and what `work` returned. */
async function withCpu<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; cpuSeconds: number }> {
  const before = sampleProcess(pid).cpuSeconds;
  const result = await work();
  return { result, cpuSeconds: sampleProcess(pid).cpuSeconds - before };
}

/** Sequential GETs of `paths` (cycled), after one warm-up pass over the distinct paths. */
async function sequential(client: HttpClient, paths: string[], count: number): Promise<number[]> {
  for (const p of new Set(paths)) expectStatus(await client.get(p), 200, `warm-up ${p}`);
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const r = await client.get(paths[i % paths.length]!);
    expectStatus(r, 200, paths[i % paths.length]!);
    samples.push(r.ms);
  }
  return samples;
}

/** The `audit_cache_requests_total` samples of a server, by `cache/result`. */
async function cacheCounters(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^audit_cache_requests_total\{cache="([^"]+)",result="([^"]+)"\} (\S+)$/.exec(line);
    if (m) out.set(`${m[1]}/${m[2]}`, Number(m[3]));
  }
  return out;
}

interface Phase {
  latency?: LatencySummary;
  requests: number;
  cpuSeconds: number;
  elapsedMs: number;
}

interface Run {
  stats: Phase;
  getById: Phase;
  mix: Phase;
  hitRatio: Map<string, { hits: number; misses: number }>;
}

async function measure(srv: ServerProcess, key: string, ids: string[], o: Options, label: string): Promise<Run> {
  const client = new HttpClient(srv.url, key, o.clients);
  try {
    section(`${label}: stats, ${num(o.requests)} sequential requests over ${STATS_SHAPES.length} shapes`);
    let t = nowMs();
    const stats = await withCpu(srv.pid, () => sequential(client, STATS_SHAPES, o.requests));
    const statsPhase: Phase = { latency: summarize(stats.result), requests: o.requests, cpuSeconds: stats.cpuSeconds, elapsedMs: nowMs() - t };

    section(`${label}: getById, ${num(o.requests)} sequential requests over ${num(Math.min(ids.length, 500))} ids`);
    const byIdPaths = ids.slice(0, 500).map((id) => `/api/v1/events/${id}`);
    t = nowMs();
    const byId = await withCpu(srv.pid, () => sequential(client, byIdPaths, o.requests));
    const byIdPhase: Phase = { latency: summarize(byId.result), requests: o.requests, cpuSeconds: byId.cpuSeconds, elapsedMs: nowMs() - t };

    section(`${label}: read mix, ${num(o.mix)} requests on ${o.clients} clients, ${(o.writeShare * 100).toFixed(1)} % appends`);
    const before = await cacheCounters(srv.url);
    const r = prng(o.seed + 7);
    const skewed = <T>(xs: readonly T[]) => xs[Math.floor(Math.pow(r(), 3) * xs.length)]!;
    const samples: number[] = [];
    t = nowMs();
    const mix = await withCpu(srv.pid, () =>
      runBounded(o.mix, o.clients, async (i) => {
        const u = r();
        if (u < o.writeShare) {
          const res = await client.post('/api/v1/events', JSON.stringify(makeEvent(o.seed + 1, i)));
          expectStatus(res, 201, 'append');
          return;
        }
        const v = r();
        const path = v < 0.5 ? `/api/v1/events/${skewed(ids)}` : v < 0.75 ? skewed(STATS_SHAPES) : v < 0.85 ? '/api/v1/ledger/checkpoint' : skewed(QUERY_SHAPES);
        const res = await client.get(path);
        expectStatus(res, 200, path);
        samples.push(res.ms);
      }),
    );
    const mixPhase: Phase = { latency: summarize(samples), requests: o.mix, cpuSeconds: mix.cpuSeconds, elapsedMs: nowMs() - t };
    const after = await cacheCounters(srv.url);
    const hitRatio = new Map<string, { hits: number; misses: number }>();
    for (const cache of new Set([...after.keys()].map((k) => k.split('/')[0]!))) {
      const d = (result: string) => (after.get(`${cache}/${result}`) ?? 0) - (before.get(`${cache}/${result}`) ?? 0);
      hitRatio.set(cache, { hits: d('hit'), misses: d('miss') });
    }
    return { stats: statsPhase, getById: byIdPhase, mix: mixPhase, hitRatio };
  } finally {
    client.close();
  }
}

/** Fills the log to `events` through the bulk API; returns a sample of event ids spread over it. */
async function fill(srv: ServerProcess, key: string, o: Options): Promise<string[]> {
  const client = new HttpClient(srv.url, key, o.clients);
  const batch = 1000;
  const ids: string[] = [];
  const t = nowMs();
  const requests = Math.ceil(o.events / batch);
  await runBounded(requests, o.clients, async (i) => {
    const count = Math.min(batch, o.events - i * batch);
    const res = await client.post('/api/v1/events/bulk', bulkBody(o.seed, i * batch, count));
    expectStatus(res, 200, 'bulk append');
    const body = JSON.parse(res.body) as { results: Array<{ receipt?: { id: string } }> };
    for (let j = 0; j < body.results.length; j += 97) {
      const id = body.results[j]!.receipt?.id;
      if (id) ids.push(id);
    }
    if ((i + 1) % 100 === 0) process.stdout.write(`  ${num((i + 1) * batch)} events, ${((nowMs() - t) / 1000).toFixed(0)} s\r`);
  });
  client.close();
  console.log(`filled ${num(o.events)} events in ${((nowMs() - t) / 1000).toFixed(1)} s`);
  // Shuffle deterministically so the getById ids spread over the whole log.
  const r = prng(o.seed + 3);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids;
}

async function main(): Promise<void> {
  const o = options();
  const key = `sak_bench_${randomBytes(24).toString('base64url')}`;
  const { signerKey } = generateSignerKey('bench.audit');
  let db: BenchDatabase | null = null;
  try {
    db = await createBenchDatabase(o.databaseUrl);
    console.log(`PostgreSQL ${db.serverVersion} (${db.settings}); database ${db.name}`);
    console.log(`cache on: ${o.redisUrl ? `Redis ${new URL(o.redisUrl).host}` : 'in-process LRU'}; ${num(o.events)} events`);
    const base = {
      DATABASE_URL: db.url,
      AUDIT_SIGNING_KEY: signerKey,
      AUDIT_BOOTSTRAP_API_KEY: key,
      AUDIT_LOG_ORIGIN: 'bench.audit',
      AUDIT_ROLE: 'api',
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      HTTP_BODY_LIMIT_BYTES: String(16 * 1024 * 1024),
    };
    const runs: Array<[string, Run]> = [];
    let ids: string[] = [];
    for (const [label, env] of [
      ['cache off', { ...base, CACHE_TTL_SECONDS: '0' }],
      ['cache on', { ...base, CACHE_TTL_SECONDS: '300', CACHE_KEY_PREFIX: `bench:${randomBytes(4).toString('hex')}:`, ...(o.redisUrl ? { REDIS_URL: o.redisUrl } : {}) }],
    ] as Array<[string, Record<string, string>]>) {
      const srv = await startServer(env);
      try {
        if (ids.length === 0) {
          section(`Fill to ${num(o.events)} events (bulk API, 1000 per request, ${o.clients} clients)`);
          ids = await fill(srv, key, o);
        }
        runs.push([label, await measure(srv, key, ids, o, label)]);
      } finally {
        await srv.stop();
      }
    }

    section(`Results at ${num(o.events)} events (latency in ms, server CPU per request from /proc/<pid>/stat)`);
    const rows: string[][] = [];
    for (const [label, run] of runs) {
      for (const [name, p] of [['stats', run.stats], ['getById', run.getById], ['read mix', run.mix]] as Array<[string, Phase]>) {
        rows.push([label, name, num(p.requests), ms(p.latency!.p50), ms(p.latency!.p95), ms(p.latency!.p99), `${((p.cpuSeconds * 1e6) / p.requests).toFixed(0)} µs`]);
      }
    }
    console.log(formatTable(['server', 'phase', 'requests', 'p50', 'p95', 'p99', 'CPU/request'], rows));
    const on = runs.find(([l]) => l === 'cache on')![1];
    const off = runs.find(([l]) => l === 'cache off')![1];
    console.log('\nhit ratio under the read mix (cache on):');
    for (const [cache, { hits, misses }] of on.hitRatio) {
      console.log(`  ${cache.padEnd(11)} ${num(hits)} hits / ${num(hits + misses)} lookups = ${hits + misses === 0 ? 'n/a' : `${((100 * hits) / (hits + misses)).toFixed(1)} %`}`);
    }
    console.log(`\nstats p95: ${ms(off.stats.latency!.p95)} off → ${ms(on.stats.latency!.p95)} on; getById p95: ${ms(off.getById.latency!.p95)} off → ${ms(on.getById.latency!.p95)} on`);
    const met = on.stats.latency!.p95 <= 2;
    console.log(`target: cached stats p95 ≤ 2 ms at ${num(o.events)} events: ${ms(on.stats.latency!.p95)} — ${met ? 'met' : 'NOT met'}`);
  } finally {
    if (db && !o.keep) await db.drop();
    else if (db) console.log(`kept database ${db.name}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
