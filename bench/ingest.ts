/**
 * `npm run bench` / `npm run bench:ingest`: the ingestion benchmark, against a
 * real PostgreSQL and the real server started as a child process. One run prints:
 *
 *  1. raw baseline: the same rows through node-postgres multi-row INSERTs (batches of 500),
 *  2. batched HTTP ingestion (`POST /api/v1/events/bulk`, batches of 500, several clients) over
 *     the same events, and its ratio to (1),
 *  3. the fill up to `--events` (default 1,000,000) through the same bulk API, as fast as possible,
 *  4. single-event ingestion (`POST /api/v1/events`, 32 concurrent clients): events/s, p50, p99,
 *  5. inclusion-proof latency at the full tree size (sequential requests): p50/p95/p99,
 *  6. filtered-query latency at the full event count (sequential requests): p50/p95/p99,
 *  7. the server's resident memory (VmRSS of the child process) per phase,
 *
 * then a summary of every target with the figure and met/not met. It never fails because a target
 * is missed (docs/architecture.md §9: benchmarks print figures); it exits non-zero only when something is
 * actually broken (the server dies, a request is rejected, a proof does not verify).
 *
 * Every loop is bounded by a request count; all traffic goes to 127.0.0.1.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  generateSignerKey,
  openCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  verifyInclusion,
} from '../server/src/ledger';
import { runBounded } from './lib/concurrency';
import { createBenchDatabase, type BenchDatabase } from './lib/database';
import { HttpClient, expectStatus, type HttpResult } from './lib/http-client';
import { runRawBaseline, type RawBaselineResult } from './lib/raw-baseline';
import { REPO_ROOT, RssSampler, sampleProcess, sampleThreads, startServer, type ServerProcess } from './lib/server-process';
import { formatTable, mib, ms, num, section } from './lib/report';
import { nowMs, rate, summarize, type LatencySummary } from './lib/stats';
import { ACTIONS, bulkBody, makeEvent, prng } from './lib/workload';

const HELP = `Usage: npm run bench:ingest -- [options]

  --events N          events in the log for the proof and query phases (default 1000000)
  --quick             small run: --events 20000 and fewer requests in every phase
  --timed N           events in the timed batched phase and the raw baseline (default min(events, 100000))
  --batch N           events per bulk request / rows per INSERT in the timed phase (default 500)
  --clients N         concurrent bulk clients and raw-baseline connections (default 4)
  --fill-batch N      events per bulk request while filling up to --events (default 1000)
  --single N          single-event requests (default 20000, quick 2000)
  --single-clients N  concurrent single-event clients (default 32)
  --proofs N          sequential inclusion-proof requests (default 500, quick 200)
  --queries N         sequential filtered queries, spread over the query shapes (default 600, quick 240)
  --seed N            workload seed (default 1)
  --database-url URL  maintenance connection of the local cluster
                      (default $BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  --redis-url URL     pass REDIS_URL to the server (default: none, in-process cache)
  --server-cpu-prof DIR  run the server with --cpu-prof and write its V8 CPU profile to DIR on exit
  --server-node-arg A a node option for the server process (repeatable), e.g. --max-semi-space-size=8
  --compiled          build the server (npm run build -w server) and run server/dist/main.js, as the
                      image does, instead of the sources through tsx (RSS without the tsx loader)
  --receipts MODE     receipts of the bulk phases: compact (default; the checkpoint once, no proofs) or
                      full (a checkpoint and an inclusion proof per event)
  --role ROLE         AUDIT_ROLE of the server: api (default; the API pods of a deployment) or all
                      (api + the worker's partition upkeep and periodic self-audit)
  --keep              keep the audit_bench_* database and print its name
  --help              this text
`;

interface Options {
  events: number;
  quick: boolean;
  timed: number;
  batch: number;
  clients: number;
  fillBatch: number;
  single: number;
  singleClients: number;
  proofs: number;
  queries: number;
  seed: number;
  databaseUrl: string;
  redisUrl: string | undefined;
  keep: boolean;
  serverCpuProf: string | undefined;
  serverNodeArgs: string[];
  role: 'api' | 'all';
  receipts: 'full' | 'compact';
  compiled: boolean;
}

function fail(message: string): never {
  throw new Error(message);
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      events: { type: 'string' },
      quick: { type: 'boolean', default: false },
      timed: { type: 'string' },
      batch: { type: 'string' },
      clients: { type: 'string' },
      'fill-batch': { type: 'string' },
      single: { type: 'string' },
      'single-clients': { type: 'string' },
      proofs: { type: 'string' },
      queries: { type: 'string' },
      seed: { type: 'string' },
      'database-url': { type: 'string' },
      'redis-url': { type: 'string' },
      keep: { type: 'boolean', default: false },
      'server-cpu-prof': { type: 'string' },
      'server-node-arg': { type: 'string', multiple: true },
      role: { type: 'string', default: 'api' },
      receipts: { type: 'string', default: 'compact' },
      compiled: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return null;
  const int = (name: string, v: string | undefined, dflt: number, min: number, max: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v.replace(/_/g, ''));
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${v}`);
    return n;
  };
  const quick = values.quick;
  const events = int('events', values.events, quick ? 20_000 : 1_000_000, 1_000, 50_000_000);
  return {
    events,
    quick,
    timed: int('timed', values.timed, Math.min(events, 100_000), 500, events),
    batch: int('batch', values.batch, 500, 1, 1000),
    clients: int('clients', values.clients, 4, 1, 64),
    fillBatch: int('fill-batch', values['fill-batch'], 1000, 1, 1000),
    single: int('single', values.single, quick ? 2_000 : 20_000, 100, 1_000_000),
    singleClients: int('single-clients', values['single-clients'], 32, 1, 256),
    proofs: int('proofs', values.proofs, quick ? 200 : 500, 10, 100_000),
    queries: int('queries', values.queries, quick ? 240 : 600, 10, 100_000),
    seed: int('seed', values.seed, 1, 0, 2 ** 31 - 1),
    databaseUrl: values['database-url'] ?? process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: values['redis-url'],
    keep: values.keep,
    serverCpuProf: values['server-cpu-prof'],
    serverNodeArgs: values['server-node-arg'] ?? [],
    role: values.role === 'all' ? 'all' : values.role === 'api' ? 'api' : fail(`--role must be api or all, got ${values.role}`),
    compiled: values.compiled,
    receipts: values.receipts === 'full' || values.receipts === 'compact' ? values.receipts : fail(`--receipts must be full or compact, got ${values.receipts}`),
  };
}

/** What a phase cost: wall seconds, CPU seconds of the server, its PostgreSQL backends and this client. */
interface PhaseCpu {
  wallS: number;
  serverCpuS: number;
  /** The server's CPU seconds by thread (`main`: where JavaScript runs; the others by name). */
  serverThreads: Map<string, number>;
  /** CPU of the server's PostgreSQL backends (/proc/<backend pid>/stat), null when unreadable. */
  postgresCpuS: number | null;
  clientCpuS: number;
  /** Group commits of the phase and the cluster's WAL writes/syncs meanwhile; null when not read. */
  commits: CommitCounters | null;
}

/**
 * CPU seconds of the server's PostgreSQL backends: the pids of the benchmark database's sessions
 * (pg_stat_activity, this session excluded), each read from /proc/<pid>/stat. A backend that
 * appears during a phase counts from zero; one that exits during it is lost (the server's pool
 * keeps its connections, so that is rare). Shared processes (WAL writer, checkpointer) are not
 * included. Null when procfs does not show the cluster's processes (another host or container).
 */
class PostgresCpu {
  private constructor(private readonly client: pg.Client) {}

  static async open(url: string): Promise<PostgresCpu> {
    const client = new pg.Client({ connectionString: url, application_name: 'audit-bench-cpu' });
    await client.connect();
    return new PostgresCpu(client);
  }

  /** CPU seconds per backend pid now. */
  async sample(): Promise<Map<number, number> | null> {
    const { rows } = await this.client.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name NOT LIKE 'audit-bench%'`,
    );
    const out = new Map<number, number>();
    for (const { pid } of rows) {
      try {
        out.set(pid, sampleProcess(pid).cpuSeconds);
      } catch {
        return null; // not visible from here
      }
    }
    return out;
  }

  /** pg_stat_wal counters (cluster-wide), null before PostgreSQL 14. */
  async wal(): Promise<{ syncs: number; writes: number; bytes: number } | null> {
    try {
      const { rows } = await this.client.query<{ wal_sync: string; wal_write: string; wal_bytes: string }>('SELECT wal_sync, wal_write, wal_bytes FROM pg_stat_wal');
      const r = rows[0];
      return r ? { syncs: Number(r.wal_sync), writes: Number(r.wal_write), bytes: Number(r.wal_bytes) } : null;
    } catch {
      return null;
    }
  }

  close(): Promise<void> {
    return this.client.end();
  }
}

let postgresCpu: PostgresCpu | null = null;

/** Group commits (the server's audit_ingest_batch_size histogram) and the cluster's WAL activity. */
interface CommitCounters {
  transactions: number;
  events: number;
  /** pg_stat_wal (PostgreSQL 14+), cluster-wide: other databases' work is included. */
  walSyncs: number | null;
  walWrites: number | null;
  walBytes: number | null;
}

async function commitCounters(url: string | undefined): Promise<CommitCounters | null> {
  if (!url) return null;
  const metrics = new HttpClient(url, '', 1);
  try {
    const res = await metrics.get('/metrics');
    if (res.status !== 200) return null;
    const value = (name: string) => Number(new RegExp(`^${name}(?:\\{\\})? (\\S+)$`, 'm').exec(res.body)?.[1] ?? NaN);
    const wal = postgresCpu ? await postgresCpu.wal() : null;
    return {
      transactions: value('audit_ingest_batch_size_count'),
      events: value('audit_ingest_batch_size_sum'),
      walSyncs: wal?.syncs ?? null,
      walWrites: wal?.writes ?? null,
      walBytes: wal?.bytes ?? null,
    };
  } catch {
    return null;
  } finally {
    metrics.close();
  }
}

/** CPU seconds of the server child, its PostgreSQL backends and this (client) process, and wall time, over one phase. */
class PhaseMeter {
  private readonly wall0 = nowMs();
  private readonly server0: number;
  private readonly threads0: Map<string, number>;
  private readonly client0 = process.cpuUsage();
  private postgres0: Promise<Map<number, number> | null>;
  private commits0: Promise<CommitCounters | null>;

  /** `url`: the server, whose /metrics give the group commits of the phase. */
  constructor(
    private readonly pid: number,
    private readonly url?: string,
  ) {
    this.server0 = sampleProcess(pid).cpuSeconds;
    this.threads0 = sampleThreads(pid);
    this.postgres0 = postgresCpu ? postgresCpu.sample() : Promise.resolve(null);
    this.commits0 = commitCounters(url);
  }

  /** Wall seconds, server CPU seconds, PostgreSQL backend CPU seconds and client CPU seconds since construction. */
  async read(): Promise<PhaseCpu> {
    const c = process.cpuUsage(this.client0);
    const wallS = (nowMs() - this.wall0) / 1000;
    const serverCpuS = sampleProcess(this.pid).cpuSeconds - this.server0;
    const threads = new Map<string, number>();
    for (const [name, s] of sampleThreads(this.pid)) threads.set(name, s - (this.threads0.get(name) ?? 0));
    const [before, after] = [await this.postgres0, postgresCpu ? await postgresCpu.sample() : null];
    let postgresCpuS: number | null = null;
    if (before && after) {
      postgresCpuS = 0;
      for (const [pid, s] of after) postgresCpuS += s - (before.get(pid) ?? 0);
    }
    const [c0, c1] = [await this.commits0, await commitCounters(this.url)];
    let commits: PhaseCpu['commits'] = null;
    if (c0 && c1 && Number.isFinite(c1.transactions - c0.transactions)) {
      const d = (k: 'walSyncs' | 'walWrites' | 'walBytes') => (c0[k] === null || c1[k] === null ? null : c1[k] - c0[k]);
      commits = { transactions: c1.transactions - c0.transactions, events: c1.events - c0.events, walSyncs: d('walSyncs'), walWrites: d('walWrites'), walBytes: d('walBytes') };
    }
    return { wallS, serverCpuS, serverThreads: threads, postgresCpuS, clientCpuS: (c.user + c.system) / 1e6, commits };
  }
}

/** µs per unit of work. */
function perUnit(seconds: number, units: number): string {
  return `${((seconds * 1e6) / units).toFixed(0)} µs`;
}

function cpuLine(m: PhaseCpu, events?: number): string {
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const per = (s: number) => (events ? ` = ${perUnit(s, events)}/event` : '');
  const postgres = m.postgresCpuS === null ? 'PostgreSQL backends: not visible' : `PostgreSQL backends ${m.postgresCpuS.toFixed(1)} s${per(m.postgresCpuS)}`;
  const threads = [...m.serverThreads].filter(([, s]) => s > 0).sort((a, b) => b[1] - a[1]);
  const threadLine = events && threads.length > 0 ? `\nserver threads: ${threads.map(([n, s]) => `${n} ${perUnit(s, events)}`).join(', ')}` : '';
  const k = m.commits;
  const commits =
    k && k.transactions > 0
      ? `\ngroup commits: ${num(k.transactions)} transactions, ${(k.events / k.transactions).toFixed(1)} events each` +
        (k.walSyncs !== null ? ` · WAL (whole cluster): ${num(k.walSyncs)} syncs = ${(k.walSyncs / k.transactions).toFixed(2)} per transaction, ${num(k.walWrites ?? 0)} writes, ${((k.walBytes ?? 0) / 1024 / 1024).toFixed(1)} MiB` : '')
      : '';
  return (
    `wall ${m.wallS.toFixed(1)} s · server CPU ${m.serverCpuS.toFixed(1)} s${per(m.serverCpuS)} (${((100 * m.serverCpuS) / m.wallS).toFixed(0)}% of a core) · ` +
    `${postgres} · client CPU ${m.clientCpuS.toFixed(1)} s · load ${load}${threadLine}${commits}`
  );
}

/** Parses the counts at the start of a bulk response without parsing ~1 KB of receipt per event. */
function bulkCounts(res: HttpResult): { accepted: number; rejected: number } {
  const m = /^\{"accepted":(\d+),"rejected":(\d+)/.exec(res.body);
  if (m) return { accepted: Number(m[1]), rejected: Number(m[2]) };
  const parsed = JSON.parse(res.body) as { accepted: number; rejected: number };
  return { accepted: parsed.accepted, rejected: parsed.rejected };
}

interface BulkResult {
  events: number;
  requests: number;
  elapsedMs: number;
  eventsPerSecond: number;
  requestLatency: LatencySummary;
  /** Mean size of a bulk response body, bytes. */
  meanResponseBytes: number;
  cpu: PhaseCpu;
}

/** Sends events [start, end) as bulk requests of `batch` over `clients` concurrent connections. */
async function bulkIngest(
  url: string,
  apiKey: string,
  pid: number,
  seed: number,
  start: number,
  end: number,
  batch: number,
  clients: number,
  receipts: 'full' | 'compact',
  progressEvery = 0,
): Promise<BulkResult> {
  const http = new HttpClient(url, apiKey, clients);
  const requests = Math.ceil((end - start) / batch);
  const latencies: number[] = [];
  const meter = new PhaseMeter(pid, url);
  const started = nowMs();
  let done = 0;
  let responseBytes = 0;
  let nextReport = progressEvery;
  try {
    await runBounded(requests, clients, async (r) => {
      const from = start + r * batch;
      const count = Math.min(batch, end - from);
      const res = await http.post('/api/v1/events/bulk', bulkBody(seed, from, count, receipts));
      expectStatus(res, 200, `bulk request for events ${from}…${from + count - 1}`);
      const { accepted, rejected } = bulkCounts(res);
      if (accepted !== count || rejected !== 0) {
        throw new Error(`bulk request for events ${from}…: accepted ${accepted}, rejected ${rejected} of ${count}: ${res.body.slice(0, 300)}`);
      }
      latencies.push(res.ms);
      responseBytes += Buffer.byteLength(res.body);
      done += count;
      if (progressEvery > 0 && done >= nextReport && done < end - start) {
        nextReport += progressEvery;
        const t = nowMs() - started;
        const eta = ((end - start - done) * t) / done / 1000;
        console.log(`  … ${num(start + done)} events in the log, ${num(rate(done, t))} events/s, about ${eta.toFixed(0)} s to go · load ${os.loadavg()[0]!.toFixed(2)}`);
      }
    });
  } finally {
    http.close();
  }
  const elapsedMs = nowMs() - started;
  return {
    events: end - start,
    requests,
    elapsedMs,
    eventsPerSecond: rate(end - start, elapsedMs),
    requestLatency: summarize(latencies),
    meanResponseBytes: responseBytes / Math.max(1, requests),
    cpu: await meter.read(),
  };
}

interface SingleResult {
  events: number;
  /** Unmeasured warm-up requests sent before the timed ones. */
  warmup: number;
  clients: number;
  elapsedMs: number;
  eventsPerSecond: number;
  latency: LatencySummary;
  cpu: PhaseCpu;
}

/** `count` single-event POSTs over `clients` concurrent keep-alive connections. */
async function singleIngest(
  url: string,
  apiKey: string,
  pid: number,
  seed: number,
  firstEvent: number,
  count: number,
  clients: number,
): Promise<SingleResult> {
  const http = new HttpClient(url, apiKey, clients);
  const latencies: number[] = [];
  try {
    // Warm-up: open every connection and let the JIT see the path (not measured).
    const warm = clients * 5;
    await runBounded(warm, clients, async (i) => {
      const res = await http.post('/api/v1/events', JSON.stringify(makeEvent(seed, firstEvent + i)));
      expectStatus(res, 201, 'single-event warm-up');
    });
    const meter = new PhaseMeter(pid, url);
    const started = nowMs();
    await runBounded(count, clients, async (i) => {
      const res = await http.post('/api/v1/events', JSON.stringify(makeEvent(seed, firstEvent + warm + i)));
      expectStatus(res, 201, `single event ${firstEvent + warm + i}`);
      latencies.push(res.ms);
    });
    const elapsedMs = nowMs() - started;
    return { events: count, warmup: warm, clients, elapsedMs, eventsPerSecond: rate(count, elapsedMs), latency: summarize(latencies), cpu: await meter.read() };
  } finally {
    http.close();
  }
}

/** What the server appended by itself after a phase's last answer (detector alerts and the like). */
interface Settled {
  /** Leaves appended after the phase's last answer, before the log stopped growing. */
  appended: number;
  seconds: number;
  serverCpuS: number;
}

/**
 * Waits until the log stops growing (the same tree size for 1 s, at most 120 s): the server
 * appends events of its own after a phase (the detectors' alerts run off the append path), and
 * that work should neither be charged to the next phase nor run under its measurements.
 */
async function settle(url: string, apiKey: string, pid: number, expectedSize: number): Promise<Settled> {
  const http = new HttpClient(url, apiKey, 1);
  const meter = new PhaseMeter(pid);
  const size = async () => {
    const res = await http.get('/api/v1/ledger/checkpoint');
    expectStatus(res, 200, 'checkpoint');
    return (JSON.parse(res.body) as { treeSize: number }).treeSize;
  };
  try {
    let last = await size();
    let stableSince = nowMs();
    const started = nowMs();
    while (nowMs() - stableSince < 1000 && nowMs() - started < 120_000) {
      await new Promise((r) => setTimeout(r, 200));
      const now = await size();
      if (now !== last) {
        last = now;
        stableSince = nowMs();
      }
    }
    const cpu = await meter.read();
    return { appended: last - expectedSize, seconds: cpu.wallS, serverCpuS: cpu.serverCpuS };
  } finally {
    http.close();
  }
}

function settledLine(s: Settled): string {
  return `after the phase: the server appended ${num(s.appended)} events of its own; the log settled in ${s.seconds.toFixed(1)} s (server CPU ${s.serverCpuS.toFixed(1)} s, not counted above)`;
}

/**
 * Server CPU per request of requests that do no ingest work, over the same 32 keep-alive clients
 * as the single-event phase: `GET /health` (the app's first middleware and a router, no
 * credential) and `GET /api/v1/ledger/checkpoint` (credential, the /api/v1 middleware chain, the
 * operation table's route, a read-cache hit). Against the single-event figure they split what a
 * single event costs into the HTTP stack's share and the ingest's.
 */
async function requestFloor(url: string, apiKey: string, pid: number, clients: number, count: number): Promise<Array<{ path: string; cpu: PhaseCpu; perSecond: number }>> {
  const http = new HttpClient(url, apiKey, clients);
  const out: Array<{ path: string; cpu: PhaseCpu; perSecond: number }> = [];
  try {
    for (const p of ['/health', '/api/v1/ledger/checkpoint']) {
      await runBounded(clients * 5, clients, async () => expectStatus(await http.get(p), 200, `warm-up ${p}`));
      const meter = new PhaseMeter(pid);
      const started = nowMs();
      await runBounded(count, clients, async () => expectStatus(await http.get(p), 200, p));
      out.push({ path: p, cpu: await meter.read(), perSecond: rate(count, nowMs() - started) });
    }
  } finally {
    http.close();
  }
  return out;
}

interface ProofResult {
  treeSize: number;
  requests: number;
  latency: LatencySummary;
  verified: number;
}

/**
 * `count` sequential inclusion proofs of uniformly random leaves at the current size; afterwards
 * (outside the timing) every proof is verified against the signed checkpoint of that size
 * (RFC 9162 §2.1.3.2), so the latency is that of correct answers.
 */
async function proofLatency(url: string, apiKey: string, signerKey: string, seed: number, count: number): Promise<ProofResult> {
  const http = new HttpClient(url, apiKey, 1);
  try {
    const cp = await http.get('/api/v1/ledger/checkpoint');
    expectStatus(cp, 200, 'checkpoint');
    const { treeSize, rootHash, note } = JSON.parse(cp.body) as { treeSize: number; rootHash: string; note: string };
    const verifier = parseSignerKey(signerKey).verifierKey;
    const { checkpoint } = openCheckpoint(note, [parseVerifierKey(verifier)]);
    if (checkpoint.size !== treeSize || !checkpoint.rootHash.equals(Buffer.from(rootHash, 'base64'))) {
      throw new Error('checkpoint note does not match the checkpoint fields');
    }
    const r = prng(seed ^ 0x5eed);
    for (let i = 0; i < 20; i++) {
      expectStatus(await http.get(`/api/v1/ledger/proofs/inclusion?leafIndex=${Math.floor(r() * treeSize)}&treeSize=${treeSize}`), 200, 'proof warm-up');
    }
    const latencies: number[] = [];
    const answers: Array<{ index: number; body: string }> = [];
    for (let i = 0; i < count; i++) {
      const index = Math.floor(r() * treeSize);
      // At the checkpoint's size: the log may grow while proofs are asked for (the server appends
      // events of its own, e.g. detector alerts), and a proof without treeSize is at the current one.
      const res = await http.get(`/api/v1/ledger/proofs/inclusion?leafIndex=${index}&treeSize=${treeSize}`);
      expectStatus(res, 200, `inclusion proof of leaf ${index}`);
      latencies.push(res.ms);
      answers.push({ index, body: res.body });
    }
    for (const { index, body } of answers) {
      const p = JSON.parse(body) as { leafIndex: number; treeSize: number; leafHash: string; hashes: string[] };
      if (p.leafIndex !== index || p.treeSize !== treeSize) throw new Error(`proof of leaf ${index} at ${treeSize} answers for ${p.leafIndex}@${p.treeSize}`);
      verifyInclusion(
        Buffer.from(p.leafHash, 'base64'),
        index,
        treeSize,
        p.hashes.map((h) => Buffer.from(h, 'base64')),
        checkpoint.rootHash,
      );
    }
    return { treeSize, requests: count, latency: summarize(latencies), verified: answers.length };
  } finally {
    http.close();
  }
}

interface QueryShapeResult {
  name: string;
  example: string;
  latency: LatencySummary;
  emptyPages: number;
  meanItems: number;
}

/**
 * Sequential filtered queries (limit 50, newest first) in several shapes, interleaved round-robin
 * so that no shape profits from a cache another shape warmed just before. Filter values are taken
 * from events that exist, so every page has something to find.
 */
async function queryLatency(
  url: string,
  apiKey: string,
  seed: number,
  totalEvents: number,
  count: number,
  window: { from: number; to: number },
  variant: number,
): Promise<{ shapes: QueryShapeResult[]; overall: LatencySummary }> {
  const r = prng((seed ^ 0x9e77) + variant); // `variant` picks other filter values from the same events
  const existing = () => makeEvent(seed, Math.floor(r() * totalEvents));
  const iso = (t: number) => new Date(t).toISOString();
  const q = encodeURIComponent;
  const shapes: Array<{ name: string; next: () => string }> = [
    {
      name: 'actions (2) + patientIds',
      next: () => {
        const e = existing();
        const other = ACTIONS[Math.floor(r() * 4)]!;
        return `actions=${q(e.action)},${q(other === e.action ? 'data.write' : other)}&patientIds=${q(e.patientId ?? 'patient-000001')}`;
      },
    },
    { name: 'principalIds', next: () => `principalIds=${q(existing().principalId)}` },
    {
      name: 'targetResourceTypes + targetResourceIds',
      next: () => {
        const e = existing();
        return `targetResourceTypes=${q(e.targetResourceType)}&targetResourceIds=${q(e.targetResourceId)}`;
      },
    },
    { name: 'dataClassifications + statuses', next: () => `dataClassifications=PHI,CONFIDENTIAL&statuses=failure` },
    {
      name: 'actions + from/to (1 min window)',
      next: () => {
        const start = window.from + Math.floor(r() * Math.max(1, window.to - window.from - 60_000));
        return `actions=${q(existing().action)}&from=${q(iso(start))}&to=${q(iso(start + 60_000))}`;
      },
    },
    { name: 'correlationIds', next: () => `correlationIds=${q(existing().correlationId)}` },
  ];
  const http = new HttpClient(url, apiKey, 1);
  const per = shapes.map(() => ({ latencies: [] as number[], empty: 0, items: 0, example: '' }));
  const all: number[] = [];
  try {
    for (const s of shapes) expectStatus(await http.get(`/api/v1/events?${s.next()}&limit=50`), 200, `query warm-up (${s.name})`);
    for (let i = 0; i < count; i++) {
      const k = i % shapes.length;
      const path = `/api/v1/events?${shapes[k]!.next()}&limit=50`;
      const res = await http.get(path);
      expectStatus(res, 200, `query ${path}`);
      const page = JSON.parse(res.body) as { items: unknown[] };
      const acc = per[k]!;
      acc.latencies.push(res.ms);
      all.push(res.ms);
      acc.items += page.items.length;
      if (page.items.length === 0) acc.empty++;
      if (acc.example === '') acc.example = path;
    }
  } finally {
    http.close();
  }
  return {
    shapes: shapes.map((s, k) => ({
      name: s.name,
      example: per[k]!.example,
      latency: summarize(per[k]!.latencies),
      emptyPages: per[k]!.empty,
      meanItems: per[k]!.items / Math.max(1, per[k]!.latencies.length),
    })),
    overall: summarize(all),
  };
}

function latencyRow(name: string, l: LatencySummary, extra = ''): string[] {
  return [name, num(l.count), ms(l.p50), ms(l.p95), ms(l.p99), ms(l.max), extra];
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options === null) {
    process.stdout.write(HELP);
    return;
  }
  const o = options;
  const mem = os.totalmem();
  section('SMEDREC Audit ingestion benchmark');
  console.log(`node ${process.version} · ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}) · ${mib(mem)} RAM · load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(
    'NOTE: the benchmark client, the server and PostgreSQL share this machine\'s cores; every figure\n' +
      'includes the client\'s CPU use and whatever else the machine is running (see the load averages).',
  );
  console.log(
    `plan: ${num(o.events)} events (timed batched phase ${num(o.timed)} in batches of ${o.batch} over ${o.clients} clients, ` +
      `fill in batches of ${o.fillBatch}); ${num(o.single)} single events over ${o.singleClients} clients; ` +
      `${num(o.proofs)} proofs; ${num(o.queries)} queries${o.quick ? ' (--quick)' : ''}`,
  );

  // Phase boundaries on the monotonic clock (µs), which is the clock of V8's CPU profile: with
  // --server-cpu-prof they are written beside the profile so it can be cut into phases
  // (bench/profile-summary.ts).
  const marks: Array<{ phase: string; us: number }> = [];
  const mark = (phase: string) => marks.push({ phase, us: Number(process.hrtime.bigint() / 1000n) });
  let database: BenchDatabase | null = null;
  let server: ServerProcess | null = null;
  let sampler: RssSampler | null = null;
  // Runs once: a Ctrl-C also reaches the server (same process group), so the failing request and
  // the signal handler both get here; two concurrent DROP DATABASE calls could leave the database.
  let stopping: Promise<void> | null = null;
  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      sampler?.stop();
      await postgresCpu?.close().catch(() => undefined);
      postgresCpu = null;
      if (server) {
        const how = await server.stop();
        if (how !== 'exit 0') console.log(`server stopped: ${how}`);
        server = null;
      }
      if (database) {
        if (o.keep) console.log(`kept database ${database.name} (${database.url})`);
        else await database.drop();
        database = null;
      }
    })());
  const onSignal = () => {
    console.log('\ninterrupted: stopping the server and dropping the database');
    stopAll().then(
      () => process.exit(130),
      (err: unknown) => {
        console.error(`clean-up failed: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(130);
      },
    );
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    database = await createBenchDatabase(o.databaseUrl);
    console.log(`PostgreSQL ${database.serverVersion}, database ${database.name}; ${database.settings}`);
    const { signerKey } = generateSignerKey('bench.audit');
    const apiKey = `bench_${randomBytes(24).toString('base64url')}`;
    const env: Record<string, string> = {
      NODE_ENV: 'production',
      AUDIT_ROLE: o.role,
      DATABASE_URL: database.url,
      AUDIT_SIGNING_KEY: signerKey,
      AUDIT_BOOTSTRAP_API_KEY: apiKey,
      AUDIT_BOOTSTRAP_ORG_NAME: 'bench',
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
    };
    if (o.redisUrl) env.REDIS_URL = o.redisUrl;
    if (o.compiled) {
      const build = spawnSync('npm', ['run', 'build', '-w', 'server'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
      if (build.status !== 0) throw new Error('npm run build -w server failed');
    }
    const t0 = nowMs();
    server = await startServer(env, {
      compiled: o.compiled,
      nodeArgs: [...o.serverNodeArgs, ...(o.serverCpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(o.serverCpuProf)}`] : [])],
    });
    if (o.serverCpuProf) console.log(`server CPU profile will be written to ${path.resolve(o.serverCpuProf)} (profiling slows the server)`);
    const srv: ServerProcess = server;
    if (o.serverNodeArgs.length > 0) console.log(`server node options: ${o.serverNodeArgs.join(' ')}`);
    console.log(`server (AUDIT_ROLE=${o.role}, ${o.compiled ? 'compiled: server/dist/main.js' : 'sources through tsx'}) pid ${srv.pid} at ${srv.url} ready in ${((nowMs() - t0) / 1000).toFixed(1)} s (migrations applied on start)`);
    sampler = new RssSampler(srv.pid);
    sampler.start();
    const rss = sampler;

    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const org = (await admin.query<{ id: string }>('SELECT id FROM organizations LIMIT 1')).rows[0]?.id;
    await admin.end();
    if (!org) throw new Error('the server did not bootstrap an organization');

    // 1. Raw baseline.
    section(`1. Raw baseline: ${num(o.timed)} rows, multi-row INSERT of ${o.batch} through node-postgres, ${o.clients} connections`);
    rss.enter('raw baseline');
    const raw: RawBaselineResult = await runRawBaseline({
      url: database.url,
      organizationId: org,
      seed: o.seed,
      rows: o.timed,
      batchSize: o.batch,
      connections: o.clients,
    });
    console.log(
      'compared: bench_raw = CREATE TABLE (LIKE events INCLUDING ALL) — same columns, primary key and 7 filter\n' +
        'indexes, not partitioned, no ledger tables; rows = the same events, values computed as the server does\n' +
        `(${(raw.prepareMs / 1000).toFixed(1)} s, before the clock). Timed: parameters → INSERT → autocommit.`,
    );
    console.log(`${num(raw.rows)} rows in ${(raw.elapsedMs / 1000).toFixed(2)} s = ${num(raw.rowsPerSecond)} rows/s; INSERT of ${o.batch}: p50 ${ms(raw.batchLatency.p50)}, p99 ${ms(raw.batchLatency.p99)}`);

    postgresCpu = await PostgresCpu.open(database.url);
    // 2. Batched HTTP ingestion over the same events.
    section(`2. Batched HTTP ingestion: POST /api/v1/events/bulk, ${o.batch} events per request, ${o.clients} clients, receipts ${o.receipts}`);
    rss.enter('batched HTTP');
    mark('batched');
    const batched = await bulkIngest(srv.url, apiKey, srv.pid, o.seed, 0, o.timed, o.batch, o.clients, o.receipts);
    mark('settle');
    const ratio = batched.eventsPerSecond / raw.rowsPerSecond;
    console.log(
      `${num(batched.events)} events in ${(batched.elapsedMs / 1000).toFixed(2)} s = ${num(batched.eventsPerSecond)} events/s ` +
        `(${ratio.toFixed(2)}× the raw baseline); request p50 ${ms(batched.requestLatency.p50)}, p99 ${ms(batched.requestLatency.p99)}; ` +
        `response ${(batched.meanResponseBytes / 1024).toFixed(0)} KiB per request`,
    );
    console.log(cpuLine(batched.cpu, batched.events));
    let ownEvents = 0;
    const afterBatched = await settle(srv.url, apiKey, srv.pid, o.timed);
    ownEvents += afterBatched.appended;
    console.log(settledLine(afterBatched));

    // 3. Fill to --events.
    let fill: BulkResult | null = null;
    const fillFrom = nowMs();
    const windowStart = Date.now() - 60_000; // events of phase 2 were recorded within the last minutes
    if (o.events > o.timed) {
      section(`3. Fill to ${num(o.events)} events: bulk API, ${o.fillBatch} per request, ${o.clients} clients, as fast as possible`);
      rss.enter('fill');
      mark('fill');
      fill = await bulkIngest(srv.url, apiKey, srv.pid, o.seed, o.timed, o.events, o.fillBatch, o.clients, o.receipts, 100_000);
      console.log(
        `${num(fill.events)} events in ${(fill.elapsedMs / 1000).toFixed(1)} s = ${num(fill.eventsPerSecond)} events/s; ` +
          `request p50 ${ms(fill.requestLatency.p50)}, p99 ${ms(fill.requestLatency.p99)}`,
      );
      console.log(cpuLine(fill.cpu, fill.events));
      mark('settle');
      const afterFill = await settle(srv.url, apiKey, srv.pid, o.events + ownEvents);
      ownEvents += afterFill.appended;
      console.log(settledLine(afterFill));
    }
    const fillMs = nowMs() - fillFrom + batched.elapsedMs;
    console.log(`filling to ${num(o.events)} events took ${(fillMs / 1000).toFixed(1)} s in total (phases 2 + 3)`);
    const windowEnd = Date.now();

    // 4. Single events.
    section(`4. Single-event ingestion: POST /api/v1/events, ${o.singleClients} concurrent clients, ${num(o.single)} events`);
    rss.enter('single events');
    mark('single');
    const single = await singleIngest(srv.url, apiKey, srv.pid, o.seed, o.events, o.single, o.singleClients);
    console.log(
      `${num(single.events)} events in ${(single.elapsedMs / 1000).toFixed(2)} s = ${num(single.eventsPerSecond)} events/s; ` +
        `latency p50 ${ms(single.latency.p50)}, p95 ${ms(single.latency.p95)}, p99 ${ms(single.latency.p99)}, max ${ms(single.latency.max)}`,
    );
    console.log(cpuLine(single.cpu, single.events));
    mark('settle');
    const afterSingle = await settle(srv.url, apiKey, srv.pid, o.events + ownEvents + single.events + single.warmup);
    ownEvents += afterSingle.appended;
    console.log(settledLine(afterSingle));

    // 4b. What a request costs without ingest work.
    mark('floor');
    const floor = await requestFloor(srv.url, apiKey, srv.pid, o.singleClients, o.single);
    section(`4b. Requests without ingest work, ${o.singleClients} concurrent clients, ${num(o.single)} each (what the HTTP stack costs per request)`);
    for (const f of floor) console.log(`GET ${f.path}: ${num(f.perSecond)}/s · ${cpuLine(f.cpu, o.single).replace(/\/event/g, '/request')}`);

    // 5. Proofs.
    rss.enter('proofs');
    mark('proofs');
    const proofs = await proofLatency(srv.url, apiKey, signerKey, o.seed, o.proofs);
    section(`5. Inclusion proofs: ${num(proofs.requests)} sequential GET /api/v1/ledger/proofs/inclusion at ${num(proofs.treeSize)} leaves`);
    console.log(`all ${num(proofs.verified)} proofs verified against the signed checkpoint (RFC 9162 §2.1.3.2)`);
    console.log(formatTable(['', 'n', 'p50', 'p95', 'p99', 'max', ''], [latencyRow('inclusion proof', proofs.latency)]));

    // 6. Queries: once with the statistics the cluster's autovacuum left (none, when it is off),
    // once after VACUUM (ANALYZE) — what autovacuum does on its own shortly after a bulk load.
    rss.enter('queries');
    const window = { from: windowStart, to: windowEnd };
    const printQueries = (title: string, r: Awaited<ReturnType<typeof queryLatency>>) => {
      section(title);
      console.log(
        formatTable(
          ['filter', 'n', 'p50', 'p95', 'p99', 'max', 'items/page (empty)'],
          [
            ...r.shapes.map((s) => latencyRow(s.name, s.latency, `${s.meanItems.toFixed(1)} (${s.emptyPages})`)),
            latencyRow('all shapes', r.overall),
          ],
        ),
      );
    };
    const stats = new pg.Client({ connectionString: database.url, application_name: 'audit-bench-admin' });
    await stats.connect();
    let autovacuum = '?';
    let analyzed: { events: string | null };
    try {
      autovacuum = (await stats.query<{ autovacuum: string }>('SHOW autovacuum')).rows[0]?.autovacuum ?? '?';
      // pg_stat_user_tables(last_analyze, last_autoanalyze) of the partitions: were there any statistics?
      analyzed = (
        await stats.query<{ events: string | null }>(
          `SELECT max(greatest(last_analyze, last_autoanalyze))::text AS events FROM pg_stat_user_tables WHERE relname LIKE 'events%'`,
        )
      ).rows[0] ?? { events: null };
    } finally {
      await stats.end();
    }
    mark('queries');
    const asIs = await queryLatency(srv.url, apiKey, o.seed, o.events, o.queries, window, 0);
    printQueries(
      `6a. Filtered queries as ingested: ${num(o.queries)} sequential GET /api/v1/events (limit 50, newest first) at ${num(proofs.treeSize)} events` +
        `\n    (autovacuum=${autovacuum}; events last analyzed: ${analyzed.events ?? 'never'})`,
      asIs,
    );
    console.log(`example: ${asIs.shapes[0]?.example ?? ''}`);
    const vac = new pg.Client({ connectionString: database.url, application_name: 'audit-bench-admin' });
    await vac.connect();
    const vacStart = nowMs();
    try {
      await vac.query('VACUUM (ANALYZE) events, ledger_nodes');
    } finally {
      await vac.end();
    }
    const vacuumS = (nowMs() - vacStart) / 1000;
    const queries = await queryLatency(srv.url, apiKey, o.seed, o.events, o.queries, window, 1);
    printQueries(
      `6b. Filtered queries after VACUUM (ANALYZE) events, ledger_nodes (took ${vacuumS.toFixed(1)} s; autovacuum does this by itself after a bulk load)`,
      queries,
    );

    // 7. Memory.
    mark('idle');
    rss.enter('idle after load');
    await new Promise((r) => setTimeout(r, 1000));
    const last = rss.sample() ?? rss.latest();
    section('7. Server memory (VmRSS of the server process; PostgreSQL not included)');
    console.log(formatTable(['phase', 'peak RSS'], rss.peakByPhase().map(([p, b]) => [p, mib(b)])));
    const peak = Math.max(...rss.peakByPhase().map(([, b]) => b), last?.hwmBytes ?? 0);
    console.log(`now ${last ? mib(last.rssBytes) : '?'}, peak (VmHWM) ${last ? mib(last.hwmBytes) : '?'}`);

    // Summary.
    const at1M = o.events >= 1_000_000 ? '' : ` (at ${num(proofs.treeSize)}, target is at 1M)`;
    const bulkUs = (batched.cpu.serverCpuS * 1e6) / batched.events;
    const singleUs = (single.cpu.serverCpuS * 1e6) / single.events;
    const targets: Array<[string, string, string, boolean]> = [
      [`server CPU per event, bulk (${o.batch}/request, receipts ${o.receipts})`, '≤ 80 µs', `${bulkUs.toFixed(0)} µs`, bulkUs <= 80],
      [`server CPU per event, single (${o.singleClients} clients)`, '≤ 250 µs', `${singleUs.toFixed(0)} µs`, singleUs <= 250],
      ['batched ingestion vs raw baseline', '≥ 0.50×', `${ratio.toFixed(2)}× (${num(batched.eventsPerSecond)} / ${num(raw.rowsPerSecond)} per s)`, ratio >= 0.5],
      ['single events, throughput', '≥ 2,000/s', `${num(single.eventsPerSecond)}/s`, single.eventsPerSecond >= 2000],
      ['single events, p99 latency', '≤ 50 ms', ms(single.latency.p99), single.latency.p99 <= 50],
      ['inclusion proof p95' + at1M, '≤ 3 ms', ms(proofs.latency.p95), proofs.latency.p95 <= 3],
      ['filtered query p95, all shapes, analyzed' + (o.events >= 1_000_000 ? '' : ` (at ${num(o.events)})`), '≤ 20 ms', ms(queries.overall.p95), queries.overall.p95 <= 20],
      ['  … the same before ANALYZE (6a)', '≤ 20 ms', ms(asIs.overall.p95), asIs.overall.p95 <= 20],
      ['server RSS, peak', '≤ 200 MB', mib(peak), peak <= 200 * 1024 * 1024],
    ];
    const rows = targets.map(([name, goal, figure, met]) => [name, goal, figure, met ? 'met' : 'NOT met']);
    section('Summary');
    console.log(formatTable(['target', 'goal', 'measured', ''], rows));
    console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (1, 5, 15 min) on ${os.cpus().length} CPUs`);
    console.log('Figures are informative: this benchmark never fails on time.');
  } catch (err) {
    const out = server ? server.output() : '';
    console.error(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
    if (out) console.error(`last server output:\n${out}`);
    process.exitCode = 1;
  } finally {
    await stopAll();
    if (o.serverCpuProf && marks.length > 0) {
      const file = path.join(path.resolve(o.serverCpuProf), `phases-${Date.now()}.json`);
      fs.writeFileSync(file, JSON.stringify(marks));
      console.log(`phase boundaries: ${file}`);
    }
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

void main();
