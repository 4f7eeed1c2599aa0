/**
 * `npm run bench:soak`: the system under mixed load and faults for a bounded time, then proof that
 * nothing acknowledged was lost. Runs, on this machine only (127.0.0.1):
 *
 * - a private PostgreSQL cluster (restartable; never the shared one) and a private redis-server
 *   (append-only file, so a restart keeps what it held);
 * - `--api` server processes (AUDIT_ROLE=api) and one worker (AUDIT_ROLE=worker, self-audit every
 *   30 s with only the public verifier key), as a deployment runs them;
 * - `--clients` concurrent clients sending a mix of single and bulk appends, filtered queries,
 *   inclusion proofs, checkpoints and small bundle exports to a random live api process;
 * - faults spread over the run: `--kills` SIGKILLs of random api processes (each replaced by a new
 *   one), a PostgreSQL `pg_ctl restart -m immediate`, and Redis killed and restarted.
 *
 * Every `--report-seconds` it prints throughput, latency percentiles, answers by status and the
 * RSS of every process. At the end it checks, and exits non-zero when one fails:
 * every acknowledged event is in the database with its leaf index and leaf hash; every checkpoint
 * any client received is consistent with the final signed tree (RFC 9162 §2.1.4 proofs from the
 * server, verified here); the whole ledger verifies (the self-audit's verifier over every leaf);
 * no request hung past the client timeout. Answers other than success are counted and printed
 * (a 503 with Retry-After during a fault is the designed answer; a 500 is reported as such).
 * It never fails on time or throughput.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { verifyLedgers } from '../server/src/audit/verify-ledger';
import { openDatabase } from '../server/src/db/client';
import { generateSignerKey, openCheckpoint, parseVerifierKey, verifyConsistency } from '../server/src/ledger';
import { HttpClient, RequestTimeoutError, type HttpResult } from './lib/http-client';
import { startPrivateCluster, type PrivateCluster } from './lib/private-postgres';
import { formatTable, mib, ms, num, section } from './lib/report';
import { REPO_ROOT, freePort, sampleProcess, startServer, type ServerProcess } from './lib/server-process';
import { nowMs, summarize } from './lib/stats';
import { makeEvent, patientId, prng } from './lib/workload';

const HELP = `Usage: npm run bench:soak -- [options]

  --minutes N          length of the loaded run (default 10)
  --api N              api processes (default 3)
  --clients N          concurrent clients (default 12)
  --kills N            SIGKILLs of random api processes, spread over the run (default 20)
  --report-seconds N   seconds between progress lines (default 30)
  --timeout-seconds N  a request unanswered this long counts as hung (default 30)
  --consistency-checks N  checkpoint sizes whose consistency with the final tree is proven (default 2000)
  --compiled           run server/dist/main.js (built first), as the image does
  --seed N             workload seed (default 1)
`;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string' },
    api: { type: 'string' },
    clients: { type: 'string' },
    kills: { type: 'string' },
    'report-seconds': { type: 'string' },
    'timeout-seconds': { type: 'string' },
    'consistency-checks': { type: 'string' },
    compiled: { type: 'boolean' },
    seed: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const positive = (name: string, v: string | undefined, dflt: number): number => {
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
  return n;
};
const O = {
  minutes: positive('minutes', values.minutes, 10),
  api: Math.max(1, positive('api', values.api, 3)),
  clients: Math.max(1, positive('clients', values.clients, 12)),
  kills: positive('kills', values.kills, 20),
  reportSeconds: Math.max(1, positive('report-seconds', values['report-seconds'], 30)),
  timeoutMs: positive('timeout-seconds', values['timeout-seconds'], 30) * 1000,
  consistencyChecks: Math.max(1, positive('consistency-checks', values['consistency-checks'], 2000)),
  compiled: values.compiled ?? false,
  seed: positive('seed', values.seed, 1),
};

type Op = 'single' | 'bulk' | 'query' | 'proof' | 'checkpoint' | 'export';
/** The mix: mostly appends, as an audit log sees; reads and exports as auditors add them. */
const MIX: Array<[Op, number]> = [
  ['single', 50],
  ['bulk', 12],
  ['query', 14],
  ['proof', 12],
  ['checkpoint', 8],
  ['export', 4],
];
const BULK = 50;

/** One api or worker process and the clients that talk to it. */
interface Node {
  name: string;
  server: ServerProcess;
  client: HttpClient;
  alive: boolean;
}

/** Everything measured in one reporting window (and in total). */
class Window {
  readonly latency = new Map<Op, number[]>();
  readonly statuses = new Map<string, number>();
  acknowledged = 0;
  count(op: Op, status: string, elapsed: number): void {
    this.statuses.set(`${op} ${status}`, (this.statuses.get(`${op} ${status}`) ?? 0) + 1);
    if (status.startsWith('2')) {
      const l = this.latency.get(op) ?? [];
      l.push(elapsed);
      this.latency.set(op, l);
    }
  }
}

const redisBinary = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => fs.existsSync(p));

/** A private redis-server with an append-only file in `dir`, killable and restartable on `port`. */
class PrivateRedis {
  private child: ChildProcess | null = null;
  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}
  async start(): Promise<void> {
    if (!redisBinary) throw new Error('redis-server not found (apt-get install redis-server)');
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', this.dir, '--maxmemory-policy', 'noeviction'];
    this.child = spawn(redisBinary, args, { stdio: 'ignore' });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const r = spawnSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8' });
      if (r.stdout.trim() === 'PONG') return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`redis-server on ${this.port} did not answer PING`);
  }
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((res) => c.once('exit', res));
    c.kill('SIGKILL');
    await gone;
  }
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-soak-'));
  let cluster: PrivateCluster | null = null;
  const redis = new PrivateRedis(await freePort(), root);
  const nodes: Node[] = [];
  let worker: ServerProcess | null = null;
  const cleanup = async () => {
    for (const n of nodes) await n.server.kill().catch(() => undefined);
    await worker?.kill().catch(() => undefined);
    await redis.kill();
    cluster?.destroy();
    fs.rmSync(root, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

  try {
    cluster = startPrivateCluster(await freePort(), ['max_connections = 200', 'shared_buffers = 128MB'], 'bench-soak-pg-');
    await redis.start();
    if (O.compiled) {
      const build = spawnSync('npm', ['run', 'build', '-w', 'server'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
      if (build.status !== 0) throw new Error('npm run build -w server failed');
    }
    const { signerKey, verifierKey } = generateSignerKey('soak.audit');
    const apiKey = `soak_${randomBytes(24).toString('base64url')}`;
    const common = {
      NODE_ENV: 'production',
      DATABASE_URL: cluster.url,
      REDIS_URL: `redis://127.0.0.1:${redis.port}/0`,
      AUDIT_LOG_ORIGIN: 'soak.audit',
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
      DATABASE_POOL_MAX: '10',
    };
    const apiEnv = { ...common, AUDIT_ROLE: 'api', AUDIT_SIGNING_KEY: signerKey, AUDIT_BOOTSTRAP_API_KEY: apiKey, AUDIT_BOOTSTRAP_ORG_NAME: 'soak' };
    let started = 0;
    const startApi = async (): Promise<Node> => {
      const server = await startServer(apiEnv, { compiled: O.compiled, readyTimeoutMs: 180_000 });
      const node = { name: `api-${++started}`, server, client: new HttpClient(server.url, apiKey, O.clients + 4, O.timeoutMs), alive: true };
      nodes.push(node);
      return node;
    };
    // The first migrates and bootstraps; the others find the schema and the organization.
    await startApi();
    await Promise.all(Array.from({ length: O.api - 1 }, startApi));
    worker = await startServer({ ...common, AUDIT_ROLE: 'worker', AUDIT_VERIFIER_KEY: verifierKey, AUDIT_SELF_AUDIT_INTERVAL_MS: '30000' }, { compiled: O.compiled, readyTimeoutMs: 180_000 });
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    const org = (await admin.query<{ id: string }>('SELECT id FROM organizations LIMIT 1')).rows[0]!.id;
    await admin.end();
    console.log(
      `PostgreSQL (private, port ${cluster.port}), Redis (private, port ${redis.port}); ${O.api} api processes + 1 worker ` +
        `(${O.compiled ? 'compiled' : 'sources through tsx'}); ${O.clients} clients for ${O.minutes} min; ${O.kills} api kills, 1 PostgreSQL restart, 1 Redis restart`,
    );

    // What clients were told: every acknowledged event, every checkpoint (size → root) they saw.
    const acknowledged = new Map<string, { leafIndex: number; leafHash: string }>();
    const checkpoints = new Map<number, string>();
    const forks: string[] = [];
    let maxSize = 0;
    const sawCheckpoint = (treeSize: number, rootHash: string) => {
      maxSize = Math.max(maxSize, treeSize);
      const known = checkpoints.get(treeSize);
      if (known === undefined) checkpoints.set(treeSize, rootHash);
      else if (known !== rootHash) forks.push(`size ${treeSize}: ${known} and ${rootHash}`);
    };
    let hung = 0;
    let window = new Window();
    const total = new Window();
    const rnd = prng(O.seed);
    let nextEvent = 0;
    const liveNode = (): Node => {
      const live = nodes.filter((n) => n.alive);
      return live[Math.floor(rnd() * live.length)]!;
    };
    const pickOp = (): Op => {
      let x = rnd() * MIX.reduce((s, [, w]) => s + w, 0);
      for (const [op, w] of MIX) if ((x -= w) < 0) return op;
      return 'single';
    };

    const send = async (op: Op, node: Node): Promise<HttpResult> => {
      switch (op) {
        case 'single':
          return node.client.post('/api/v1/events', JSON.stringify(makeEvent(O.seed, nextEvent++)));
        case 'bulk': {
          const events = Array.from({ length: BULK }, () => makeEvent(O.seed, nextEvent++));
          return node.client.post('/api/v1/events/bulk', JSON.stringify({ events, receipts: 'compact' }));
        }
        case 'query':
          return node.client.get(`/api/v1/events?patientIds=${patientId(Math.floor(rnd() * 20_000))}&limit=20`);
        case 'proof':
          return node.client.get(`/api/v1/ledger/proofs/inclusion?leafIndex=${Math.floor(rnd() * Math.max(maxSize, 1))}`);
        case 'checkpoint':
          return node.client.get('/api/v1/ledger/checkpoint');
        case 'export': {
          const start = Math.floor(rnd() * Math.max(maxSize - 200, 1));
          return node.client.get(`/api/v1/ledger/export?start=${start}&end=${start + 200}`);
        }
      }
    };
    const record = (op: Op, r: HttpResult) => {
      if (r.status !== 200 && r.status !== 201) return;
      if (op === 'single') {
        const b = JSON.parse(r.body) as { id: string; leafIndex: number; leafHash: string; treeSize: number; rootHash: string };
        acknowledged.set(b.id, { leafIndex: b.leafIndex, leafHash: b.leafHash });
        sawCheckpoint(b.treeSize, b.rootHash);
        window.acknowledged++;
        total.acknowledged++;
      } else if (op === 'bulk') {
        const b = JSON.parse(r.body) as { checkpoint: { treeSize: number; rootHash: string } | null; results: Array<{ ok: boolean; receipt?: { id: string; leafIndex: number; leafHash: string } }> };
        for (const item of b.results) {
          if (!item.ok || !item.receipt) continue;
          acknowledged.set(item.receipt.id, { leafIndex: item.receipt.leafIndex, leafHash: item.receipt.leafHash });
          window.acknowledged++;
          total.acknowledged++;
        }
        if (b.checkpoint) sawCheckpoint(b.checkpoint.treeSize, b.checkpoint.rootHash);
      } else if (op === 'checkpoint') {
        const b = JSON.parse(r.body) as { treeSize: number; rootHash: string };
        if (b.treeSize > 0) sawCheckpoint(b.treeSize, b.rootHash);
      }
    };

    const deadline = nowMs() + O.minutes * 60_000;
    const client = async () => {
      while (nowMs() < deadline) {
        const op = pickOp();
        const node = liveNode();
        const t = nowMs();
        let status: string;
        try {
          const r = await send(op, node);
          status = String(r.status);
          record(op, r);
        } catch (err) {
          if (err instanceof RequestTimeoutError) {
            hung++;
            status = 'hung';
          } else status = node.alive ? 'connection error' : 'connection error (process killed)';
        }
        window.count(op, status, nowMs() - t);
        total.count(op, status, nowMs() - t);
      }
    };

    // Faults, spread over the run.
    const faults: string[] = [];
    const at = (fraction: number) => nowMs() + fraction * O.minutes * 60_000;
    const schedule: Array<{ when: number; what: () => Promise<string> }> = [];
    for (let i = 1; i <= O.kills; i++)
      schedule.push({
        when: at(i / (O.kills + 1)),
        what: async () => {
          const victim = liveNode();
          victim.alive = false;
          await victim.server.kill();
          victim.client.close();
          const replacement = await startApi();
          return `SIGKILL ${victim.name} (pid ${victim.server.pid}); ${replacement.name} ready`;
        },
      });
    schedule.push({
      when: at(0.4),
      what: async () => {
        const t = nowMs();
        cluster!.restart('immediate');
        return `PostgreSQL pg_ctl restart -m immediate (${((nowMs() - t) / 1000).toFixed(1)} s until it accepted connections)`;
      },
    });
    schedule.push({
      when: at(0.7),
      what: async () => {
        await redis.kill();
        await redis.start();
        return 'Redis SIGKILL, restarted from its append-only file';
      },
    });
    schedule.sort((a, b) => a.when - b.when);
    const injector = async () => {
      for (const f of schedule) {
        const wait = f.when - nowMs();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (nowMs() >= deadline) break;
        const t = ((nowMs() - (deadline - O.minutes * 60_000)) / 1000).toFixed(0);
        const what = await f.what();
        faults.push(`${t} s: ${what}`);
        console.log(`  fault at ${t} s: ${what}`);
      }
    };

    const t0 = nowMs();
    let lastCpu = new Map<number, number>();
    const report = () => {
      const elapsed = (nowMs() - t0) / 1000;
      const rows = [...window.latency.entries()].map(([op, l]) => {
        const s = summarize(l);
        return [op, num(l.length), ms(s.p50), ms(s.p95), ms(s.p99)];
      });
      const bad = [...window.statuses.entries()].filter(([k]) => !/ 2\d\d$/.test(k)).map(([k, v]) => `${k} ×${v}`);
      const procs = [...nodes.filter((n) => n.alive).map((n) => [n.name, n.server.pid] as const), ['worker', worker!.pid] as const].map(([name, pid]) => {
        try {
          const s = sampleProcess(pid);
          const cpu = s.cpuSeconds - (lastCpu.get(pid) ?? 0);
          lastCpu.set(pid, s.cpuSeconds);
          return `${name} ${mib(s.rssBytes)} (cpu ${cpu.toFixed(1)} s)`;
        } catch {
          return `${name} gone`;
        }
      });
      console.log(`\n[${elapsed.toFixed(0)} s] acknowledged ${num(window.acknowledged)} events (${num(window.acknowledged / O.reportSeconds)}/s); total ${num(acknowledged.size)}; load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
      console.log(formatTable(['op (2xx)', 'n', 'p50', 'p95', 'p99'], rows));
      console.log(`  other answers: ${bad.length ? bad.join(', ') : 'none'}`);
      console.log(`  RSS: ${procs.join(' · ')}`);
      window = new Window();
    };
    const reporter = setInterval(report, O.reportSeconds * 1000);
    section(`Loaded run: ${O.minutes} min`);
    await Promise.all([...Array.from({ length: O.clients }, client), injector()]);
    clearInterval(reporter);
    report();
    lastCpu = new Map();

    // Checks.
    section('After the run');
    const db = new pg.Client({ connectionString: cluster.url });
    await db.connect();
    const stored = new Map<string, { leafIndex: number; leafHash: string }>();
    const rows = await db.query<{ id: string; leaf_index: string; leaf_hash: Buffer }>('SELECT id, leaf_index, leaf_hash FROM events WHERE organization_id = $1', [org]);
    for (const r of rows.rows) stored.set(r.id, { leafIndex: Number(r.leaf_index), leafHash: r.leaf_hash.toString('base64') });
    await db.end();
    let missing = 0;
    let different = 0;
    for (const [id, a] of acknowledged) {
      const s = stored.get(id);
      if (!s) missing++;
      else if (s.leafIndex !== a.leafIndex || s.leafHash !== a.leafHash) different++;
    }
    console.log(`acknowledged events: ${num(acknowledged.size)}; in the database with the same leaf index and hash: ${num(acknowledged.size - missing - different)}; missing ${missing}; different ${different}; rows in the log ${num(stored.size)}`);

    const survivor = nodes.find((n) => n.alive)!;
    const final = await survivor.client.get('/api/v1/ledger/checkpoint');
    const finalBody = JSON.parse(final.body) as { treeSize: number; rootHash: string; note: string };
    const verifier = parseVerifierKey(verifierKey);
    const opened = openCheckpoint(finalBody.note, [verifier]).checkpoint;
    const finalRoot = Buffer.from(finalBody.rootHash, 'base64');
    if (opened.size !== finalBody.treeSize) throw new Error('the final checkpoint note does not match its fields');
    let consistent = 0;
    const inconsistent: string[] = [...forks];
    // Every size was checked against every other answer for the same size (forks) as it arrived;
    // proofs are asked for an evenly spread sample of them (each is one request).
    const sizes = [...checkpoints.keys()].sort((a, b) => a - b);
    const step = Math.max(1, Math.ceil(sizes.length / O.consistencyChecks));
    const sample = sizes.filter((_, i) => i % step === 0 || i === sizes.length - 1);
    for (const size of sample) {
      const root = checkpoints.get(size)!;
      const r = await survivor.client.get(`/api/v1/ledger/proofs/consistency?fromSize=${size}&toSize=${finalBody.treeSize}`);
      try {
        if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
        const proof = (JSON.parse(r.body) as { hashes: string[] }).hashes.map((h) => Buffer.from(h, 'base64'));
        verifyConsistency(size, finalBody.treeSize, proof, Buffer.from(root, 'base64'), finalRoot);
        consistent++;
      } catch (err) {
        inconsistent.push(`size ${size}: ${(err as Error).message}`);
      }
    }
    console.log(
      `checkpoints clients received: ${num(checkpoints.size)} distinct sizes, no two roots for one size: ${forks.length === 0 ? 'yes' : 'NO'}; ` +
        `consistency proofs to the final signed tree of ${num(finalBody.treeSize)} leaves verified for ${num(consistent)} of ${num(sample.length)} sampled sizes`,
    );

    const database = await openDatabase({ url: cluster.url, poolMax: 2 });
    const t = nowMs();
    const [ledger] = await verifyLedgers(database, { origin: 'soak.audit', verifiers: [verifier], organizationId: org });
    await database.close();
    console.log(`whole-ledger verification (${num(ledger!.size)} leaves, ${num(ledger!.events)} events): ${ledger!.ok ? 'ok' : `FAILED: ${JSON.stringify(ledger!.failure)}`} in ${((nowMs() - t) / 1000).toFixed(1)} s`);

    const answers = [...total.statuses.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, num(v)]);
    console.log(formatTable(['answers over the whole run', 'count'], answers));
    console.log(`hung requests (unanswered after ${O.timeoutMs / 1000} s): ${hung}`);
    console.log(`faults: ${faults.length}\n  ${faults.join('\n  ')}`);
    const failed = missing + different + inconsistent.length + hung + (ledger!.ok ? 0 : 1);
    if (inconsistent.length) console.log(`inconsistent checkpoints:\n  ${inconsistent.slice(0, 20).join('\n  ')}`);
    console.log(failed === 0 ? '\nsoak: every check passed' : `\nsoak: ${failed} check failure(s)`);
    process.exitCode = failed === 0 ? 0 : 1;
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
