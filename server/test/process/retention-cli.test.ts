/**
 * `audit-admin retention run` (docs/privacy.md §6), on each backend: one pass archives last
 * month's events (an archive `audit-verify bundle` accepts), erases them and drops their month,
 * prints what it did, and appends retention.* events signed with the servers' key; a second pass
 * finds nothing to do. On the embedded default it refuses (exit 3) while a server holds the data
 * directory; on PostgreSQL it runs beside the server, whose cached reads show the erasure. Without
 * the servers' signing key it refuses (exit 2) without printing a key.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { loadConfig } from '../../src/config';
import { generateSignerKey } from '../../src/ledger';
import { createLogger } from '../../src/observability/logger';
import { startRuntime, type Runtime } from '../../src/runtime';
import { describeEachBackend } from '../helpers/backends';
import { runAdminCli as cli } from '../helpers/process';
import { startTestServer, TEST_ADMIN_KEY, type TestServer } from '../helpers/server';
import { auditVerifyBundle, verifyNdjson } from '../privacy/helpers';

jest.setTimeout(600_000);

// Only Date moves back while last month's events are ingested; timers stay real.
const TIMERS = ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] as const;

/** The environment a CLI needs to act on the server's store: database, key, origin, archives, Redis. */
function cliEnv(env: Record<string, string>): Record<string, string> {
  const keep = ['AUDIT_DATA_DIR', 'DATABASE_URL', 'AUDIT_SIGNING_KEY', 'AUDIT_LOG_ORIGIN', 'RETENTION_ARCHIVE_DIR', 'REDIS_URL', 'CACHE_KEY_PREFIX'];
  return Object.fromEntries(Object.entries(env).filter(([k]) => keep.includes(k)));
}

describeEachBackend('audit-admin retention run on %s', (backend) => {
  let srv: TestServer;
  let archives: string;
  /** A server restarted on the embedded data directory after the CLI ran (PGlite). */
  let restarted: Runtime | null = null;
  let url: string;

  const get = async (p: string) => {
    const res = await fetch(url + p, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    archives = fs.mkdtempSync(path.join(os.tmpdir(), 'retention-cli-'));
    srv = await startTestServer(backend, { RETENTION_ARCHIVE_DIR: archives, RETENTION_INTERVAL_MS: '0', INGEST_MAX_WAIT_MS: '0', AUDIT_SELF_AUDIT_INTERVAL_MS: '0' });
    url = srv.url;
    const now = new Date();
    jest.useFakeTimers({ doNotFake: [...TIMERS], now: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1, 12)) });
    try {
      const events = Array.from({ length: 5 }, (_, i) => ({
        action: 'data.read',
        status: 'success',
        principalId: `dr-cli-${i}`,
        patientId: 'patient-cli-old',
        dataClassification: 'PHI',
        details: { note: `visit ${i}` },
      }));
      expect((await srv.request('POST', '/api/v1/events/bulk', { events })).body.accepted).toBe(5);
    } finally {
      jest.useRealTimers();
    }
    expect((await srv.request('POST', '/api/v1/events', { action: 'data.read', status: 'success', patientId: 'patient-cli-new', dataClassification: 'PHI' })).status).toBe(201);
    const put = await srv.request('PUT', '/api/v1/retention/policies', {
      policies: [
        { dataClassification: 'PHI', archiveAfterDays: 1, eraseAfterDays: 1 },
        { dataClassification: '*', archiveAfterDays: 1, eraseAfterDays: 1 },
      ],
    });
    expect(put.status).toBe(200);
  });

  afterAll(async () => {
    if (restarted) {
      await restarted.close();
      fs.rmSync(srv.env.AUDIT_DATA_DIR!, { recursive: true, force: true });
    } else await srv?.close();
    fs.rmSync(archives, { recursive: true, force: true });
  });

  it('refuses without the servers\' signing key, naming neither key', async () => {
    const env = cliEnv(srv.env);
    if (backend === 'pglite') return; // the data directory is the server's while it runs (next test)
    const { AUDIT_SIGNING_KEY: _k, ...withoutKey } = env;
    const none = await cli(['retention', 'run'], withoutKey);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('set AUDIT_SIGNING_KEY');
    const other = generateSignerKey('test.audit').signerKey;
    const wrong = await cli(['retention', 'run'], { ...env, AUDIT_SIGNING_KEY: other });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain('is not the active key of this database');
    expect(wrong.stderr).not.toContain(other);
    expect(wrong.stdout).toBe('');
  });

  it('runs one pass: archives, erases, drops the month, and prints what it did', async () => {
    if (backend === 'pglite') {
      const refused = await cli(['retention', 'run'], cliEnv(srv.env));
      expect(refused.status).toBe(3);
      expect(refused.stderr).toContain(`in use by process ${process.pid}`);
      // The embedded data directory is free once the server stops; the CLI runs there, then a server again.
      await srv.runtime.close();
    } else {
      // Cached by the server before the run: the read after it must not be served from that cache.
      expect((await get('/api/v1/events?patientIds=patient-cli-old')).body.items).toHaveLength(5);
    }
    const run = await cli(['retention', 'run'], cliEnv(srv.env));
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.ran).toBe(true);
    const org = report.organizations.find((o: { organizationId: string }) => o.organizationId === srv.organizationId);
    expect(org.archive).toMatchObject({ start: 0, end: 5, events: 5 });
    expect(org.erased).toBe(5);
    expect(report.droppedPartitions).toEqual([{ name: expect.any(String), rows: 5 }]);

    // The archive verifies as an auditor checks it, and keeps what the database erased.
    const ndjson = gunzipSync(fs.readFileSync(path.join(archives, org.archive.object))).toString('utf8');
    expect(ndjson).toContain('patient-cli-old');
    const verified = auditVerifyBundle(ndjson, srv.verifierKey);
    expect(verified.stderr).toBe('');
    expect(verified.status).toBe(0);

    if (backend === 'pglite') {
      restarted = await startRuntime(loadConfig(srv.env), createLogger('silent'));
      url = restarted.url;
    }
    expect((await get('/api/v1/events?patientIds=patient-cli-old')).body.items).toEqual([]);
    expect((await get('/api/v1/events?patientIds=patient-cli-new')).body.items).toHaveLength(1);
    const actions = ((await get('/api/v1/events?actions=retention.archive,retention.erase,retention.partition.drop&limit=10')).body.items as Array<{ action: string }>).map((e) => e.action).sort();
    expect(actions).toEqual(['retention.archive', 'retention.erase', 'retention.partition.drop']);
    // The CLI's checkpoints are the servers' key's: the log after the dropped month still verifies.
    const res = await fetch(`${url}/api/v1/ledger/export`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    expect(res.status).toBe(200);
    const bundle = verifyNdjson(await res.text(), srv.verifierKey);
    expect(bundle.failures).toEqual([]);
    expect(bundle.start).toBe(5);
  });

  it('finds nothing to do on a second pass', async () => {
    if (backend === 'pglite') await restarted!.close();
    const again = await cli(['retention', 'run'], cliEnv(srv.env));
    expect(again.status).toBe(0);
    const org = JSON.parse(again.stdout).organizations.find((o: { organizationId: string }) => o.organizationId === srv.organizationId);
    // Only the run's own events are newer than the last archive, and they are from today.
    expect(org).toMatchObject({ archive: null, erased: 0 });
    if (backend === 'pglite') {
      restarted = await startRuntime(loadConfig(srv.env), createLogger('silent'));
      url = restarted.url;
    }
    expect((await get('/api/v1/retention/archives')).body.archives).toHaveLength(1);
  });
});
