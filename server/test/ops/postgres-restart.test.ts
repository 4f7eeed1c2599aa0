/**
 * The server across PostgreSQL restarts (what a CloudNativePG switchover or failover looks like
 * from a replica: every connection ends, the database refuses connections for a while, then the
 * read-write Service answers again). On a private cluster (never the shared one), clients ingest
 * at a steady rate, singly and in bulk, and read, while `pg_ctl restart -m fast` and then
 * `-m immediate` run. Every answer must be a success or a retryable 503 with `Retry-After` that
 * names the database, never a 500; appends resume once the database is back; every acknowledged
 * event is stored exactly once (clients retry with the same idempotency key) and the ledger
 * verifies with the trusted key.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { openDatabase } from '../../src/db/client';
import { verifyLedgers } from '../../src/audit/verify-ledger';
import { generateSignerKey, parseVerifierKey } from '../../src/ledger';
import { createLogger } from '../../src/observability/logger';
import { startRuntime, type Runtime } from '../../src/runtime';
import { withClient } from '../deploy/support/services';
import { waitFor } from '../deploy/support/tools';
import { TEST_ADMIN_KEY } from '../helpers/server';
import { startCommitCutter } from './support/commit-cutter';
import { startPrivatePostgres, type PrivatePostgres } from './support/private-postgres';

jest.setTimeout(600_000);

const ORIGIN = 'failover.audit';

/** One HTTP answer as a client saw it. */
interface Outcome {
  what: string;
  status: number;
  retryAfter: string | null;
  code?: string;
  message?: string;
  /** Per-item codes of a bulk answer's failed items. */
  itemCodes?: string[];
  /** A request that got no HTTP answer at all. */
  networkError?: string;
}

interface Ack {
  key: string;
  id: string;
  leafIndex: number;
  at: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PostgreSQL restarts, switchovers and lost connections (private cluster)', () => {
  let pg: PrivatePostgres;
  const cleanups: Array<{ what: string; run: () => Promise<void> }> = [];
  let runtime: Runtime;
  let verifierKey: string;

  beforeAll(async () => {
    pg = await startPrivatePostgres('pg-restart');
  });

  afterAll(async () => {
    const stuck: string[] = [];
    for (const c of cleanups.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([c.run().then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 120_000)))]);
      clearTimeout(timer);
      if (!done) stuck.push(c.what);
    }
    pg?.remove();
    if (stuck.length > 0) throw new Error(`did not stop within 2 minutes: ${stuck.join(', ')}`);
  });

  /** A server on a fresh database of the private cluster (reached through `port`, default the cluster's). */
  async function startServer(label: string, env: Record<string, string> = {}, port = pg.port): Promise<{ runtime: Runtime; url: string }> {
    const name = `audit_${randomBytes(4).toString('hex')}`;
    await withClient(pg.url('postgres'), (c) => c.query(`CREATE DATABASE ${name}`));
    const dataDir = mkdtempSync(join(tmpdir(), 'audit-pg-restart-'));
    const signer = generateSignerKey(ORIGIN);
    verifierKey = signer.verifierKey;
    const url = `postgres://postgres@127.0.0.1:${port}/${name}`;
    const config = loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      DATABASE_URL: url,
      AUDIT_DATA_DIR: dataDir,
      AUDIT_SIGNING_KEY: signer.signerKey,
      AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
      AUDIT_LOG_ORIGIN: ORIGIN,
      RATE_LIMIT_PER_MINUTE: '0',
      ...env,
    });
    runtime = await startRuntime(config, createLogger('silent'));
    const started = runtime;
    cleanups.push({
      what: `the server of "${label}"`,
      run: async () => {
        await started.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    });
    return { runtime, url: pg.url(name) };
  }

  async function call(what: string, method: string, path: string, body?: unknown): Promise<{ outcome: Outcome; body: any }> {
    try {
      const res = await fetch(runtime.url + path, {
        method,
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const parsed = (await res.json()) as any;
      const outcome: Outcome = { what, status: res.status, retryAfter: res.headers.get('retry-after') };
      if (res.status >= 400) {
        outcome.code = parsed?.error?.code;
        outcome.message = parsed?.error?.message;
      }
      return { outcome, body: parsed };
    } catch (err) {
      return { outcome: { what, status: 0, retryAfter: null, networkError: String(err) }, body: null };
    }
  }

  it('answers successes or retryable 503s through fast and immediate restarts, resumes, and loses no acknowledged event', async () => {
    const { url: databaseUrl } = await startServer('restarts');
    const outcomes: Outcome[] = [];
    const acks: Ack[] = [];
    let stop = false;
    /** A 503's Retry-After in seconds, waited at most 250 ms here (the test does not idle whole seconds). */
    const pause = (o: Outcome) => sleep(Math.min(Number(o.retryAfter ?? '1') * 1000, 250));

    // Single appends: each key is retried until it is acknowledged (or the test stops).
    const writer = async (c: number) => {
      for (let i = 0; !stop; i++) {
        const key = `w${c}-${i}`;
        for (;;) {
          const { outcome, body } = await call('POST /events', 'POST', '/api/v1/events', { action: 'failover.single', status: 'success', correlationId: key, idempotencyKey: key });
          outcomes.push(outcome);
          if (outcome.status === 201) {
            acks.push({ key, id: body.id, leafIndex: body.leafIndex, at: Date.now() });
            break;
          }
          if (stop) return;
          await pause(outcome);
        }
      }
    };
    // Bulk appends of 10: the items that failed are sent again with their keys.
    const bulkWriter = async () => {
      for (let i = 0; !stop; i++) {
        let keys = Array.from({ length: 10 }, (_, k) => `b${i}-${k}`);
        while (keys.length > 0) {
          const { outcome, body } = await call('POST /events/bulk', 'POST', '/api/v1/events/bulk', {
            events: keys.map((key) => ({ action: 'failover.bulk', status: 'success', correlationId: key, idempotencyKey: key })),
            receipts: 'compact',
          });
          if (outcome.status === 200) {
            const failed: string[] = [];
            outcome.itemCodes = [];
            for (const r of body.results as Array<{ index: number; ok: boolean; receipt?: { id: string; leafIndex: number }; error?: { code: string } }>) {
              if (r.ok) acks.push({ key: keys[r.index]!, id: r.receipt!.id, leafIndex: r.receipt!.leafIndex, at: Date.now() });
              else {
                failed.push(keys[r.index]!);
                outcome.itemCodes.push(r.error!.code);
              }
            }
            keys = failed;
          }
          outcomes.push(outcome);
          if (stop) return;
          if (keys.length > 0) await pause(outcome);
        }
      }
    };
    // Reads (each one is itself recorded in the ledger as an access event).
    const reader = async () => {
      for (let i = 0; !stop; i++) {
        const path = i % 2 === 0 ? '/api/v1/events?limit=5' : '/api/v1/ledger/checkpoint';
        const { outcome } = await call(`GET ${path.split('?')[0]!}`, 'GET', path);
        outcomes.push(outcome);
        if (outcome.status !== 200) await pause(outcome);
      }
    };
    const startedAt = () => withClient(databaseUrl, async (c) => (await c.query<{ t: Date }>('SELECT pg_postmaster_start_time() AS t')).rows[0]!.t.getTime());
    const clients = [writer(0), writer(1), writer(2), writer(3), bulkWriter(), reader()];

    const describe = () =>
      `acks: ${acks.length}\noutcomes: ${JSON.stringify(summarize(outcomes))}\n--- postgres log ---\n${pg.log().split('\n').slice(-30).join('\n')}`;
    const waitAcks = (n: number, what: string) =>
      waitFor(what, () => (acks.length >= n ? true : outcomes.some((o) => o.networkError) ? Promise.reject(new Error('network error')) : undefined), {
        intervalMs: 50,
        timeoutMs: 180_000,
        describe,
      });
    const figures: string[] = [];
    try {
      await waitAcks(60, 'steady ingest before the first restart');
      for (const mode of ['fast', 'immediate'] as const) {
        const from = outcomes.length;
        const started = Date.now();
        const postmaster = await startedAt();
        await pg.restart(mode);
        expect(await startedAt()).not.toEqual(postmaster);
        const back = Date.now();
        const ackedWhenBack = acks.length;
        await waitAcks(ackedWhenBack + 60, `appends to resume after pg_ctl restart -m ${mode}`);
        const first = acks.slice(ackedWhenBack).reduce((t, a) => Math.min(t, a.at), Infinity);
        const window = outcomes.slice(from);
        figures.push(
          `${mode}: pg_ctl restart ${back - started} ms; first acknowledgement ${first - back} ms after it returned; ` +
            `answers meanwhile: ${JSON.stringify(summarize(window))}`,
        );
      }
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    console.log(`PostgreSQL restarts under ingest:\n${figures.join('\n')}`);

    // Only successes and retryable 503s, each naming the database and carrying Retry-After.
    const bad = outcomes.filter((o) => {
      if (o.networkError) return true;
      if (o.status === 201 || (o.status === 200 && !o.itemCodes)) return false;
      if (o.status === 200) return o.itemCodes!.some((c) => c !== 'UNAVAILABLE');
      return !(o.status === 503 && o.code === 'UNAVAILABLE' && /^[1-9][0-9]*$/.test(o.retryAfter ?? '') && /database/.test(o.message ?? ''));
    });
    expect(bad).toEqual([]);

    // Every acknowledged event is stored once, at its acknowledged leaf index.
    const stored = await withClient(databaseUrl, async (c) =>
      (await c.query<{ id: string; leaf_index: string; correlation_id: string }>("SELECT id, leaf_index, correlation_id FROM events WHERE action LIKE 'failover.%'")).rows,
    );
    const byKey = new Map<string, Array<{ id: string; leafIndex: number }>>();
    for (const r of stored) byKey.set(r.correlation_id, [...(byKey.get(r.correlation_id) ?? []), { id: r.id, leafIndex: Number(r.leaf_index) }]);
    const missing = acks.filter((a) => {
      const rows = byKey.get(a.key) ?? [];
      return rows.length !== 1 || rows[0]!.id !== a.id || rows[0]!.leafIndex !== a.leafIndex;
    });
    expect(missing).toEqual([]);

    // The whole ledger verifies with the trusted verifier key.
    const database = await openDatabase({ url: databaseUrl, poolMax: 2 });
    try {
      const results = await verifyLedgers(database, { origin: ORIGIN, verifiers: [parseVerifierKey(verifierKey)] });
      expect(results.length).toBeGreaterThan(0);
      expect(results.filter((r) => !r.ok)).toEqual([]);
    } finally {
      await database.close();
    }
  });

  it('holds a request that arrives while PostgreSQL is down until it is back (within DATABASE_RETRY_MS)', async () => {
    // Through the proxy, which counts the connections the server tries while PostgreSQL is down.
    const proxy = await startCommitCutter(pg.port);
    cleanups.push({ what: 'the proxy', run: () => proxy.close() });
    const { url: databaseUrl } = await startServer('held', { DATABASE_RETRY_MS: '60000' }, proxy.port);
    const warm = await call('POST /events', 'POST', '/api/v1/events', { action: 'failover.warm', status: 'success' });
    expect(warm.outcome.status).toBe(201);
    await pg.stop('fast');
    let restarted = false;
    try {
      let settled = false;
      const pending = call('POST /events', 'POST', '/api/v1/events', { action: 'failover.held', status: 'success', correlationId: 'held' }).finally(() => (settled = true));
      // The server has tried (and failed) to reach PostgreSQL twice for this request: it is waiting,
      // not answering (a 503 would have settled the request).
      const before = proxy.refused;
      await waitFor('the server to retry its connection', () => (proxy.refused >= before + 2 || settled ? true : undefined), { intervalMs: 20, timeoutMs: 60_000 });
      expect(settled).toBe(false);
      await pg.start();
      restarted = true;
      const { outcome, body } = await pending;
      expect(outcome).toMatchObject({ status: 201 });
      const stored = await withClient(databaseUrl, async (c) => (await c.query<{ id: string }>("SELECT id FROM events WHERE correlation_id = 'held'")).rows);
      expect(stored).toEqual([{ id: body.id }]);
    } finally {
      if (!restarted) await pg.start();
    }
  });

  it('answers 503 with Retry-After naming the database on REST, tRPC and GraphQL while PostgreSQL stays down', async () => {
    await startServer('down', { DATABASE_RETRY_MS: '200' });
    const created = await call('POST /events', 'POST', '/api/v1/events', { action: 'failover.before', status: 'success' });
    expect(created.outcome.status).toBe(201);
    await pg.stop('fast');
    try {
      const post = await call('POST /events', 'POST', '/api/v1/events', { action: 'failover.down', status: 'success' });
      const get = await call('GET /events/:id', 'GET', `/api/v1/events/${created.body.id as string}`);
      const checkpoint = await call('GET /ledger/checkpoint', 'GET', '/api/v1/ledger/checkpoint');
      for (const { outcome } of [post, get, checkpoint]) {
        expect(outcome).toMatchObject({ status: 503, code: 'UNAVAILABLE', retryAfter: '2' });
        expect(outcome.message).toMatch(/^the database is unavailable/);
      }
      const trpc = await fetch(`${runtime.url}/trpc/ledger.checkpoint`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
      const trpcBody = (await trpc.json()) as any;
      expect([trpc.status, trpc.headers.get('retry-after'), trpcBody.error?.data?.code]).toEqual([503, '2', 'SERVICE_UNAVAILABLE']);
      expect(trpcBody.error.message).toMatch(/^the database is unavailable/);
      const graphql = await fetch(`${runtime.url}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ query: '{ ledgerCheckpoint { treeSize } }' }),
      });
      const graphqlBody = (await graphql.json()) as any;
      expect(graphql.headers.get('retry-after')).toBe('2');
      expect(graphqlBody.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
      expect(graphqlBody.errors?.[0]?.message).toMatch(/^the database is unavailable/);
      const ready = await fetch(`${runtime.url}/ready`);
      expect(ready.status).toBe(503);
    } finally {
      await pg.start();
    }
    await waitFor('appends to resume', async () => ((await call('POST /events', 'POST', '/api/v1/events', { action: 'failover.after', status: 'success' })).outcome.status === 201 ? true : undefined), {
      intervalMs: 100,
      timeoutMs: 60_000,
    });
  });

  for (const mode of ['before-commit', 'after-commit'] as const) {
    it(`stores an event exactly once and acknowledges it when the connection is lost ${mode === 'before-commit' ? 'before COMMIT is sent' : 'after COMMIT, before its answer'}`, async () => {
      const cutter = await startCommitCutter(pg.port);
      cleanups.push({ what: 'the cutting proxy', run: () => cutter.close() });
      const { url: databaseUrl } = await startServer(mode, { DATABASE_RETRY_MS: '30000' }, cutter.port);
      const marker = `cut-${mode}-${randomBytes(4).toString('hex')}`;
      cutter.arm(marker, mode);
      // No idempotency key: only the server can tell whether the lost COMMIT happened.
      const { outcome, body } = await call('POST /events', 'POST', '/api/v1/events', { action: 'failover.cut', status: 'success', correlationId: marker });
      expect(cutter.cuts).toBe(1);
      expect(outcome).toMatchObject({ status: 201 });
      const stored = await withClient(databaseUrl, async (c) =>
        (await c.query<{ id: string; leaf_index: string }>('SELECT id, leaf_index FROM events WHERE correlation_id = $1', [marker])).rows,
      );
      expect(stored).toEqual([{ id: body.id, leaf_index: String(body.leafIndex) }]);
      const database = await openDatabase({ url: databaseUrl, poolMax: 1 });
      try {
        const results = await verifyLedgers(database, { origin: ORIGIN, verifiers: [parseVerifierKey(verifierKey)] });
        expect(results.filter((r) => !r.ok)).toEqual([]);
      } finally {
        await database.close();
      }
    });
  }
});

/** Counts of answers by route and status (and failed bulk item codes). */
function summarize(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const key = `${o.what} ${o.networkError ? 'network error' : o.status}${o.code ? ` ${o.code}` : ''}${o.itemCodes?.length ? ` items:${[...new Set(o.itemCodes)].join(',')}` : ''}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
