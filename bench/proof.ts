/**
 * `npm run bench:proof`: inclusion-proof latency on a large log.
 *
 *  1. a throw-away PostgreSQL database; the server (a child process, so its CPU is its own) starts
 *     once to migrate and bootstrap, then stops;
 *  2. the bootstrap organization's tree is extended to `--leaves` (default 1,000,000) synthetic
 *     leaves with the ledger's own compact range (every completed node stored, as the log writer
 *     stores them), the head moved and a checkpoint signed at the new size — no event rows: a proof
 *     by leaf index reads only the head and tree nodes;
 *  3. baseline: the one statement a proof needs (head size + the planned nodes), sent from a plain
 *     `pg` client: latency and PostgreSQL CPU per statement;
 *  4. `GET /api/v1/ledger/proofs/inclusion` through the restarted server, sequentially, for random
 *     leaves, with `treeSize` (as a receipt asks) and without (current size): p50/p95/p99, server
 *     and PostgreSQL CPU per proof from /proc, and statements per proof from the server's
 *     `audit_db_query_duration_seconds_count`. Every proof is verified against the signed root.
 *
 * Prints figures and never fails on time; exits non-zero only when a proof does not verify.
 */
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  CompactRange,
  frontierLevels,
  generateSignerKey,
  leafHash,
  parseSignerKey,
  parseVerifierKey,
  openCheckpoint,
  planInclusion,
  signCheckpoint,
  verifyInclusion,
} from '../server/src/ledger';
import { backendPids, createBenchDatabase } from './lib/database';
import { HttpClient } from './lib/http-client';
import { formatTable, num, section } from './lib/report';
import { cpuSecondsOf, sampleProcess, startServer, type ServerProcess } from './lib/server-process';
import { summarize } from './lib/stats';
import { prng } from './lib/workload';

const HELP = `Usage: npm run bench:proof -- [options]

  --leaves N         leaves in the organization's tree (default 1000000)
  --proofs N         proofs timed per phase (default 2000)
  --warm-up N        unmeasured proofs through the server before each HTTP phase (default 4000): a
                     server a few hundred requests old still has V8 optimizing its request path, and
                     costs up to twice the CPU per request of one in service
  --compiled         run server/dist/main.js (npm run build -w server first)
  --cpu-prof DIR     profile the server of phase 4 (node --cpu-prof, written to DIR on exit)
  --database-url URL maintenance connection of the local cluster
                     (default $BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  --help             this text
`;

const API_KEY = 'sak_bench_proof_key_0123456789abcdefghijklmnopq';

/** Sum of `audit_db_query_duration_seconds_count` (every statement the server sent). */
async function statementsSent(http: HttpClient): Promise<number> {
  const res = await http.get('/metrics');
  let n = 0;
  for (const m of res.body.matchAll(/^audit_db_query_duration_seconds_count\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

/** The one statement of a proof (tlog/repository.ts readNodesAndSize), as raw SQL. */
const PROOF_SQL = `SELECT h.size, n.level, n.idx, n.hash
  FROM ledger_heads h
  LEFT JOIN ledger_nodes n ON n.organization_id = $1::uuid
   AND (n.level, n.idx) IN (SELECT * FROM unnest($2::smallint[], $3::bigint[]))
 WHERE h.organization_id = $1::uuid`;

async function fill(client: pg.Client, org: string, leaves: number, signerKey: string, origin: string): Promise<{ root: Buffer; from: number; ms: number }> {
  const t0 = performance.now();
  const head = (await client.query<{ size: string; frontier: Buffer }>('SELECT size, frontier FROM ledger_heads WHERE organization_id = $1', [org])).rows[0];
  const from = head ? Number(head.size) : 0;
  const frontier: Buffer[] = [];
  if (head) for (let i = 0; i < head.frontier.length; i += 32) frontier.push(head.frontier.subarray(i, i + 32));
  if (frontierLevels(from).length !== frontier.length) throw new Error('stored frontier does not match the head size');
  const tree = new CompactRange(from, frontier);
  let levels: number[] = [];
  let indexes: number[] = [];
  let hashes: Buffer[] = [];
  const flush = async () => {
    if (levels.length === 0) return;
    await client.query(
      'INSERT INTO ledger_nodes (organization_id, level, idx, hash) SELECT $1::uuid, l, i, h FROM unnest($2::smallint[], $3::bigint[], $4::bytea[]) AS t(l, i, h)',
      [org, levels, indexes, hashes],
    );
    levels = [];
    indexes = [];
    hashes = [];
  };
  const visit = (level: number, index: number, hash: Buffer) => {
    levels.push(level);
    indexes.push(index);
    hashes.push(hash);
  };
  const leaf = Buffer.alloc(16);
  for (let i = from; i < leaves; i++) {
    leaf.writeUInt32BE(i, 12);
    tree.append(leafHash(leaf), visit);
    if (levels.length >= 50_000) await flush();
  }
  await flush();
  const root = tree.root();
  const signer = parseSignerKey(signerKey);
  await client.query('UPDATE ledger_heads SET size = $2, root_hash = $3, frontier = $4, updated_at = now() WHERE organization_id = $1', [
    org,
    leaves,
    root,
    Buffer.concat(tree.frontier()),
  ]);
  await client.query('INSERT INTO checkpoints (organization_id, tree_size, root_hash, note, key_id) VALUES ($1, $2, $3, $4, $5)', [
    org,
    leaves,
    root,
    signCheckpoint({ origin, size: leaves, rootHash: root }, [signer]),
    signer.keyId.toString('hex'),
  ]);
  await client.query('ANALYZE ledger_nodes; ANALYZE ledger_heads; ANALYZE checkpoints');
  return { root, from, ms: performance.now() - t0 };
}

interface PhaseResult {
  label: string;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  serverCpuMs: number;
  pgCpuMs: number;
  statements: number | null;
}

function row(r: PhaseResult, n: number): string[] {
  return [
    r.label,
    r.p50.toFixed(2),
    r.p95.toFixed(2),
    r.p99.toFixed(2),
    r.serverCpuMs > 0 || r.label.startsWith('raw') ? ((r.serverCpuMs * 1000) / n).toFixed(0) : '-',
    ((r.pgCpuMs * 1000) / n).toFixed(0),
    r.statements === null ? '-' : (r.statements / n).toFixed(2),
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      leaves: { type: 'string', default: '1000000' },
      proofs: { type: 'string', default: '2000' },
      'warm-up': { type: 'string', default: '4000' },
      compiled: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      'database-url': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const leaves = Number(values.leaves);
  const proofs = Number(values.proofs);
  const warmUp = Number(values['warm-up']);
  console.log(`bench:proof — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const adminUrl = values['database-url'] ?? process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const db = await createBenchDatabase(adminUrl);
  console.log(`PostgreSQL ${db.serverVersion}: ${db.settings}`);
  const { signerKey, verifierKey } = generateSignerKey('bench.audit');
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    DATABASE_URL: db.url,
    AUDIT_LOG_ORIGIN: 'bench.audit',
    AUDIT_SIGNING_KEY: signerKey,
    AUDIT_BOOTSTRAP_API_KEY: API_KEY,
    AUDIT_SELF_AUDIT_INTERVAL_MS: '0',
    RATE_LIMIT_PER_MINUTE: '0',
  };
  const client = new pg.Client({ connectionString: db.url });
  let server: ServerProcess | null = null;
  let failed = false;
  try {
    section('1. migrate and bootstrap');
    server = await startServer(env, { compiled: values.compiled });
    let http = new HttpClient(server.url, API_KEY, 1);
    const cp0 = await http.get('/api/v1/ledger/checkpoint');
    if (cp0.status !== 200) throw new Error(`checkpoint answered ${cp0.status}: ${cp0.body}`);
    const origin = (JSON.parse(cp0.body) as { origin: string }).origin;
    const org = origin.slice(origin.indexOf('/') + 1);
    await server.stop();
    server = null;

    section(`2. fill: the tree of ${origin} to ${num(leaves)} leaves`);
    await client.connect();
    const filled = await fill(client, org, leaves, signerKey, origin);
    const sizes = await client.query<{ table: string; bytes: string }>(
      `SELECT relname AS table, pg_total_relation_size(oid) AS bytes FROM pg_class WHERE relname IN ('ledger_nodes', 'ledger_nodes_pkey')`,
    );
    console.log(
      `${num(leaves - filled.from)} leaves appended after ${num(filled.from)} in ${(filled.ms / 1000).toFixed(1)} s; ` +
        sizes.rows.map((r) => `${r.table} ${(Number(r.bytes) / 1048576).toFixed(0)} MiB`).join(', '),
    );
    const verifier = parseVerifierKey(verifierKey);
    const results: PhaseResult[] = [];
    const r = prng(0x9e3779b9);

    section('3. baseline: the proof statement from a plain pg client');
    {
      const me = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const run = async (n: number) => {
        const lat: number[] = [];
        for (let i = 0; i < n; i++) {
          const index = Math.floor(r() * leaves);
          const plan = [{ level: 0, index }, ...planInclusion(index, leaves)];
          const t = performance.now();
          const res = await client.query(PROOF_SQL, [org, plan.map((p) => p.level), plan.map((p) => p.index)]);
          lat.push(performance.now() - t);
          if (res.rows.length !== plan.length) throw new Error(`baseline read ${res.rows.length} of ${plan.length} nodes`);
        }
        return lat;
      };
      await run(200);
      const pg0 = cpuSecondsOf([me]);
      const c0 = process.cpuUsage();
      const s = summarize(await run(proofs));
      const c = process.cpuUsage(c0);
      results.push({ label: 'raw SQL (pg client)', ...s, serverCpuMs: (c.user + c.system) / 1000, pgCpuMs: (cpuSecondsOf([me]) - pg0) * 1000, statements: 1 * proofs });
    }

    section('4. GET /api/v1/ledger/proofs/inclusion through the server');
    const prof = values['cpu-prof'];
    server = await startServer(env, { compiled: values.compiled, ...(prof ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${prof}`] } : {}) });
    http = new HttpClient(server.url, API_KEY, 1);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const cp = await http.get('/api/v1/ledger/checkpoint');
      const { checkpoint } = openCheckpoint((JSON.parse(cp.body) as { note: string }).note, [verifier]);
      if (checkpoint.size !== leaves || !checkpoint.rootHash.equals(filled.root)) throw new Error('the signed checkpoint is not the filled tree');
      for (const withSize of [true, false]) {
        const path = (index: number) => `/api/v1/ledger/proofs/inclusion?leafIndex=${index}${withSize ? `&treeSize=${leaves}` : ''}`;
        for (let i = 0; i < warmUp; i++) {
          const res = await http.get(path(Math.floor(r() * leaves)));
          if (res.status !== 200) throw new Error(`warm-up proof answered ${res.status}: ${res.body}`);
        }
        const backends = await backendPids(admin, db.name);
        const q0 = await statementsSent(http);
        const srv0 = sampleProcess(server.pid).cpuSeconds;
        const pg0 = cpuSecondsOf(backends);
        const lat: number[] = [];
        const answers: Array<{ index: number; body: string }> = [];
        for (let i = 0; i < proofs; i++) {
          const index = Math.floor(r() * leaves);
          const res = await http.get(path(index));
          lat.push(res.ms);
          if (res.status !== 200) throw new Error(`proof of ${index} answered ${res.status}: ${res.body}`);
          answers.push({ index, body: res.body });
        }
        const srv = sampleProcess(server.pid).cpuSeconds - srv0;
        const pgCpu = cpuSecondsOf(backends) - pg0;
        const statements = (await statementsSent(http)) - q0 - 0; // the /metrics scrape itself sends none
        for (const { index, body } of answers) {
          const p = JSON.parse(body) as { leafIndex: number; treeSize: number; leafHash: string; hashes: string[] };
          if (p.leafIndex !== index || p.treeSize !== leaves) throw new Error(`proof of ${index} answers for ${p.leafIndex}@${p.treeSize}`);
          try {
            verifyInclusion(Buffer.from(p.leafHash, 'base64'), index, leaves, p.hashes.map((h) => Buffer.from(h, 'base64')), filled.root);
          } catch (err) {
            failed = true;
            console.error(`proof of leaf ${index} does not verify: ${(err as Error).message}`);
          }
        }
        const s = summarize(lat);
        results.push({ label: withSize ? `HTTP, treeSize=${leaves}` : 'HTTP, current size', ...s, serverCpuMs: srv * 1000, pgCpuMs: pgCpu * 1000, statements });
      }
    } finally {
      await admin.end();
    }
    section(`results: ${num(proofs)} sequential proofs per row after ${num(warmUp)} unmeasured, ${num(leaves)} leaves (load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})`);
    console.log(
      formatTable(
        ['path', 'p50 ms', 'p95 ms', 'p99 ms', 'client/server CPU µs per proof', 'PostgreSQL CPU µs per proof', 'statements per proof'],
        results.map((x) => row(x, proofs)),
      ),
    );
    console.log('(raw SQL row: CPU of this client; HTTP rows: CPU of the server process. /proc counts in 10 ms ticks.)');
  } finally {
    await client.end().catch(() => undefined);
    if (server) await server.stop();
    await db.drop();
  }
  if (failed) process.exitCode = 1;
  fs.writeSync(1, '');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
