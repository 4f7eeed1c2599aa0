/**
 * The ingest service in process, over a real database (PGlite, and PostgreSQL when configured),
 * without a server: what each receipt says and when, how appends are grouped into transactions,
 * idempotent repeats, and how each kind of failure is answered — a value the database refuses,
 * a server fault, an outage before COMMIT, and a COMMIT whose answer was lost (stored or not).
 *
 * Failures are raised at the driver (server/test/helpers/instrumented-database.ts), or by a
 * trigger that refuses marked rows as a constraint would; the service's own code runs unchanged.
 */
import { createOrganization } from '../../src/auth/organizations';
import { AppError } from '../../src/errors';
import { FIRST_RETRY_DELAY_MS, IngestService, nextRetryDelay, type AppendFailure, type CommittedEventInfo, type IngestHook, type IngestOptions } from '../../src/events/ingest';
import { DEFAULT_EVENT_LIMITS } from '../../src/events/limits';
import { eventInputSchemaFor, type EventInput } from '../../src/events/schema';
import { appendLeaves, commitField, generateSignerKey, leafBytes, leafHash, parseSignerKey } from '../../src/ledger';
import { LedgerService } from '../../src/tlog/service';
import { uuidv7Time } from '../../src/util/uuid';
import { describeEachBackend } from '../helpers/backends';
import { openInstrumentedDatabase, type InstrumentedDatabase } from '../helpers/instrumented-database';
import { verifyReceipt } from '../helpers/receipts';
import { waitFor } from '../jobs/helpers';

const ORIGIN = 'test.audit';
const schema = eventInputSchemaFor(DEFAULT_EVENT_LIMITS);
const event = (i: number, extra: Record<string, unknown> = {}): EventInput =>
  schema.parse({ action: 'data.read', status: 'success', principalId: `p-${i}`, ...extra });

/** Raises a data exception for rows whose patient starts with `poison-`, a server fault for `fault-`. */
const TRIGGER = `
CREATE FUNCTION test_ingest_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.patient_id LIKE 'poison-%' THEN RAISE EXCEPTION 'refused by test trigger' USING ERRCODE = '22023'; END IF;
  IF NEW.patient_id LIKE 'fault-%' THEN RAISE EXCEPTION 'failed by test trigger' USING ERRCODE = 'XX000'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER test_ingest_refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION test_ingest_refuse();`;

/** An error as the driver reports a lost connection or a rolled-back transaction (SQLSTATE `code`). */
const driverError = (code: string) => Object.assign(new Error(`simulated ${code}`), { code });

/** What a rejected append was rejected with, in a comparable form. */
function rejection(s: PromiseSettledResult<unknown>): string {
  if (s.status === 'fulfilled') return 'fulfilled';
  const e = s.reason as AppError;
  return e instanceof AppError ? `${e.code}: ${e.message}` : `${(e as Error).name}: ${(e as Error).message}`;
}

const UNAVAILABLE_NOTHING_STORED = 'UNAVAILABLE: the database is unavailable (restarting or failing over); nothing was stored, retry';
const UNAVAILABLE_STORED_NO_RECEIPTS =
  'UNAVAILABLE: the database is unavailable (restarting or failing over); the events were stored but their receipts could not be read: retry with the same idempotencyKey (without one, a retry stores an event twice)';
const UNAVAILABLE_MAYBE_STORED =
  'UNAVAILABLE: the database is unavailable (restarting or failing over); the events may have been stored: retry with the same idempotencyKey (without one, a retry may store an event twice)';

/** Event-loop turns (no time passes): enough for every settled promise chain to have run. */
async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe('the retry schedule of a batch the database could not take', () => {
  it('waits 50 ms, then twice as long each time, never more than a second', () => {
    const delays = [FIRST_RETRY_DELAY_MS];
    while (delays.length < 8) delays.push(nextRetryDelay(delays.at(-1)!));
    expect(delays).toEqual([50, 100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });
});

describeEachBackend('ingest service on %s', (backend) => {
  let idb: InstrumentedDatabase;
  let org: string;
  const { signerKey, verifierKey } = generateSignerKey(ORIGIN);
  let ledger: LedgerService;
  const failures: AppendFailure[] = [];
  const batches: number[] = [];
  const checkpoints: Array<{ org: string; size: number; note: string }> = [];
  const committedEvents: Array<{ org: string; events: CommittedEventInfo[] }> = [];
  let transactions = 0;

  const service = (options: Partial<IngestOptions> = {}) =>
    new IngestService(idb.database, ledger, { maxBatch: 10, maxWaitMs: 0, ...options }, {
      batchCommitted: (n) => void batches.push(n),
      checkpointCommitted: (o, size, note) => void checkpoints.push({ org: o, size, note }),
      appendFailed: (f) => void failures.push(f),
      eventsCommitted: (o, events) => void committedEvents.push({ org: o, events }),
    });

  /** The stored events of `org` in leaf order. */
  const stored = (of = org) =>
    idb.query<{ leaf_index: number; id: string; leaf_hash: string; principal_id: string | null }>(
      `SELECT leaf_index::int AS leaf_index, id::text AS id, encode(leaf_hash, 'hex') AS leaf_hash, principal_id
       FROM events WHERE organization_id = $1 ORDER BY leaf_index`,
      [of],
    );
  const head = async (of = org) => (await idb.query<{ size: number; root: string }>(`SELECT size::int AS size, encode(root_hash, 'base64') AS root FROM ledger_heads WHERE organization_id = $1`, [of]))[0]!;

  beforeAll(async () => {
    idb = await openInstrumentedDatabase(backend, { fromMigratedCache: true });
    ledger = new LedgerService(idb.database, parseSignerKey(signerKey), ORIGIN);
    const conn = await idb.database.connect();
    try {
      await conn.exec(TRIGGER);
    } finally {
      conn.release();
    }
  }, 180_000);
  beforeEach(async () => {
    for (const k of Object.keys(idb.hooks)) delete idb.hooks[k as keyof typeof idb.hooks];
    failures.length = 0;
    batches.length = 0;
    checkpoints.length = 0;
    committedEvents.length = 0;
    transactions = 0;
    org = (await createOrganization(idb.database, 'tenant')).id;
    idb.hooks.afterCommit = () => void transactions++;
  });
  afterAll(async () => {
    await idb?.close();
  });

  it('answers each event with a receipt of the stored leaf, its place and the signed checkpoint of the batch', async () => {
    const ingest = service();
    const signature = { keyId: '0123456789abcdef', signature: 'c2lnbmVk' };
    const inputs = [event(0, { timestamp: '2026-01-02T03:04:05.678Z', dataClassification: 'INTERNAL', producerSignature: signature }), event(1), event(2, { details: { n: 1 } })];
    const receipts = await Promise.all(ingest.append(org, inputs));
    const rows = await stored();
    const h = await head();
    const note = checkpoints[0]!.note;
    expect(transactions).toBe(1);
    expect(h.size).toBe(3);
    expect(rows.map((r) => r.principal_id)).toEqual(['p-0', 'p-1', 'p-2']);
    receipts.forEach((r, i) => {
      expect(r).toEqual({
        id: rows[i]!.id,
        leafIndex: i,
        leafHash: Buffer.from(rows[i]!.leaf_hash, 'hex').toString('base64'),
        recordedAt: receipts[0]!.recordedAt,
        treeSize: 3,
        rootHash: h.root,
        checkpoint: note,
        inclusionProof: { leafIndex: i, treeSize: 3, hashes: expect.any(Array) },
        duplicate: false,
      });
      verifyReceipt(r, verifierKey, `${ORIGIN}/${org}`);
    });
    // The id is a UUIDv7 of the recording time, which is in the leaf's committed form.
    expect(new Date(uuidv7Time(receipts[0]!.id)!).toISOString()).toBe(receipts[0]!.recordedAt);
    expect(receipts.map((r) => r.inclusionProof.hashes.length)).toEqual([2, 2, 1]);
    expect(h.root).toBe(appendLeaves(0, [], rows.map((r) => Buffer.from(r.leaf_hash, 'hex'))).root.toString('base64'));
    // Each stored leaf is the reference leaf of the stored commitments, each commitment the
    // reference commitment of the stored salt and value.
    const full = await idb.query<{ commitments: Record<string, string>; salts: Record<string, string>; timestamp: string; details: unknown }>(
      `SELECT commitments, salts, to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS timestamp, details FROM events WHERE organization_id = $1 ORDER BY leaf_index`,
      [org],
    );
    expect(full.map((f) => f.timestamp)).toEqual(['2026-01-02T03:04:05.678Z', receipts[0]!.recordedAt, receipts[0]!.recordedAt]);
    full.forEach((f, i) => {
      const values: Record<string, unknown> = { timestamp: f.timestamp, action: 'data.read', status: 'success', principalId: `p-${i}`, dataClassification: 'INTERNAL', ...(i === 2 ? { details: { n: 1 } } : {}) };
      expect(Object.keys(f.commitments).sort()).toEqual(Object.keys(values).sort());
      for (const [name, v] of Object.entries(values)) expect(f.commitments[name]).toBe(commitField(Buffer.from(f.salts[name]!, 'base64'), v));
      const leaf = leafHash(leafBytes({ org, id: rows[i]!.id, recordedAt: receipts[0]!.recordedAt, fields: f.commitments }));
      expect(rows[i]!.leaf_hash).toBe(leaf.toString('hex'));
    });
    // The producer's signature is stored beside the event, not committed.
    expect(await idb.query(`SELECT producer_key_id, producer_signature FROM events WHERE organization_id = $1 ORDER BY leaf_index`, [org])).toEqual([
      { producer_key_id: '0123456789abcdef', producer_signature: 'c2lnbmVk' },
      { producer_key_id: null, producer_signature: null },
      { producer_key_id: null, producer_signature: null },
    ]);
    expect(batches).toEqual([3]);
    expect(checkpoints).toEqual([{ org, size: 3, note: expect.stringContaining(`${ORIGIN}/${org}\n3\n${h.root}\n`) }]);
    expect(committedEvents).toEqual([
      {
        org,
        events: rows.map((r, i) => ({ id: r.id, leafIndex: i, recordedAt: new Date(receipts[0]!.recordedAt), values: expect.objectContaining({ principalId: `p-${i}` }) })),
      },
    ]);
    expect(committedEvents[0]!.events[0]!.values).toEqual({ timestamp: '2026-01-02T03:04:05.678Z', action: 'data.read', status: 'success', principalId: 'p-0', dataClassification: 'INTERNAL' });
    expect(failures).toEqual([]);
    await ingest.drain();
  });

  it('continues the log of the organization: the next batch starts at the head and proves against the new size', async () => {
    const ingest = service();
    await Promise.all(ingest.append(org, [event(0), event(1), event(2)]));
    const receipts = await Promise.all(ingest.append(org, [event(3), event(4)]));
    expect(receipts.map((r) => [r.leafIndex, r.treeSize])).toEqual([
      [3, 5],
      [4, 5],
    ]);
    for (const r of receipts) verifyReceipt(r, verifierKey, `${ORIGIN}/${org}`);
    // Leaf 3's audit path in a tree of 5: leaf 2 and the root of [0, 2) from the old frontier, leaf 4.
    expect(receipts[0]!.inclusionProof.hashes).toHaveLength(3);
    expect((await head()).size).toBe(5);
    expect(checkpoints.map((c) => c.size)).toEqual([3, 5]);
    await ingest.drain();
  });

  it('cuts batches of at most maxBatch events, in order, one transaction each', async () => {
    const ingest = service({ maxBatch: 4 });
    const receipts = await Promise.all(ingest.append(org, Array.from({ length: 10 }, (_, i) => event(i))));
    expect(receipts.map((r) => r.leafIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(receipts.map((r) => r.treeSize)).toEqual([4, 4, 4, 4, 8, 8, 8, 8, 10, 10]);
    expect(transactions).toBe(3);
    expect(batches).toEqual([4, 4, 2]);
    expect(committedEvents.map((c) => c.events.map((e) => e.leafIndex))).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    expect((await stored()).map((r) => r.principal_id)).toEqual(Array.from({ length: 10 }, (_, i) => `p-${i}`));
    await ingest.drain();
  });

  it('groups the appends that arrive within maxWaitMs into one transaction, at once when maxBatch is reached', async () => {
    // The wait is far longer than the test: only reaching maxBatch can start the batch.
    const ingest = service({ maxBatch: 4, maxWaitMs: 600_000 });
    const first = ingest.append(org, [event(0)]);
    const second = ingest.append(org, [event(1), event(2)]);
    const third = ingest.append(org, [event(3)]);
    const receipts = await Promise.all([...first, ...second, ...third]);
    expect(receipts.map((r) => [r.leafIndex, r.treeSize])).toEqual([
      [0, 4],
      [1, 4],
      [2, 4],
      [3, 4],
    ]);
    await ingest.drain();
    // Reaching maxBatch cancelled the wait: drain found nothing left to commit.
    expect(transactions).toBe(1);
  });

  it('makes what arrives while a batch commits the next batch, without waiting', async () => {
    const ingest = service({ maxBatch: 10, maxWaitMs: 0 });
    const receipts = await Promise.all([...ingest.append(org, [event(0)]), ...ingest.append(org, [event(1)]), ...ingest.append(org, [event(2)])]);
    expect(receipts.map((r) => [r.leafIndex, r.treeSize])).toEqual([
      [0, 1],
      [1, 3],
      [2, 3],
    ]);
    expect(batches).toEqual([1, 2]);
    await ingest.drain();
    expect(transactions).toBe(2);
  });

  it('commits at once what waits for maxWaitMs when drained, and refuses appends afterwards', async () => {
    const ingest = service({ maxBatch: 100, maxWaitMs: 600_000 });
    const pending = ingest.append(org, [event(0), event(1)]);
    // Settled either way: a rejection left unhandled here would end the test process, not fail the test.
    const answered: number[] = [];
    pending.forEach((p, i) => void p.then(() => answered.push(i), () => answered.push(-1 - i)));
    await ingest.drain();
    // Drain returns only once every receipt was handed out.
    expect(answered.sort()).toEqual([0, 1]);
    const receipts = await Promise.all(pending);
    expect(receipts.map((r) => r.leafIndex)).toEqual([0, 1]);
    const late = await Promise.allSettled(ingest.append(org, [event(2), event(3)]));
    expect(late.map(rejection)).toEqual(Array(2).fill('UNAVAILABLE: server is shutting down; retry on another replica'));
    expect((await head()).size).toBe(2);
  });

  it('starts the waiting batch once maxWaitMs has passed', async () => {
    const ingest = service({ maxBatch: 100, maxWaitMs: 5 });
    const receipts = await Promise.all([...ingest.append(org, [event(0)]), ...ingest.append(org, [event(1)])]);
    expect(receipts.map((r) => [r.leafIndex, r.treeSize])).toEqual([
      [0, 2],
      [1, 2],
    ]);
    expect(transactions).toBe(1);
    await ingest.drain();
  });

  it('answers an append of nothing with nothing, and leaves nothing for drain to wait on', async () => {
    const ingest = service({ maxWaitMs: 600_000 });
    expect(ingest.append(org, [])).toEqual([]);
    // Every event failing before it joins a batch leaves no queue behind either.
    const bad = { action: 'data.read', status: 'success', details: { v: '\ud800' } } as unknown as EventInput;
    expect((await Promise.allSettled(ingest.append(org, [bad]))).map((s) => s.status)).toEqual(['rejected']);
    await ingest.drain();
    expect(transactions).toBe(0);
  });

  it('leaves no receipt without its proof unless asked: proofs false gives the placement only', async () => {
    const ingest = service();
    const placements = await Promise.all(ingest.append(org, [event(0), event(1)], { proofs: false }));
    const rows = await stored();
    const h = await head();
    expect(placements).toEqual(
      rows.map((r, i) => ({
        id: r.id,
        leafIndex: i,
        leafHash: Buffer.from(r.leaf_hash, 'hex').toString('base64'),
        recordedAt: placements[0]!.recordedAt,
        treeSize: 2,
        rootHash: h.root,
        checkpoint: checkpoints[0]!.note,
        duplicate: false,
      })),
    );
    expect(Object.keys(placements[0]!)).not.toContain('inclusionProof');
    await ingest.drain();
  });

  it('computes the receipts of new events from memory: nothing is read after COMMIT, whatever proofs are asked', async () => {
    const setup = service();
    await Promise.all(setup.append(org, [event(0, { idempotencyKey: 'k-0' }), event(1, { idempotencyKey: 'k-1' }), event(2), event(3), event(4)]));
    await setup.drain();
    const ingest = service({ maxBatch: 3, maxWaitMs: 600_000 });
    const reads: string[] = [];
    idb.hooks.beforeQuery = (text) => void reads.push(text);
    // One batch of three (maxBatch): two with proofs, one without. The audit paths at size 8 need
    // the new nodes and the old frontier of size 5, (2,0) and (0,4), both in memory.
    const proved = ingest.append(org, [event(5), event(6)]);
    const placed = ingest.append(org, [event(7)], { proofs: false });
    const receipts = await Promise.all(proved);
    const [placement] = await Promise.all(placed);
    expect(reads).toEqual([]);
    expect(receipts.map((r) => [r.leafIndex, r.treeSize, r.inclusionProof.hashes.length])).toEqual([
      [5, 8, 3],
      [6, 8, 3],
    ]);
    for (const r of receipts) verifyReceipt(r, verifierKey, `${ORIGIN}/${org}`);
    expect(placement).toMatchObject({ leafIndex: 7, treeSize: 8, duplicate: false });
    expect(placement).not.toHaveProperty('inclusionProof');
    // A batch without proofs: the leaf hashes of its receipts come from memory too.
    const placements = await Promise.all(ingest.append(org, [event(20), event(21), event(22)], { proofs: false }));
    expect(placements.map((p) => [p.leafIndex, p.treeSize])).toEqual([
      [8, 11],
      [9, 11],
      [10, 11],
    ]);
    expect(reads).toEqual([]);
    // Repeats of leaves 0 and 1 (neighbours) need stored nodes: one read for both.
    const rows = await stored();
    const repeats = await Promise.all(ingest.append(org, [event(10, { idempotencyKey: 'k-0' }), event(11, { idempotencyKey: 'k-1' }), event(8)]));
    expect(reads).toHaveLength(1);
    expect(repeats.map((r) => [r.id, r.leafIndex, r.leafHash, r.treeSize, r.duplicate])).toEqual([
      [rows[0]!.id, 0, Buffer.from(rows[0]!.leaf_hash, 'hex').toString('base64'), 12, true],
      [rows[1]!.id, 1, Buffer.from(rows[1]!.leaf_hash, 'hex').toString('base64'), 12, true],
      [expect.any(String), 11, expect.any(String), 12, false],
    ]);
    for (const r of repeats) verifyReceipt(r, verifierKey, `${ORIGIN}/${org}`);
    await ingest.drain();
  });

  it('drains only once the receipts being read after COMMIT are handed out', async () => {
    const ingest = service();
    const [first] = await Promise.all(ingest.append(org, [event(0, { idempotencyKey: 'k-d' }), event(1), event(2)]));
    // A repeat's receipt needs a read after COMMIT (leaf 0 is not in the frontier of size 3): hold it there.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let reached!: () => void;
    const atRead = new Promise<void>((r) => (reached = r));
    idb.hooks.beforeQuery = async () => {
      reached();
      await held;
    };
    const [again] = ingest.append(org, [event(1, { idempotencyKey: 'k-d' })]);
    let answered = false;
    void again!.then(() => (answered = true));
    await atRead;
    let drained = false;
    let draining: Promise<unknown> = Promise.resolve();
    try {
      await turns(); // the batch's queue is gone: only the receipt is left to wait for
      draining = ingest.drain().then(() => (drained = true));
      await turns();
      expect(drained).toBe(false);
    } finally {
      release();
    }
    await draining;
    expect(answered).toBe(true);
    expect(await again).toEqual({ ...first, duplicate: true });
  });

  it('answers 503 "stored, retry with the same key" when the receipts of a committed batch cannot be read', async () => {
    const ingest = service();
    // Leaf 0 is not in the frontier of size 3, (1,0) and (0,2): a repeat of it needs a read after COMMIT.
    await Promise.all(ingest.append(org, [event(0, { idempotencyKey: 'k-r' }), event(1), event(9)]));
    idb.hooks.beforeQuery = () => {
      throw driverError('08006');
    };
    const settled = await Promise.allSettled(ingest.append(org, [event(1, { idempotencyKey: 'k-r' }), event(2, { idempotencyKey: 'k-s' })]));
    expect(settled.map(rejection)).toEqual(Array(2).fill(UNAVAILABLE_STORED_NO_RECEIPTS));
    expect(failures).toEqual([{ sqlstate: '08006', fault: 'transient', events: 2 }]);
    expect((await stored()).map((r) => r.principal_id)).toEqual(['p-0', 'p-1', 'p-9', 'p-2']);
    // The retry the message asks for answers the stored events.
    delete idb.hooks.beforeQuery;
    const retried = await Promise.all(ingest.append(org, [event(1, { idempotencyKey: 'k-r' }), event(2, { idempotencyKey: 'k-s' })]));
    expect(retried.map((r) => [r.leafIndex, r.duplicate])).toEqual([
      [0, true],
      [3, true],
    ]);
    await ingest.drain();
  });

  it('answers an idempotent repeat with the first event, in the same batch and in a later one, per organization', async () => {
    const ingest = service();
    const [r0, r1, r2] = await Promise.all(ingest.append(org, [event(0, { idempotencyKey: 'k-a' }), event(1, { idempotencyKey: 'k-a' }), event(2, { idempotencyKey: 'k-b' })]));
    expect([r0!.duplicate, r1!.duplicate, r2!.duplicate]).toEqual([false, true, false]);
    expect(r1).toEqual({ ...r0, duplicate: true });
    expect(r2!.leafIndex).toBe(1);
    expect((await stored()).map((r) => r.principal_id)).toEqual(['p-0', 'p-2']);
    // A later batch: the repeat is answered with the stored event at the new size, with a proof
    // from stored nodes; the new event takes the next leaf.
    const [again, fresh] = await Promise.all(ingest.append(org, [event(9, { idempotencyKey: 'k-a' }), event(3, { idempotencyKey: 'k-c' })]));
    expect(again).toMatchObject({ id: r0!.id, leafIndex: 0, leafHash: r0!.leafHash, recordedAt: r0!.recordedAt, treeSize: 3, duplicate: true });
    expect(fresh).toMatchObject({ leafIndex: 2, treeSize: 3, duplicate: false });
    verifyReceipt(again!, verifierKey, `${ORIGIN}/${org}`);
    verifyReceipt(fresh!, verifierKey, `${ORIGIN}/${org}`);
    // Only repeats: nothing appended, no hook, the answer at the current head and checkpoint.
    const before = await head();
    const [only] = await Promise.all(ingest.append(org, [event(8, { idempotencyKey: 'k-b' })], { proofs: false }));
    expect(only).toEqual({ id: r2!.id, leafIndex: 1, leafHash: r2!.leafHash, recordedAt: r2!.recordedAt, treeSize: 3, rootHash: before.root, checkpoint: checkpoints.at(-1)!.note, duplicate: true });
    const [onlyProved] = await Promise.all(ingest.append(org, [event(8, { idempotencyKey: 'k-c' })]));
    expect(onlyProved).toMatchObject({ id: fresh!.id, leafIndex: 2, treeSize: 3, duplicate: true });
    verifyReceipt(onlyProved!, verifierKey, `${ORIGIN}/${org}`);
    expect(batches).toEqual([2, 1]);
    expect((await head()).size).toBe(3);
    // The same key in another organization is a new event there.
    const other = (await createOrganization(idb.database, 'other')).id;
    const [there] = await Promise.all(ingest.append(other, [event(0, { idempotencyKey: 'k-a' })]));
    expect(there).toMatchObject({ leafIndex: 0, treeSize: 1, duplicate: false });
    expect((await stored(other)).map((r) => r.id)).toEqual([there!.id]);
    await ingest.drain();
  });

  it('reports hooks that throw or reject to hookFailed, survives a hookFailed that throws, and answers every append', async () => {
    const reported: Array<[IngestHook, string]> = [];
    const ingest = new IngestService(idb.database, ledger, { maxBatch: 10, maxWaitMs: 0 }, {
      batchCommitted: () => {
        throw new Error('batch hook broke');
      },
      checkpointCommitted: () => Promise.reject(new Error('checkpoint hook rejected')) as unknown as void,
      eventsCommitted: () => ({ then: 'not a function' }) as unknown as void,
      hookFailed: (hook, err) => {
        reported.push([hook, (err as Error).message]);
        if (hook === 'batchCommitted') throw new Error('the reporter broke too');
      },
    });
    const receipts = await Promise.all(ingest.append(org, [event(0), event(1)]));
    expect(receipts.map((r) => r.leafIndex)).toEqual([0, 1]);
    await waitFor(() => reported.length === 2, 'the rejected hook to be reported');
    expect(reported).toEqual([
      ['batchCommitted', 'batch hook broke'],
      ['checkpointCommitted', 'checkpoint hook rejected'],
    ]);
    expect((await stored()).map((r) => r.principal_id)).toEqual(['p-0', 'p-1']);
    await ingest.drain();
  });

  it('fails before batching only the event that cannot be canonicalized', async () => {
    const ingest = service();
    const bad = { action: 'data.read', status: 'success', details: { note: '\ud800' } } as unknown as EventInput;
    const settled = await Promise.allSettled(ingest.append(org, [event(0), bad, event(1)]));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(TypeError);
    expect(settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value.leafIndex] : []))).toEqual([0, 1]);
    expect(transactions).toBe(1);
    expect(failures).toEqual([]);
    await ingest.drain();
  });

  it('fails alone each event whose row the database refuses, 400 naming the SQLSTATE; its neighbours are stored contiguously', async () => {
    const ingest = service();
    const inputs = Array.from({ length: 7 }, (_, i) => event(i, { patientId: i === 2 || i === 5 ? `poison-${i}` : `patient-${i}` }));
    const settled = await Promise.allSettled(ingest.append(org, inputs));
    expect(settled.map(rejection)).toEqual([
      'fulfilled',
      'fulfilled',
      'BAD_REQUEST: the database refused this event (SQLSTATE 22023)',
      'fulfilled',
      'fulfilled',
      'BAD_REQUEST: the database refused this event (SQLSTATE 22023)',
      'fulfilled',
    ]);
    expect((settled[2] as PromiseRejectedResult).reason.issues).toEqual([{ path: '(root)', message: 'a value of this event cannot be stored' }]);
    expect((await stored()).map((r) => r.principal_id)).toEqual(['p-0', 'p-1', 'p-3', 'p-4', 'p-6']);
    const receipts = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    expect(receipts.map((r) => r.leafIndex)).toEqual([0, 1, 2, 3, 4]);
    for (const r of receipts) verifyReceipt(r, verifierKey, `${ORIGIN}/${org}`);
    expect(failures).toEqual([
      { sqlstate: '22023', fault: 'input', events: 1 },
      { sqlstate: '22023', fault: 'input', events: 1 },
    ]);
    await ingest.drain();
  });

  it('fails alone an event that meets a server fault, with a 500 that says nothing internal', async () => {
    const ingest = service();
    const settled = await Promise.allSettled(ingest.append(org, [event(0), event(1, { patientId: 'fault-1' }), event(2)]));
    expect(settled.map(rejection)).toEqual(['fulfilled', 'INTERNAL: internal error', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason.issues).toEqual([]);
    expect(failures).toEqual([{ sqlstate: 'XX000', fault: 'internal', events: 1 }]);
    expect((await stored()).map((r) => r.principal_id)).toEqual(['p-0', 'p-2']);
    await ingest.drain();
  });

  it('runs each event\'s change in its append transaction, and fails alone the event whose change throws', async () => {
    const ingest = service({ maxBatch: 4, maxWaitMs: 600_000 });
    const ran: string[] = [];
    const change = (name: string, fail = false) => async () => {
      ran.push(name);
      if (fail) throw new Error(`change ${name} failed`);
    };
    const a = ingest.append(org, [event(0), event(1, { idempotencyKey: 'k' })], { inAppendTransaction: change('a') });
    const b = ingest.append(org, [event(2)], { inAppendTransaction: change('b', true) });
    const c = ingest.append(org, [event(3, { idempotencyKey: 'k' })]);
    const settled = await Promise.allSettled([...a, ...b, ...c]);
    expect(settled.map(rejection)).toEqual(['fulfilled', 'fulfilled', 'INTERNAL: internal error', 'fulfilled']);
    expect(settled.map((s) => (s.status === 'fulfilled' ? [s.value.leafIndex, s.value.duplicate] : null))).toEqual([[0, false], [1, false], null, [1, true]]);
    // Whole batch: a, a, b (throws); halves [a, a] (committed) and [b, c]; then [b] alone, [c].
    expect(ran).toEqual(['a', 'a', 'b', 'a', 'a', 'b', 'b']);
    expect(failures).toEqual([{ sqlstate: null, fault: 'internal', events: 1 }]);
    await ingest.drain();
  });

  it('answers 503 at once when the database is unavailable and there is no retry budget: nothing stored, the batch not split', async () => {
    const ingest = service();
    idb.hooks.beforeStatement = (s) => {
      if (/INSERT INTO events/i.test(s.text)) throw driverError('40001');
    };
    const settled = await Promise.allSettled(ingest.append(org, [event(0), event(1), event(2)]));
    expect(settled.map(rejection)).toEqual(Array(3).fill(UNAVAILABLE_NOTHING_STORED));
    expect(failures).toEqual([{ sqlstate: '40001', fault: 'transient', events: 3 }]);
    expect(await stored()).toEqual([]);
    expect(transactions).toBe(0);
    await ingest.drain();
  });

  it('retries a batch the database could not take while the retry budget lasts', async () => {
    const ingest = service({ retryMs: 60_000 });
    let refused = 0;
    idb.hooks.beforeStatement = (s) => {
      if (/INSERT INTO events/i.test(s.text) && refused++ < 2) throw driverError('08006');
    };
    const receipts = await Promise.all(ingest.append(org, [event(0), event(1)]));
    expect(refused).toBe(3);
    expect(receipts.map((r) => r.leafIndex)).toEqual([0, 1]);
    expect(failures).toEqual([]);
    expect((await stored()).map((r) => r.principal_id)).toEqual(['p-0', 'p-1']);
    await ingest.drain();
  });

  /** The first COMMIT is carried out but its answer is lost, as when the connection drops just after it. */
  function loseFirstCommitAnswer(): void {
    let lost = 0;
    idb.hooks.afterCommit = () => {
      transactions++;
      if (lost++ === 0) throw driverError('08006');
    };
  }

  it('answers a batch whose COMMIT answer was lost but which was stored with its first receipts, storing nothing twice', async () => {
    const ingest = service({ retryMs: 60_000 });
    loseFirstCommitAnswer();
    const receipts = await Promise.all(ingest.append(org, [event(0), event(1), event(2)]));
    const rows = await stored();
    expect(rows.map((r) => r.principal_id)).toEqual(['p-0', 'p-1', 'p-2']);
    expect(receipts.map((r) => r.id)).toEqual(rows.map((r) => r.id));
    expect(receipts.map((r) => [r.leafIndex, r.treeSize])).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
    ]);
    for (const r of receipts) verifyReceipt(r, verifierKey, `${ORIGIN}/${org}`);
    expect(batches).toEqual([3]);
    expect(failures).toEqual([]);
    await ingest.drain();
  });

  it('keeps checking a lost COMMIT across a retry that failed before the check, and stores a single event once', async () => {
    const ingest = service({ retryMs: 60_000 });
    loseFirstCommitAnswer();
    // The second attempt loses its connection at the head lock, before it can look for the first
    // attempt's leaf; the third must still look, and find it.
    let locks = 0;
    idb.hooks.beforeStatement = (s) => {
      if (/for update/i.test(s.text) && locks++ === 1) throw driverError('08006');
    };
    const [receipt] = await Promise.all(ingest.append(org, [event(0)]));
    expect(locks).toBe(3);
    const rows = await stored();
    expect(rows.map((r) => r.principal_id)).toEqual(['p-0']);
    expect(receipt).toMatchObject({ id: rows[0]!.id, leafIndex: 0, treeSize: 1, duplicate: false });
    verifyReceipt(receipt!, verifierKey, `${ORIGIN}/${org}`);
    expect(failures).toEqual([]);
    await ingest.drain();
  });

  it('appends a batch whose COMMIT was never carried out again, once', async () => {
    const ingest = service({ retryMs: 60_000 });
    let lost = 0;
    idb.hooks.beforeCommit = () => {
      if (lost++ === 0) throw driverError('08006');
    };
    const receipts = await Promise.all(ingest.append(org, [event(0), event(1)]));
    expect(lost).toBe(2);
    const rows = await stored();
    expect(rows.map((r) => r.principal_id)).toEqual(['p-0', 'p-1']);
    expect(receipts.map((r) => r.id)).toEqual(rows.map((r) => r.id));
    expect(receipts.map((r) => r.leafIndex)).toEqual([0, 1]);
    for (const r of receipts) verifyReceipt(r, verifierKey, `${ORIGIN}/${org}`);
    expect(transactions).toBe(1);
    await ingest.drain();
  });

  it('answers 503 "may have been stored" when a lost COMMIT cannot be checked within the budget', async () => {
    const ingest = service();
    idb.hooks.afterCommit = () => {
      throw driverError('08006');
    };
    const settled = await Promise.allSettled(ingest.append(org, [event(0), event(1)]));
    expect(settled.map(rejection)).toEqual(Array(2).fill(UNAVAILABLE_MAYBE_STORED));
    expect(failures).toEqual([{ sqlstate: '08006', fault: 'transient', events: 2 }]);
    // It was stored, although the client was not told so.
    expect((await stored()).map((r) => r.principal_id)).toEqual(['p-0', 'p-1']);
    await ingest.drain();
  });

  it('answers 503 "may have been stored" when the check of a lost COMMIT fails for another reason', async () => {
    const ingest = service({ retryMs: 60_000 });
    let commits = 0;
    idb.hooks.beforeCommit = () => {
      if (commits++ === 0) throw driverError('08006');
    };
    let checks = 0;
    idb.hooks.beforeStatement = (s) => {
      // The retry's first statement after the head lock is the look-up of the earlier attempt's leaf.
      if (/ledger_nodes/i.test(s.text) && !/INSERT/i.test(s.text) && checks++ === 0) throw driverError('XX000');
    };
    const settled = await Promise.allSettled(ingest.append(org, [event(0), event(1)]));
    expect(settled.map(rejection)).toEqual(Array(2).fill(UNAVAILABLE_MAYBE_STORED));
    expect(failures).toEqual([{ sqlstate: 'XX000', fault: 'transient', events: 2 }]);
    expect(await stored()).toEqual([]);
    await ingest.drain();
  });

  it('answers 503 "nothing stored" when the retry after an uncommitted attempt fails before COMMIT and the budget is spent', async () => {
    // Budget 100 ms: the first failure is retried after 50 ms, the second (at least 50 ms later,
    // with 100 ms to wait next) is the last, whatever the machine's speed.
    const ingest = service({ retryMs: 100 });
    let commits = 0;
    idb.hooks.beforeCommit = () => {
      if (commits++ === 0) throw driverError('08006');
    };
    let inserts = 0;
    idb.hooks.beforeStatement = (s) => {
      if (/INSERT INTO events/i.test(s.text) && inserts++ === 1) throw driverError('40001');
    };
    const settled = await Promise.allSettled(ingest.append(org, [event(0), event(1)]));
    // The second attempt found the first one not stored: its own failure is "nothing stored".
    expect(settled.map(rejection)).toEqual(Array(2).fill(UNAVAILABLE_NOTHING_STORED));
    expect(failures).toEqual([{ sqlstate: '40001', fault: 'transient', events: 2 }]);
    expect(await stored()).toEqual([]);
    await ingest.drain();
  });

  it('answers idempotent repeats whose COMMIT answer was lost as repeats', async () => {
    const ingest = service({ retryMs: 60_000 });
    const [first] = await Promise.all(ingest.append(org, [event(0, { idempotencyKey: 'k-lost' })]));
    loseFirstCommitAnswer();
    const [again] = await Promise.all(ingest.append(org, [event(1, { idempotencyKey: 'k-lost' })]));
    expect(again).toEqual({ ...first, duplicate: true });
    expect(failures).toEqual([]);
    expect((await stored()).map((r) => r.principal_id)).toEqual(['p-0']);
    await ingest.drain();
  });

  it('fails the events of a committed batch whose receipts cannot be computed with a 500, and appends them once', async () => {
    const ingest = service();
    // An idempotency key that names a leaf the log does not have: its receipt cannot be read.
    await idb.query(`INSERT INTO idempotency_keys (organization_id, key, event_id, recorded_at, leaf_index) VALUES ($1, 'k-ghost', gen_random_uuid(), now(), 99)`, [org]);
    const settled = await Promise.allSettled(ingest.append(org, [event(0), event(1, { idempotencyKey: 'k-ghost' })]));
    expect(settled.map(rejection)).toEqual(['INTERNAL: internal error', 'INTERNAL: internal error']);
    expect(failures).toEqual([{ sqlstate: null, fault: 'internal', events: 2 }]);
    // The new event was committed (a retry with an idempotency key would find it), once.
    expect((await stored()).map((r) => r.principal_id)).toEqual(['p-0']);
    expect(transactions).toBe(1);
    expect(batches).toEqual([1]);
    await ingest.drain();
  });
});
