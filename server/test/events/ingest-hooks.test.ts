/**
 * The ingest's after-COMMIT hooks (detectors, live streams, metrics, witnessing) cannot touch the
 * appends they report on (docs/architecture.md §3): a hook that throws, or returns a promise that
 * rejects, is counted and logged by name, and the batch is neither retried, nor appended a second
 * time, nor answered with an error — every event is stored once and every receipt verifies. Before
 * the hooks were isolated, a throw inside the commit step sent the committed batch back to the
 * split-and-retry path, which appended its halves again.
 */
import { createOrganization } from '../../src/auth/organizations';
import { IngestService, type IngestHook, type IngestObserver } from '../../src/events/ingest';
import { DEFAULT_EVENT_LIMITS } from '../../src/events/limits';
import { eventInputSchemaFor, type EventInput, type Receipt } from '../../src/events/schema';
import { generateSignerKey, parseSignerKey } from '../../src/ledger';
import { METRIC_NAMES } from '../../src/observability/metric-names';
import { LedgerService } from '../../src/tlog/service';
import { describeEachBackend } from '../helpers/backends';
import { openInstrumentedDatabase, type InstrumentedDatabase } from '../helpers/instrumented-database';
import { verifyReceipt } from '../helpers/receipts';
import { waitFor } from '../jobs/helpers';
import { startTestServer, type TestServer } from '../helpers/server';

const ORIGIN = 'test.audit';
const schema = eventInputSchemaFor(DEFAULT_EVENT_LIMITS);
/** A value that must never reach a log line, whatever a failing hook puts in its error. */
const SECRET = 'patient-secret-0042';
const event = (i: number): EventInput => schema.parse({ action: 'data.read', status: 'success', principalId: `p-${i}`, patientId: SECRET });

describeEachBackend('ingest hooks that fail on %s', (backend) => {
  let idb: InstrumentedDatabase;
  let org: string;
  const { signerKey, verifierKey } = generateSignerKey(ORIGIN);
  const failures: Array<{ hook: IngestHook; err: unknown }> = [];
  const service = (observer: Omit<IngestObserver, 'hookFailed'>) =>
    new IngestService(idb.database, new LedgerService(idb.database, parseSignerKey(signerKey), ORIGIN), { maxBatch: 10, maxWaitMs: 0 }, {
      ...observer,
      hookFailed: (hook, err) => failures.push({ hook, err }),
    });
  const stored = async () =>
    (await idb.query<{ n: number; lo: number | null; hi: number | null }>('SELECT count(*)::int AS n, min(leaf_index)::int AS lo, max(leaf_index)::int AS hi FROM events WHERE organization_id = $1', [org]))[0]!;

  beforeAll(async () => {
    idb = await openInstrumentedDatabase(backend);
  }, 180_000);
  beforeEach(async () => {
    for (const k of Object.keys(idb.hooks)) delete idb.hooks[k as keyof typeof idb.hooks];
    failures.length = 0;
    org = (await createOrganization(idb.database, 'tenant')).id;
  });
  afterAll(async () => {
    await idb?.close();
  });

  it('a hook that throws after COMMIT: every event stored once, every receipt answered and valid', async () => {
    let transactions = 0;
    idb.hooks.afterCommit = () => void transactions++;
    const boom = (): never => {
      throw new Error(`hook broke on ${SECRET}`);
    };
    const ingest = service({ batchCommitted: boom, checkpointCommitted: boom, eventsCommitted: boom });
    // 25 events in batches of 10: a re-append would show as a leaf count above 25.
    const receipts: Receipt[] = await Promise.all(ingest.append(org, Array.from({ length: 25 }, (_, i) => event(i))));
    expect(receipts.map((r) => r.leafIndex)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    for (const r of receipts) verifyReceipt(r, verifierKey, `${ORIGIN}/${org}`);
    expect(await stored()).toEqual({ n: 25, lo: 0, hi: 24 });
    expect(transactions).toBe(3);
    // Each of the 3 batches reported each throwing hook once.
    expect(failures.map((f) => f.hook).sort()).toEqual([
      ...Array<IngestHook>(3).fill('batchCommitted'),
      ...Array<IngestHook>(3).fill('checkpointCommitted'),
      ...Array<IngestHook>(3).fill('eventsCommitted'),
    ]);
    await ingest.drain();
  });

  it('a hook whose promise rejects: reported, and the appends stand', async () => {
    const ingest = service({
      batchCommitted: () => undefined,
      // A hook typed `void` may still be an async function.
      eventsCommitted: () => Promise.reject(new Error(`async hook broke on ${SECRET}`)) as unknown as void,
    });
    const receipts = await Promise.all(ingest.append(org, [event(1), event(2), event(3)]));
    expect(receipts.map((r) => r.leafIndex)).toEqual([0, 1, 2]);
    await waitFor(() => failures.length === 1, 'the rejection to be reported');
    expect(failures[0]!.hook).toBe('eventsCommitted');
    expect(await stored()).toEqual({ n: 3, lo: 0, hi: 2 });
    await ingest.drain();
  });

  it('an appendFailed hook that throws: the refused event still fails alone, its neighbours are stored, nothing hangs', async () => {
    const ingest = service({
      batchCommitted: () => undefined,
      appendFailed: () => {
        throw new Error('failure hook broke');
      },
    });
    // The database refuses the middle event (a data exception, SQLSTATE class 22): the batch of
    // three is split until that event fails alone. Its append statements, in order: [1,2,3]
    // refused, [1,2] refused, [1] stored, [2] refused, [3] stored. Before the hooks were
    // isolated, the throwing appendFailed of [2] left event 3 waiting forever.
    let appends = 0;
    idb.hooks.beforeStatement = (s) => {
      if (!/INSERT INTO events/.test(s.text)) return;
      appends++;
      if (appends === 1 || appends === 2 || appends === 4) throw Object.assign(new Error('value refused'), { code: '22001' });
    };
    const inputs = [event(1), event(2), event(3)];
    const results = await Promise.allSettled(ingest.append(org, inputs));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'BAD_REQUEST' });
    expect(await stored()).toEqual({ n: 2, lo: 0, hi: 1 });
    expect(failures.map((f) => f.hook)).toEqual(['appendFailed']);
    await ingest.drain();
  });
});

describeEachBackend('a running server whose live-stream hook throws, on %s', (backend) => {
  let srv: TestServer;
  const lines: string[] = [];

  beforeAll(async () => {
    srv = await startTestServer(backend, { INGEST_MAX_WAIT_MS: '5', LOG_LEVEL: 'info' }, { log: (l) => lines.push(l) });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('answers every append, counts the failure, and logs the hook without any value', async () => {
    // Fault injection into the real hub of the real server (nothing is stubbed around it): the
    // error it throws quotes a value, as a careless hook might.
    const hub = srv.runtime.services.streams!;
    hub.committed = () => {
      throw new Error(`stream hook broke on ${SECRET}`);
    };
    const bulk = await srv.request('POST', '/api/v1/events/bulk', {
      events: Array.from({ length: 12 }, (_, i) => ({ action: 'data.read', status: 'success', principalId: `p-${i}`, patientId: SECRET })),
    });
    expect(bulk.status).toBe(200);
    const results = bulk.body.results as Array<{ ok: boolean; receipt: Receipt }>;
    expect(results.map((r) => r.ok)).toEqual(Array(12).fill(true));
    for (const r of results) verifyReceipt(r.receipt, srv.verifierKey, `test.audit/${srv.organizationId}`);
    const one = await srv.request('POST', '/api/v1/events', { action: 'data.read', status: 'success', patientId: SECRET });
    expect(one.status).toBe(201);
    // Each event once, at the end of the log: a re-append would leave the head past them.
    const head = await srv.request('GET', '/api/v1/ledger/checkpoint');
    const leaves = new Set([...results.map((r) => r.receipt.leafIndex), one.body.leafIndex as number]);
    expect(leaves.size).toBe(13);
    expect(head.body.treeSize).toBe(Math.max(...leaves) + 1);

    const metrics = await srv.request('GET', '/metrics');
    const counted = new RegExp(`^${METRIC_NAMES.ingestHookFailuresTotal}\\{hook="eventsCommitted"\\} ([0-9]+)`, 'm').exec(String(metrics.body));
    expect(Number(counted?.[1])).toBeGreaterThanOrEqual(1);
    await waitFor(() => lines.some((l) => l.includes('ingest hook failed')), 'the failure to be logged');
    expect(lines.filter((l) => l.includes('ingest hook failed')).every((l) => l.includes('"hook":"eventsCommitted"'))).toBe(true);
    expect(lines.filter((l) => l.includes(SECRET))).toEqual([]);
  });
});
