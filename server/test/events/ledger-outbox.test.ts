/**
 * The ledger outbox (docs/jobs.md "Ledger outbox"), on each backend: a worker without the signing
 * key runs a retention pass, completes an erasure and raises a behaviour-anomaly alert; its events
 * wait in the outbox (recorded with the state they describe) and reach the log once a process that
 * holds the key drains it, through the normal ingest path, with receipts that verify and an export
 * that `audit-verify bundle` accepts; the rows are gone afterwards. A drainer that dies after
 * claiming loses nothing (another takes its rows over once the claim expires, and the dead one can
 * no longer append them), two drainers never append one row twice, a row that can never be appended
 * is set aside without blocking the others and without a value in any log line, and a subject
 * erasure waits for pending rows naming its subject and erases set-aside ones.
 *
 * On PostgreSQL the worker is a real `AUDIT_ROLE=worker` runtime given only the verifier key; on
 * PGlite (one process per data directory) it is the same wiring in process, on the api's database.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { AlertService } from '../../src/alerts/service';
import { anomalyAlertInput, raiseAnomalies } from '../../src/analytics/worker';
import type { AnomalyAlert } from '../../src/analytics/service';
import { loadConfig } from '../../src/config';
import { openDatabase, type Database } from '../../src/db/client';
import { IngestService } from '../../src/events/ingest';
import { OutboxDrainer, outboxAppend, type Append, type OutboxAppender } from '../../src/events/outbox';
import { DEFAULT_EVENT_LIMITS } from '../../src/events/limits';
import { eventInputSchemaFor, type EventInput } from '../../src/events/schema';
import { EventService } from '../../src/events/service';
import { AlertService as Alerts } from '../../src/alerts/service';
import { createLogger } from '../../src/observability/logger';
import type { PrivacyService } from '../../src/privacy/service';
import type { RetentionService } from '../../src/retention/service';
import { createAnalytics, createPrivacyAndRetention, startRuntime, trustedVerifierKeys, type Runtime } from '../../src/runtime';
import { LedgerService } from '../../src/tlog/service';
import { ReadCache } from '../../src/cache/read-cache';
import { describeEachBackend } from '../helpers/backends';
import { verifyReceipt } from '../helpers/receipts';
import { startTestServer, type TestServer } from '../helpers/server';
import { auditVerifyBundle, exportNdjson, verifyNdjson } from '../privacy/helpers';

jest.setTimeout(300_000);

const DAY_MS = 24 * 60 * 60 * 1000;
const schema = eventInputSchemaFor(DEFAULT_EVENT_LIMITS);
const silent = createLogger('silent');

/** What the worker side of the test uses: the services of a process without the signing key. */
interface WorkerSide {
  append: Append;
  privacy: PrivacyService;
  retention: RetentionService;
  alerts: AlertService;
  close(): Promise<void>;
}

/** Polls `check` with a short back-off until it holds (no fixed sleeps). */
async function waitFor(check: () => Promise<boolean>, what: string, deadlineMs = 60_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 250)) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

describeEachBackend('ledger outbox on %s', (backend) => {
  let api: TestServer;
  let worker: WorkerSide;
  let org: string;
  let archiveDir: string;
  const logs: string[] = [];

  async function outboxRows(): Promise<Array<{ id: number; source: string; event: Record<string, unknown> | null; failed_at: Date | null; error_code: string | null }>> {
    const r = await api.runtime.database.db.execute(sql`SELECT id, source, event, failed_at, error_code FROM ledger_outbox ORDER BY id`);
    return (r as { rows: Array<{ id: number; source: string; event: Record<string, unknown> | null; failed_at: Date | null; error_code: string | null }> }).rows;
  }
  async function pending() {
    return (await outboxRows()).filter((r) => r.failed_at === null);
  }
  async function treeSize(): Promise<number> {
    return (await api.runtime.services.ledger.checkpoint(org)).treeSize;
  }
  async function eventsWith(action: string) {
    return (await api.runtime.services.events.query(org, { limit: 1000, actions: [action] } as never)).items;
  }
  /** Drains until the outbox holds no pending row (one round normally suffices). */
  async function drainAll(): Promise<number> {
    let n = 0;
    for (;;) {
      const r = await api.runtime.outbox!.drainOnce();
      n += r.drained;
      if (r.claimed === 0) return n;
    }
  }

  beforeAll(async () => {
    archiveDir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-outbox-archive-'));
    // The api holds the signing key and drains only when asked (the timer is tested by the process test of docs/jobs.md's wiring).
    api = await startTestServer(
      backend,
      { LEDGER_OUTBOX_DRAIN_INTERVAL_MS: '0', INGEST_MAX_WAIT_MS: '2', RETENTION_INTERVAL_MS: '0', AUDIT_SELF_AUDIT_INTERVAL_MS: '0', PRIVACY_RESUME_INTERVAL_MS: '0', LOG_LEVEL: 'info' },
      { log: (line) => logs.push(line) },
    );
    org = api.organizationId;
    worker = await startWorker();
  }, 300_000);
  afterAll(async () => {
    await worker?.close();
    await api?.close();
    fs.rmSync(archiveDir, { recursive: true, force: true });
  });

  /** A process without the signing key: a real worker runtime on PostgreSQL, its wiring in process on PGlite. */
  async function startWorker(): Promise<WorkerSide> {
    const env = {
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      AUDIT_ROLE: 'worker',
      AUDIT_LOG_ORIGIN: 'test.audit',
      AUDIT_VERIFIER_KEY: api.verifierKey,
      RETENTION_ARCHIVE_DIR: archiveDir,
      RETENTION_DROP_PARTITIONS: 'false',
      RETENTION_INTERVAL_MS: '0',
      PRIVACY_RESUME_INTERVAL_MS: '0',
      AUDIT_SELF_AUDIT_INTERVAL_MS: '0',
      ANALYTICS_INTERVAL_MS: '0',
      DELIVERY_SWEEP_INTERVAL_MS: '0',
      ALERTS_DETECTORS_ENABLED: 'false',
      ...(backend === 'postgres' ? { DATABASE_URL: api.env.DATABASE_URL!, DATABASE_MIGRATE_ON_START: 'false' } : { AUDIT_DATA_DIR: api.env.AUDIT_DATA_DIR! }),
    };
    const config = loadConfig(env);
    const logger = createLogger('info', { write: (line: string) => void logs.push(line) });
    if (backend === 'postgres') {
      const runtime: Runtime = await startRuntime(config, logger);
      expect(runtime.signer).toBeNull();
      expect(runtime.outbox).toBeNull();
      return {
        append: outboxAppend(runtime.database, 'worker'),
        privacy: runtime.services.privacy,
        retention: runtime.services.retention!,
        alerts: runtime.alerts,
        close: () => runtime.close(),
      };
    }
    // PGlite: the worker's wiring (no signer: the ledger outbox) on the api's database.
    const database = api.runtime.database;
    const append = outboxAppend(database, 'worker');
    const ledger = new LedgerService(database, null, config.AUDIT_LOG_ORIGIN);
    const { privacy, retention } = createPrivacyAndRetention(
      config,
      database,
      { append, originOf: (o) => ledger.originOf(o), cache: new ReadCache(null, { ttlSeconds: 1, prefix: 'outbox-test:' }, { hit: () => undefined, miss: () => undefined, error: () => undefined }), analytics: createAnalytics(config, database), verifiers: trustedVerifierKeys(config, null) },
      logger,
    );
    return { append, privacy, retention, alerts: new Alerts(database, { append }), close: () => Promise.resolve() };
  }

  it('a retention run of the worker records its archive with its events in the outbox; a drain appends them with valid receipts', async () => {
    const events = Array.from({ length: 4 }, (_, i) => ({ action: 'data.read', status: 'success', principalId: `dr-${i}`, patientId: 'patient-r', dataClassification: 'PHI' }));
    expect((await api.request('POST', '/api/v1/events/bulk', { events })).body.accepted).toBe(4);
    expect(
      (await api.request('PUT', '/api/v1/retention/policies', { policies: [{ dataClassification: 'PHI', archiveAfterDays: 1, eraseAfterDays: 1 }] })).status,
    ).toBe(200);
    const before = await treeSize();

    const report = await worker.retention.run(new Date(Date.now() + 2 * DAY_MS));
    expect(report.ran).toBe(true);
    const run = report.organizations.find((o) => o.organizationId === org)!;
    expect(run.archive).not.toBeNull();
    expect(run.erased).toBe(4);
    // Recorded: the archive row and its event committed together; nothing appended yet.
    expect(await worker.retention.archives(org)).toHaveLength(1);
    expect(await treeSize()).toBe(before);
    const rows = await pending();
    expect(rows.map((r) => [r.source, r.event!.action])).toEqual([
      ['worker:retention', 'retention.archive'],
      ['worker:retention', 'retention.erase'],
    ]);

    // A retried run does not enqueue the archive event again (nothing new to archive; and the
    // archive event's idempotency key is the row's dedupe key).
    expect(await drainAll()).toBe(2);
    expect(await pending()).toEqual([]);
    expect(await treeSize()).toBe(before + 2);
    const [archived] = await eventsWith('retention.archive');
    expect(archived).toMatchObject({ organizationId: org, principalId: 'system:retention', targetResourceType: 'Archive' });
    expect(await eventsWith('retention.erase')).toHaveLength(1);

    // Its proof verifies against the signed checkpoint.
    const { inclusionProof: proof, checkpoint } = (await api.runtime.services.events.getById(org, archived!.id, true)) as {
      inclusionProof: { leafIndex: number; treeSize: number; leafHash: string; hashes: string[] };
      checkpoint: { treeSize: number; rootHash: string; note: string };
    };
    expect(proof.treeSize).toBe(checkpoint.treeSize);
    expect(() =>
      verifyReceipt(
        { leafHash: proof.leafHash, leafIndex: proof.leafIndex, treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash, checkpoint: checkpoint.note, inclusionProof: { hashes: proof.hashes } },
        api.verifierKey,
        api.runtime.services.ledger.originOf(org),
      ),
    ).not.toThrow();
  });

  it('an erasure completed by the worker is completed at once, and its events reach the log when drained', async () => {
    const events = Array.from({ length: 3 }, () => ({ action: 'data.read', status: 'success', principalId: 'dr-e', patientId: 'patient-erase-1' }));
    expect((await api.request('POST', '/api/v1/events/bulk', { events })).body.accepted).toBe(3);
    const info = await worker.privacy.erasures.request(org, { principalId: 'dpo-1', principalType: 'user' }, 'patientId', 'patient-erase-1', 'GDPR Art. 17');
    expect(info).toMatchObject({ state: 'completed', eventsErased: 3 });
    const rows = await pending();
    expect(rows.map((r) => [r.source, r.event!.action])).toEqual([
      ['worker:privacy', 'privacy.erase'],
      ['worker:privacy', 'privacy.erase.completed'],
    ]);
    expect(JSON.stringify(rows)).not.toContain('patient-erase-1');
    expect(await drainAll()).toBe(2);
    const [completed] = await eventsWith('privacy.erase.completed');
    expect(completed).toMatchObject({ targetResourceId: info.id });
    expect(await pending()).toEqual([]);
  });

  it('a behaviour-anomaly alert raised by the worker is stored and its alert.raised event appended once drained', async () => {
    const alert = {
      organizationId: org,
      dedupeKey: 'anomaly:test-1',
      threshold: 4,
      anomaly: { eventId: '01900000-0000-7000-8000-0000000000aa', recordedAt: new Date().toISOString(), action: 'data.export', status: 'success', targetResourceType: 'Patient', principalId: 'dr-odd', distance: 0.9, score: 7.5 },
      baseline: { principalId: 'dr-odd', from: new Date().toISOString(), events: 50, meanDistance: 0.1, stddevDistance: 0.1 },
      nearestNormal: [],
    } as unknown as AnomalyAlert;
    await raiseAnomalies((o, input) => worker.alerts.raise(o, input), silent)(alert);
    expect((await api.runtime.alerts.list(org, { limit: 10 })).items.map((a) => a.subject)).toContain(anomalyAlertInput(alert).subject);
    expect((await pending()).map((r) => [r.source, r.event!.action])).toEqual([['worker:alert', 'alert.raised']]);
    expect(await drainAll()).toBe(1);
    const [raised] = await eventsWith('alert.raised');
    expect(raised).toMatchObject({ principalId: 'system:alerts', targetResourceType: 'SecurityAlert' });
  });

  it('reports depth, oldest age and drained rows at /metrics', async () => {
    await worker.append(org, schema.parse({ action: 'worker.probe', status: 'success', principalId: 'system:test' }));
    const before = String((await api.request('GET', '/metrics', undefined, null)).body);
    expect(before).toMatch(/^audit_ledger_outbox_depth 1$/m);
    expect(before).toMatch(/^audit_ledger_outbox_oldest_age_seconds \d/m);
    expect(await drainAll()).toBe(1);
    const after = String((await api.request('GET', '/metrics', undefined, null)).body);
    expect(after).toMatch(/^audit_ledger_outbox_depth 0$/m);
    expect(after).toMatch(/^audit_ledger_outbox_drained_total [1-9]\d*$/m);
  });

  it('loses nothing when a drainer dies after claiming: its rows are taken over once its claim expires, and it can no longer append them', async () => {
    for (let i = 0; i < 5; i++) await worker.append(org, schema.parse({ action: 'worker.crash', status: 'success', principalId: 'system:test', details: { n: i } }));
    const before = await treeSize();
    // A drainer that claims and then hangs (a process that died mid-round), with a short claim.
    const held: Array<{ org: string; input: EventInput; options: Parameters<OutboxAppender['create']>[2] }> = [];
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const dead = new OutboxDrainer(
      api.runtime.database,
      {
        create: async (o, input, options) => {
          held.push({ org: o, input, options });
          await released;
          // Comes back after the take-over and tries to append with its stale claim.
          return api.runtime.services.events.create(o, input, options);
        },
      },
      schema,
      { batchSize: 100, claimMs: 1000, intervalMs: 0 },
      { drained: () => undefined, failed: () => undefined },
      silent,
    );
    const deadRound = dead.drainOnce();
    await waitFor(async () => held.length === 5, 'the dead drainer to claim the rows');
    // Nothing is claimable while the claim holds; afterwards the live drainer takes every row.
    let drained = 0;
    await waitFor(async () => (drained += (await api.runtime.outbox!.drainOnce()).drained) === 5, 'the rows to be taken over', 30_000);
    release();
    const late = await deadRound;
    expect(late).toMatchObject({ drained: 0, retry: 5 });
    expect(await treeSize()).toBe(before + 5);
    const ns = (await eventsWith('worker.crash')).map((e) => (e.details as { n: number }).n).sort();
    expect(ns).toEqual([0, 1, 2, 3, 4]);
    expect(await pending()).toEqual([]);
  });

  it('two drainers at once never append a row twice', async () => {
    const N = 120;
    await Promise.all(Array.from({ length: N }, (_, i) => worker.append(org, schema.parse({ action: 'worker.race', status: 'success', principalId: 'system:test', details: { n: i } }))));
    const before = await treeSize();
    // A second replica: its own connection pool (PostgreSQL), ingest and drainer, the same key.
    let second: Database = api.runtime.database;
    if (backend === 'postgres') second = await openDatabase({ url: api.env.DATABASE_URL, poolMax: 4 });
    try {
      const ledger = new LedgerService(second, api.runtime.signer, 'test.audit');
      const ingest = new IngestService(second, ledger, { maxBatch: 50, maxWaitMs: 2 });
      const other = new OutboxDrainer(second, new EventService(second, ingest, ledger), schema, { batchSize: 15, claimMs: 60_000, intervalMs: 0 }, { drained: () => undefined, failed: () => undefined }, silent);
      const mine = new OutboxDrainer(api.runtime.database, api.runtime.services.events, schema, { batchSize: 15, claimMs: 60_000, intervalMs: 0 }, { drained: () => undefined, failed: () => undefined }, silent);
      const loop = async (d: OutboxDrainer) => {
        let n = 0;
        for (;;) {
          const r = await d.drainOnce();
          n += r.drained;
          if (r.claimed === 0) return n;
        }
      };
      const [a, b] = await Promise.all([loop(mine), loop(other)]);
      await ingest.drain();
      expect(a + b).toBe(N);
      if (backend === 'postgres') expect(Math.min(a, b)).toBeGreaterThan(0);
    } finally {
      if (second !== api.runtime.database) await second.close();
    }
    expect(await treeSize()).toBe(before + N);
    const ns = (await eventsWith('worker.race')).map((e) => (e.details as { n: number }).n).sort((x, y) => x - y);
    expect(ns).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(await pending()).toEqual([]);
  });

  it('sets a poison row aside without blocking the queue or logging its values; an erasure erases it and waits for pending rows naming its subject', async () => {
    const db = api.runtime.database.db;
    // Invalid: no status (a row written by an older or foreign version).
    await db.execute(sql`INSERT INTO ledger_outbox (organization_id, source, event) VALUES (${org}, 'worker:test', ${JSON.stringify({ action: 'data.read', patientId: 'patient-poison-SECRET' })}::jsonb)`);
    await worker.append(org, schema.parse({ action: 'data.read', status: 'success', principalId: 'dr-p', patientId: 'patient-pending-7' }));

    // The pending row names the subject: the erasure waits for it (stays running, lease released).
    const info = await api.runtime.services.privacy.erasures.request(org, { principalId: 'dpo-1', principalType: 'user' }, 'patientId', 'patient-pending-7', 'GDPR Art. 17');
    expect(info.state).toBe('running');
    const before = await treeSize();

    const round = await api.runtime.outbox!.drainOnce();
    expect(round).toMatchObject({ claimed: 2, drained: 1, setAside: 1 });
    expect(await treeSize()).toBe(before + 1);
    const rows = await outboxRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ source: 'worker:test', error_code: 'invalid:status' });
    expect(rows[0]!.failed_at).not.toBeNull();
    // Set aside: never claimed again.
    expect((await api.runtime.outbox!.drainOnce()).claimed).toBe(0);
    const metrics = String((await api.request('GET', '/metrics', undefined, null)).body);
    expect(metrics).toMatch(/^audit_ledger_outbox_set_aside 1$/m);
    expect(metrics).toMatch(/^audit_ledger_outbox_failures_total\{reason="set_aside"\} 1$/m);

    // Resumed now that the row is in the log: the appended event is erased like any other.
    await api.runtime.services.privacy.erasures.resumePending();
    expect((await api.runtime.services.privacy.erasures.get(org, info.id))!).toMatchObject({ state: 'completed', eventsErased: 1 });
    const appended = (await eventsWith('data.read')).filter((e) => (e as { principalId?: string }).principalId === undefined && e.erasedFields.includes('patientId'));
    expect(appended.length).toBeGreaterThan(0);

    // An erasure of the poison row's subject removes its event (the row stays as a record).
    const poison = await api.runtime.services.privacy.erasures.request(org, { principalId: 'dpo-1', principalType: 'user' }, 'patientId', 'patient-poison-SECRET', 'GDPR Art. 17');
    expect(poison.state).toBe('completed');
    expect((await outboxRows())[0]).toMatchObject({ event: null, error_code: 'invalid:status' });
    expect(logs.filter((l) => l.includes('patient-poison-SECRET') || l.includes('patient-pending-7'))).toEqual([]);
    expect(logs.some((l) => l.includes('ledger outbox row set aside'))).toBe(true);
  });

  it('a started drainer drains on its timer until stopped', async () => {
    const timed = new OutboxDrainer(api.runtime.database, api.runtime.services.events, schema, { batchSize: 10, claimMs: 60_000, intervalMs: 20 }, { drained: () => undefined, failed: () => undefined }, silent);
    timed.start();
    try {
      for (let i = 0; i < 25; i++) await worker.append(org, schema.parse({ action: 'worker.timed', status: 'success', principalId: 'system:test', details: { n: i } }));
      await waitFor(async () => (await eventsWith('worker.timed')).length === 25, 'the timer to drain 25 rows');
      expect(await pending()).toEqual([]);
    } finally {
      await timed.stop();
    }
    await worker.append(org, schema.parse({ action: 'worker.after-stop', status: 'success', principalId: 'system:test' }));
    expect(await pending()).toHaveLength(1);
    expect(await drainAll()).toBe(1);
  });

  it('the whole log still verifies with audit-verify', async () => {
    const ndjson = await exportNdjson(api);
    expect(verifyNdjson(ndjson, api.verifierKey).ok).toBe(true);
    const cli = auditVerifyBundle(ndjson, api.verifierKey);
    expect({ status: cli.status, stderr: cli.stderr }).toEqual({ status: 0, stderr: '' });
  });
});
