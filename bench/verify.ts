/**
 * `npm run bench:verify`: offline verification and bundle export throughput.
 *
 *  1. builds a synthetic bundle of `--events` (default 1,000,000) realistic events, committed and
 *     signed exactly as the server does it (salts, commitments, leaves, a checkpoint every
 *     `--checkpoint-every` events with consistency proofs), written as NDJSON to a temp file;
 *  2. raw baseline: the same file read line by line and JSON.parse'd, nothing verified;
 *  3. verification: `audit-verify bundle` run in-process (the CLI's own code path) at each
 *     `--threads` value (default 1, 2, 4): wall events/s, events per CPU second of the whole process
 *     (all threads) and its ratio to the baseline, the main thread's CPU apart, the process RSS
 *     before/peak (flat memory), and whether the output is the same as the first run's;
 *  4. the same CLI as a child process (what an auditor runs, default --threads), wall time;
 *  5. export: a throw-away PostgreSQL database (or PGlite with `--pglite`) filled in-process with
 *     `--export-events` (default 100,000) events; a same-run baseline: the export's event pages
 *     read in-process with its own query, as rows and formatted into NDJSON lines (nothing sent);
 *     then the server as a child process and
 *     `GET /api/v1/ledger/export` read by a plain node:http client into a file: events/s, MB/s,
 *     server and PostgreSQL CPU from /proc, the server's RSS during the export; the exported
 *     bundle is verified too.
 *
 * Prints figures and never fails on time (docs/architecture.md §9); exits non-zero only when a bundle
 * does not verify or the server breaks.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { parseArgs } from 'node:util';
import { main as auditVerify, readLinesSync } from '../server/src/cli/audit-verify';
import { loadConfig } from '../server/src/config';
import { EVENT_FIELDS } from '../server/src/events/schema';
import {
  BUNDLE_FORMAT,
  CompactRange,
  commitField,
  formatBundleRecord,
  generateSignerKey,
  leafBytes,
  leafHash,
  newSalt,
  parseSignerKey,
  planConsistency,
  proveConsistency,
  signCheckpoint,
  type BundleRecord,
  type CommittedField,
  type NodeId,
} from '../server/src/ledger';
import { formatEventLine } from '../server/src/export/event-line';
import { eventLinePage } from '../server/src/export/repository';
import { createLogger } from '../server/src/observability/logger';
import { startRuntime } from '../server/src/runtime';
import { backendPids, createBenchDatabase, type BenchDatabase } from './lib/database';
import { formatTable, mib, num, section } from './lib/report';
import { cpuSecondsOf, sampleProcess, sampleThreads, startServer } from './lib/server-process';
import { makeEvent } from './lib/workload';
import { DEFAULT_EVENT_LIMITS } from '../server/src/events/limits';
import { eventInputSchemaFor, parseBulkItem } from '../server/src/events/schema';

const eventSchema = eventInputSchemaFor(DEFAULT_EVENT_LIMITS);

const HELP = `Usage: npm run bench:verify -- [options]

  --events N            events in the synthetic bundle (default 1000000)
  --checkpoint-every N  events per signed checkpoint in the synthetic bundle (default 1000)
  --threads LIST        audit-verify --threads values to run, comma-separated (default 1,2,4)
  --export-events N     events filled into the server for the export phase (default 100000; 0 = skip)
  --pglite              export phase on PGlite instead of PostgreSQL
  --cpu-prof DIR        profile the export's server process (node --cpu-prof, written to DIR)
  --server-heap-mb N    run the export's server with --max-old-space-size=N: an export whose memory
                        grew with its size would fail; one in flat memory runs as without it
  --database-url URL    maintenance connection of the local cluster
                        (default $BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  --keep                keep the bundle file and print its path
  --help                this text
`;


/** Node hashes per level in flat buffers: level L holds node i at bytes [32i, 32i + 32). */
class NodeStore {
  private readonly levels: Buffer[] = [];
  private readonly counts: number[] = [];
  add(level: number, index: number, hash: Buffer): void {
    let buf = this.levels[level];
    if (!buf) {
      buf = Buffer.alloc(32 * 1024);
      this.levels[level] = buf;
      this.counts[level] = 0;
    }
    if ((index + 1) * 32 > buf.length) {
      const bigger = Buffer.alloc(Math.max(buf.length * 2, (index + 1) * 32));
      buf.copy(bigger);
      this.levels[level] = buf = bigger;
    }
    hash.copy(buf, index * 32);
    this.counts[level] = Math.max(this.counts[level]!, index + 1);
  }
  get(id: NodeId): Buffer {
    return Buffer.from(this.levels[id.level]!.subarray(id.index * 32, id.index * 32 + 32));
  }
}

async function writeSyntheticBundle(file: string, events: number, every: number): Promise<{ verifierKey: string; bytes: number; ms: number }> {
  const t0 = performance.now();
  const { signerKey, verifierKey } = generateSignerKey('bench.audit');
  const signer = parseSignerKey(signerKey);
  const org = '0190c0de-0000-4000-8000-00000000be9c';
  const origin = `bench.audit/${org}`;
  const out = fs.createWriteStream(file);
  const write = async (r: BundleRecord) => {
    if (!out.write(formatBundleRecord(r) + '\n')) await once(out, 'drain');
  };
  await write({ type: 'header', format: BUNDLE_FORMAT, origin, organizationId: org, start: 0, end: events, headSize: events, exportedAt: new Date().toISOString() });
  await write({ type: 'key', keyId: signer.keyId.toString('hex'), name: signer.name, verifierKey, notBefore: new Date(0).toISOString(), notAfter: null });
  const nodes = new NodeStore();
  const tree = new CompactRange();
  const store = nodes.add.bind(nodes);
  let prev: number | null = null;
  let checkpoints = 0;
  const recordedAtBase = Date.UTC(2026, 10, 1);
  for (let i = 0; i < events; i++) {
    const e = makeEvent(1, i) as unknown as Record<string, unknown>;
    const recordedAt = new Date(recordedAtBase + Math.floor(i / every)).toISOString();
    const fields: Record<string, CommittedField> = {};
    const commitments: Record<string, string> = {};
    for (const f of EVENT_FIELDS) {
      const v = e[f];
      if (v === undefined) continue;
      const salt = newSalt();
      const c = commitField(salt, v);
      commitments[f] = c;
      fields[f] = { commitment: c, salt: salt.toString('base64'), value: v };
    }
    const id = `0190c0de-${(i >>> 16).toString(16).padStart(4, '0')}-7${(i & 0xfff).toString(16).padStart(3, '0')}-8000-${i.toString(16).padStart(12, '0')}`;
    const h = leafHash(leafBytes({ org, id, recordedAt, fields: commitments }));
    await write({ type: 'event', leafIndex: i, id, recordedAt, leafHash: h.toString('base64'), fields });
    // Incremental tree, keeping every node for the consistency proofs (RFC 9162 §2.1.4).
    tree.append(h, store);
    const size = i + 1;
    if (size % every === 0 || size === events) {
      const root = tree.root();
      if (prev !== null) {
        const proof = proveConsistency(prev, size, planConsistency(prev, size).map((id) => nodes.get(id)));
        await write({ type: 'consistency', fromSize: prev, toSize: size, hashes: proof.map((x) => x.toString('base64')) });
      }
      await write({ type: 'checkpoint', treeSize: size, note: signCheckpoint({ origin, size, rootHash: root }, [signer]), createdAt: new Date().toISOString() });
      checkpoints++;
      prev = size;
    }
  }
  await write({ type: 'end', events, checkpoints });
  out.end();
  await once(out, 'finish');
  return { verifierKey, bytes: fs.statSync(file).size, ms: performance.now() - t0 };
}

/** User + system CPU seconds of a `process.cpuUsage(previous)` difference. */
function cpuSeconds(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1e6;
}

/** CPU seconds of this process's main thread (the one running JavaScript here). */
function mainThreadCpuSeconds(): number {
  return sampleThreads(process.pid).get('main') ?? Number.NaN;
}

function rss(): number {
  return process.memoryUsage().rss;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '1000000' },
      'checkpoint-every': { type: 'string', default: '1000' },
      threads: { type: 'string', default: '1,2,4' },
      'export-events': { type: 'string', default: '100000' },
      pglite: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      'server-heap-mb': { type: 'string' },
      'database-url': { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const events = Number(values.events);
  const every = Number(values['checkpoint-every']);
  const exportEvents = Number(values['export-events']);
  const threadCounts = values.threads.split(',').map(Number);
  console.log(`bench:verify — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, verification at --threads ${threadCounts.join(', ')}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-bench-verify-'));
  const file = path.join(dir, 'bundle.ndjson');
  let failed = false;
  try {
    section(`1. synthetic bundle: ${num(events)} events, a checkpoint every ${num(every)}`);
    const gen = await writeSyntheticBundle(file, events, every);
    console.log(`written ${mib(gen.bytes)} in ${(gen.ms / 1000).toFixed(1)} s (${num(events / (gen.ms / 1000))} events/s to commit, hash and sign)`);

    section(`2. raw baseline: read + JSON.parse of every line, nothing verified (load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})`);
    let cpu = process.cpuUsage();
    let t = performance.now();
    let lines = 0;
    for (const line of readLinesSync(file)) {
      if (line !== '') {
        JSON.parse(line);
        lines++;
      }
    }
    const baselineMs = performance.now() - t;
    const baselineCpuS = cpuSeconds(process.cpuUsage(cpu));
    const baselineRate = events / (baselineMs / 1000);
    console.log(`${num(lines)} lines in ${(baselineMs / 1000).toFixed(2)} s wall, ${baselineCpuS.toFixed(2)} s CPU: ${num(baselineRate)} events/s wall, ${num(events / baselineCpuS)} events per CPU second`);

    section(`3. audit-verify bundle, in-process (the CLI code path) at --threads ${threadCounts.join(', ')} (load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})`);
    const rows: string[][] = [];
    let reference: string | null = null;
    for (const threads of threadCounts) {
      const rssBefore = rss();
      let peak = rssBefore;
      // With worker threads this thread waits for results, so the sampler runs; at --threads 1 the
      // run is synchronous and only the end is sampled.
      const sampler = setInterval(() => (peak = Math.max(peak, rss())), 100);
      const output: string[] = [];
      const mainCpu0 = mainThreadCpuSeconds();
      cpu = process.cpuUsage();
      t = performance.now();
      const status = await auditVerify(['bundle', file, '--key', gen.verifierKey, '--threads', String(threads)], { out: (l) => output.push(l), err: (l) => output.push(l) });
      const verifyMs = performance.now() - t;
      const verifyCpuS = cpuSeconds(process.cpuUsage(cpu)); // every thread of the process (getrusage)
      const mainCpuS = mainThreadCpuSeconds() - mainCpu0;
      clearInterval(sampler);
      peak = Math.max(peak, rss());
      const text = output.join('\n');
      reference ??= text;
      console.log(`--threads ${threads}: ${text}`);
      if (status !== 0) failed = true;
      const perCpu = events / verifyCpuS;
      rows.push([
        String(threads),
        `${(verifyMs / 1000).toFixed(2)} s`,
        num(events / (verifyMs / 1000)),
        `${verifyCpuS.toFixed(2)} s`,
        num(perCpu),
        `${mainCpuS.toFixed(2)} s`,
        (baselineCpuS / verifyCpuS).toFixed(2),
        `${mib(rssBefore)} / ${mib(peak)}`,
        text === reference ? 'yes' : 'NO',
        perCpu >= 50_000 && baselineCpuS / verifyCpuS >= 0.8 ? 'met' : 'not met',
      ]);
      if (text !== reference) failed = true;
    }
    console.log(
      formatTable(
        [
          'threads',
          'wall',
          'events/s (wall)',
          'process CPU',
          'events per CPU-s',
          'main-thread CPU',
          'ratio to baseline (CPU)',
          'RSS before / peak',
          'same report',
          '≥ 50,000/CPU-s and ≥ 0.8×',
        ],
        rows,
      ),
    );
    console.log('(process CPU: all threads, from getrusage; main-thread CPU: /proc/self/task/<pid>/stat, 10 ms ticks)');

    section('4. audit-verify bundle as a child process (node --import tsx)');
    t = performance.now();
    const child = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli/audit-verify.ts', 'bundle', file, '--key', gen.verifierKey], {
      // default --threads: one worker per CPU (at most 8) for a bundle this size
      cwd: path.resolve(__dirname, '..'),
      encoding: 'utf8',
    });
    const childMs = performance.now() - t;
    console.log(`exit ${child.status}, ${(childMs / 1000).toFixed(2)} s wall (${num(events / (childMs / 1000))} events/s including start-up)`);
    if (child.status !== 0) {
      failed = true;
      console.log(child.stderr);
    }

    if (exportEvents > 0) {
      section(`5. export: ${num(exportEvents)} events over GET /api/v1/ledger/export (${values.pglite ? 'PGlite' : 'PostgreSQL'}; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})`);
      const serverArgs = [
        ...(values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : []),
        ...(values['server-heap-mb'] ? [`--max-old-space-size=${Number(values['server-heap-mb'])}`] : []),
      ];
      failed = (await benchExport(exportEvents, values.pglite, values['database-url'], dir, values['cpu-prof'], serverArgs)) || failed;
    }
  } finally {
    if (values.keep) console.log(`\nkept ${file}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
  if (failed) {
    console.error('bench:verify: a bundle did not verify');
    process.exitCode = 1;
  }
}

async function benchExport(
  n: number,
  pglite: boolean,
  databaseUrl: string | undefined,
  dir: string,
  cpuProf: string | undefined,
  serverArgs: string[],
): Promise<boolean> {
  let db: BenchDatabase | null = null;
  const { signerKey, verifierKey } = generateSignerKey('bench.audit');
  const env: Record<string, string> = {
    PORT: '0',
    HOST: '127.0.0.1',
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    AUDIT_LOG_ORIGIN: 'bench.audit',
    AUDIT_SIGNING_KEY: signerKey,
    AUDIT_BOOTSTRAP_API_KEY: 'sak_bench_export_key_0123456789abcdefghijklmnop',
    AUDIT_SELF_AUDIT_INTERVAL_MS: '0',
    RATE_LIMIT_PER_MINUTE: '0',
  };
  if (pglite) env.AUDIT_DATA_DIR = path.join(dir, 'pglite');
  else {
    db = await createBenchDatabase(databaseUrl ?? process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
    env.DATABASE_URL = db.url;
  }
  const rt = await startRuntime(loadConfig(env), createLogger('silent'));
  let closed = false;
  try {
    const org = rt.bootstrap!.organizationId;
    const t = performance.now();
    for (let i = 0; i < n; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, n - i) }, (_, k) => makeEvent(2, i + k));
      const results = await rt.services.events.bulkCreate(org, batch.map((raw) => parseBulkItem(eventSchema, raw)));
      if (!results.every((r) => r.ok)) throw new Error('fill: an event was rejected');
    }
    console.log(`filled in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    if (db) {
      // Steady state: autovacuum would have analyzed the tables by now. Right after a bulk load the
      // planner still believes they are empty and may pick nested loops that rescan them.
      const conn = await rt.database.connect();
      try {
        await conn.exec('ANALYZE events; ANALYZE ledger_nodes; ANALYZE checkpoints');
      } finally {
        conn.release();
      }
    }

    // Same-run baseline, before the server starts: the export's event pages read in-process through
    // the same driver and pool (nothing formatted, nothing sent), then read and formatted into NDJSON
    // lines (export/event-line.ts, nothing sent). What the HTTP export adds on top of the second is
    // the route, the response stream and the socket.
    await baselineReads(rt, org, n, db);

    // The export is served by a child process (what production runs), read by a plain node:http
    // client: the server's CPU and memory are then its own, read from /proc. (An in-process server
    // read through fetch measured undici instead: its socket reads copied the ever-growing receive
    // buffer (Readable fromList), 150-450 events/s.)
    await rt.close();
    closed = true;
    const server = await startServer({ ...env, LOG_LEVEL: 'warn' }, { nodeArgs: serverArgs });
    try {
      const admin = db ? new pg.Client({ connectionString: db.url }) : null;
      await admin?.connect();
      // One request first so the pool has its connections; their backends are what PostgreSQL spends.
      await httpGetToFile(`${server.url}/api/v1/ledger/export?start=0&end=1`, env.AUDIT_BOOTSTRAP_API_KEY!, path.join(dir, 'warm.ndjson'));
      const backends = admin ? await backendPids(admin, db!.name) : [];
      const pgCpu = () => cpuSecondsOf(backends);
      const file = path.join(dir, 'export.ndjson');
      const before = sampleProcess(server.pid);
      const pg0 = pgCpu();
      const client0 = process.cpuUsage();
      let peak = before.rssBytes;
      const sampler = setInterval(() => {
        const s = tryRss(server.pid);
        if (s !== null) peak = Math.max(peak, s);
      }, 50);
      // The export's window on the monotonic clock (µs), the clock of V8's CPU profile: with
      // --cpu-prof it is written beside the profile for bench/profile-summary.ts.
      const marks = [{ phase: 'export', us: Number(process.hrtime.bigint() / 1000n) }];
      const t = performance.now();
      const bytes = await httpGetToFile(`${server.url}/api/v1/ledger/export`, env.AUDIT_BOOTSTRAP_API_KEY!, file);
      const exportMs = performance.now() - t;
      marks.push({ phase: 'after the export', us: Number(process.hrtime.bigint() / 1000n) });
      if (cpuProf) {
        const phases = path.join(path.resolve(cpuProf), `phases-${Date.now()}.json`);
        fs.mkdirSync(path.dirname(phases), { recursive: true });
        fs.writeFileSync(phases, JSON.stringify(marks));
        console.log(`export window for bench/profile-summary.ts: ${phases}`);
      }
      clearInterval(sampler);
      const after = sampleProcess(server.pid);
      const serverCpuS = after.cpuSeconds - before.cpuSeconds;
      const pgCpuS = pgCpu() - pg0;
      const clientCpuS = cpuSeconds(process.cpuUsage(client0));
      await admin?.end();
      console.log(
        formatTable(
          ['measure', 'value'],
          [
            ['events exported', num(n)],
            ['bytes', mib(bytes)],
            ['time', `${(exportMs / 1000).toFixed(2)} s`],
            ['throughput (wall clock)', `${num(n / (exportMs / 1000))} events/s, ${(bytes / 1048576 / (exportMs / 1000)).toFixed(1)} MB/s`],
            ['server CPU (its process, /proc)', `${serverCpuS.toFixed(2)} s = ${num(n / serverCpuS)} events per CPU second, ${((serverCpuS / n) * 1e6).toFixed(1)} µs per event`],
            ['PostgreSQL CPU (the server pool backends, /proc)', pglite ? '(PGlite: in the server process)' : `${pgCpuS.toFixed(2)} s`],
            ['client CPU (this process, reading to a file)', `${clientCpuS.toFixed(2)} s`],
            ['server RSS before / peak during export (sampled every 50 ms)', `${mib(before.rssBytes)} / ${mib(peak)}`],
          ],
        ),
      );
      const lines: string[] = [];
      const status = await auditVerify(['bundle', file, '--key', verifierKey], { out: (l) => lines.push(l), err: (l) => lines.push(l) });
      console.log(lines.join('\n'));
      return status !== 0;
    } finally {
      await server.stop();
    }
  } finally {
    if (!closed) await rt.close();
    await db?.drop();
  }
}

/**
 * The baseline rows of the export phase: every event page of the export read in-process with the
 * export's own query (`eventLinePage`, pages of 1,000 leaves), once as rows only and once formatted
 * into NDJSON lines, with this process's CPU and its PostgreSQL backends' from /proc.
 */
async function baselineReads(rt: Awaited<ReturnType<typeof startRuntime>>, org: string, n: number, db: BenchDatabase | null): Promise<void> {
  const admin = db ? new pg.Client({ connectionString: db.url }) : null;
  await admin?.connect();
  try {
    const rows: string[][] = [];
    for (const format of [false, true]) {
      await eventLinePage(rt.database.db, org, 0, 1, null, 1); // the pool's connections are open
      const backends = admin ? await backendPids(admin, db!.name) : [];
      const pg0 = cpuSecondsOf(backends);
      const c0 = process.cpuUsage();
      const t = performance.now();
      let bytes = 0;
      for (let lo = 0; lo < n; lo += 1000) {
        const page = await eventLinePage(rt.database.db, org, lo, Math.min(n, lo + 1000), null, 1000);
        if (!format) continue;
        let piece = '';
        for (const row of page) piece += formatEventLine(row) + '\n';
        bytes += Buffer.byteLength(piece);
      }
      const ms = performance.now() - t;
      const cpu = cpuSeconds(process.cpuUsage(c0));
      rows.push([
        format ? 'event pages read and formatted (no HTTP)' : 'event pages read (rows only)',
        num(n / (ms / 1000)),
        `${((cpu / n) * 1e6).toFixed(1)} µs`,
        admin ? `${((cpuSecondsOf(backends) - pg0) / n * 1e6).toFixed(1)} µs` : '(in process)',
        format ? mib(bytes) : '—',
      ]);
    }
    console.log(formatTable(['same-run baseline (in-process, the export query)', 'events/s', 'this process CPU/event', 'PostgreSQL CPU/event', 'NDJSON'], rows));
  } finally {
    await admin?.end();
  }
}

/** GET `url` with the API key, streamed into `file` with backpressure; resolves with the byte count. */
function httpGetToFile(url: string, apiKey: string, file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${apiKey}` }, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`export answered ${res.statusCode}`));
        return;
      }
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      const out = fs.createWriteStream(file);
      pipeline(res, out).then(() => resolve(bytes), reject);
    });
    req.on('error', reject);
  });
}

function tryRss(pid: number): number | null {
  try {
    return sampleProcess(pid).rssBytes;
  } catch {
    return null;
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
