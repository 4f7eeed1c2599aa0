/**
 * The events repository on a real database (PGlite, and PostgreSQL when configured), without a
 * server: every column written by the one-statement batch INSERT is read back as sent, erased
 * fields are absent from the API view, and every query — by id, by leaf, leaf ranges, keyset
 * pages, stats, idempotency keys — answers only the asked organization's rows, with exact bounds.
 *
 * Rows are written as the ingest writes them (committed form, row INSERT and head, one
 * transaction) but at recording times the test chooses, so date bounds are exact.
 */
import { sql } from 'drizzle-orm';
import { createOrganization } from '../../src/auth/organizations';
import type { Database } from '../../src/db/client';
import { prepareEvent, sealEvent } from '../../src/events/commit-form';
import * as repo from '../../src/events/repository';
import { eventQuerySchema, type EventInput } from '../../src/events/schema';
import { commitField, formatRecordedAt, generateSignerKey, leafBytes, leafHash, parseSignerKey } from '../../src/ledger';
import { LogWriter } from '../../src/tlog/log-writer';
import { LedgerService } from '../../src/tlog/service';
import { uuidv7 } from '../../src/util/uuid';
import { describeEachBackend } from '../helpers/backends';
import { openInstrumentedDatabase, type InstrumentedDatabase } from '../helpers/instrumented-database';

const ORIGIN = 'test.audit';
const at = (iso: string) => new Date(iso);
let saltCounter = 0;
/** Distinct known salts, so nothing depends on randomness. */
const salt = () => Buffer.alloc(16, ++saltCounter % 256);

/** Stores `inputs` at `recordedAt` as one append (what the ingest's transaction writes). */
async function store(database: Database, writer: LogWriter, org: string, recordedAt: Date, inputs: Array<Partial<EventInput>>): Promise<string[]> {
  return database.db.transaction(async (tx) => {
    const head = await writer.lock(tx, org);
    const sealed = inputs.map((input) => {
      const id = uuidv7(recordedAt.getTime());
      return { id, input, committed: sealEvent(org, id, recordedAt, prepareEvent(input as EventInput, salt), salt) };
    });
    const rows = sealed.map((s, i) => ({
      ...repo.toRow(org, s.id, recordedAt, head.size + i, s.committed.leafHash, s.committed.values, s.committed.commitments, s.committed.salts),
      producerKeyId: s.input.producerSignature?.keyId ?? null,
      producerSignature: s.input.producerSignature?.signature ?? null,
    }));
    const keys = sealed.flatMap((s, i) => (s.input.idempotencyKey ? [{ key: s.input.idempotencyKey, eventId: s.id, recordedAt, leafIndex: head.size + i }] : []));
    await writer.append(
      tx,
      org,
      head,
      sealed.map((s) => s.committed.leafHash),
      [repo.insertEventsSql(rows), ...(keys.length > 0 ? [repo.insertIdempotencyKeysSql(org, keys)] : [])],
    );
    return sealed.map((s) => s.id);
  });
}

const FULL: Partial<EventInput> = {
  timestamp: '2026-03-01T08:00:00.250Z',
  action: 'data.read',
  status: 'failure',
  principalId: 'p-full',
  principalType: 'user',
  targetResourceType: 'Observation',
  targetResourceId: 'obs-9',
  patientId: 'patient-9',
  outcomeDescription: 'denied',
  dataClassification: 'PHI',
  correlationId: 'corr-9',
  sessionContext: { sessionId: 's-9', ipAddress: '10.1.2.3', userAgent: 'ua', geolocation: 'here' },
  retentionPolicy: 'ten-years',
  eventVersion: '3',
  details: { nested: { list: [1, 'two', null, true] }, empty: {} },
  idempotencyKey: 'idem-full',
  producerSignature: { keyId: '00112233aabbccdd', signature: 'c2lnbmF0dXJl' },
};

describeEachBackend('events repository on %s', (backend) => {
  let idb: InstrumentedDatabase;
  let writer: LogWriter;
  let a: string;
  let b: string;
  const ids: Record<string, string | undefined> = {};
  const { signerKey } = generateSignerKey(ORIGIN);

  beforeAll(async () => {
    idb = await openInstrumentedDatabase(backend, { fromMigratedCache: true });
    writer = new LogWriter(new LedgerService(idb.database, parseSignerKey(signerKey), ORIGIN));
    a = (await createOrganization(idb.database, 'a')).id;
    b = (await createOrganization(idb.database, 'b')).id;
    // Organization a: leaves 0..5 over three days; b: the same values, so only the organization filter tells them apart.
    for (const org of [a, b]) {
      const tag = org === a ? 'a' : 'b';
      [ids[`${tag}0`]] = await store(idb.database, writer, org, at('2026-03-01T10:15:00.000Z'), [FULL]);
      [ids[`${tag}1`], ids[`${tag}2`]] = await store(idb.database, writer, org, at('2026-03-01T11:45:00.500Z'), [
        { action: 'data.write', status: 'success', principalId: 'p-1', dataClassification: 'INTERNAL', targetResourceType: 'Patient', targetResourceId: 't-1', patientId: 'pat-1', correlationId: 'c-1', idempotencyKey: `k-1` },
        { action: 'data.read', status: 'attempt', principalId: 'p-2', dataClassification: 'PUBLIC', targetResourceType: 'Encounter', targetResourceId: 't-2', patientId: 'pat-2', correlationId: 'c-2' },
      ]);
      [ids[`${tag}3`]] = await store(idb.database, writer, org, at('2026-03-02T00:00:00.000Z'), [{ action: 'auth.login', status: 'success', principalId: 'p-1', dataClassification: 'CONFIDENTIAL' }]);
      [ids[`${tag}4`], ids[`${tag}5`]] = await store(idb.database, writer, org, at('2026-03-03T23:59:59.999Z'), [
        { action: 'data.read', status: 'success', principalId: 'p-3', dataClassification: 'INTERNAL' },
        { action: 'data.read', status: 'success', principalId: 'p-3', dataClassification: 'INTERNAL' },
      ]);
    }
  }, 180_000);
  afterAll(async () => {
    await idb?.close();
  });

  const leafOf = (row: repo.EventRow | null) => row?.leafIndex ?? null;
  const query = (input: Record<string, unknown>) => eventQuerySchema.parse(input);
  const leaves = (rows: repo.EventRow[]) => rows.map((r) => r.leafIndex);

  it('stores every column of a full event as sent and commits it as the ledger reference does', async () => {
    const row = await repo.findById(idb.database.db, a, ids.a0!, null);
    expect(row).not.toBeNull();
    expect(repo.toRecord(row!)).toEqual({
      id: ids.a0,
      organizationId: a,
      recordedAt: '2026-03-01T10:15:00.000Z',
      leafIndex: 0,
      leafHash: row!.leafHash.toString('base64'),
      timestamp: '2026-03-01T08:00:00.250Z',
      action: 'data.read',
      status: 'failure',
      principalId: 'p-full',
      principalType: 'user',
      targetResourceType: 'Observation',
      targetResourceId: 'obs-9',
      patientId: 'patient-9',
      outcomeDescription: 'denied',
      dataClassification: 'PHI',
      correlationId: 'corr-9',
      sessionContext: { sessionId: 's-9', ipAddress: '10.1.2.3', userAgent: 'ua', geolocation: 'here' },
      retentionPolicy: 'ten-years',
      eventVersion: '3',
      details: { nested: { list: [1, 'two', null, true] }, empty: {} },
      idempotencyKey: 'idem-full',
      erasedFields: [],
    });
    expect(row!.producerKeyId).toBe('00112233aabbccdd');
    expect(row!.producerSignature).toBe('c2lnbmF0dXJl');
    expect(row!.erasedAt).toBeNull();
    // Every field's commitment is the reference commitment of the stored value and salt, and the
    // stored leaf hash is the reference leaf of those commitments.
    const values = repo.valuesOf(row!);
    expect(Object.keys(row!.commitments).sort()).toEqual(Object.keys(values).sort());
    expect(Object.keys(values)).toHaveLength(16);
    for (const [f, v] of Object.entries(values)) expect(row!.commitments[f]).toBe(commitField(Buffer.from(row!.salts[f]!, 'base64'), v));
    const leaf = leafHash(leafBytes({ org: a, id: ids.a0!, recordedAt: '2026-03-01T10:15:00.000Z', fields: row!.commitments }));
    expect(row!.leafHash.toString('hex')).toBe(leaf.toString('hex'));
  });

  it('leaves absent fields NULL (not empty, not JSON null) and reads a defaulted timestamp back', async () => {
    const row = (await repo.findByLeafIndex(idb.database.db, a, 3))!;
    expect(row.id).toBe(ids.a3);
    expect(row.timestamp).not.toBeNull();
    expect(repo.toRecord(row)).toEqual({
      id: ids.a3,
      organizationId: a,
      recordedAt: '2026-03-02T00:00:00.000Z',
      leafIndex: 3,
      leafHash: row.leafHash.toString('base64'),
      timestamp: '2026-03-02T00:00:00.000Z',
      action: 'auth.login',
      status: 'success',
      principalId: 'p-1',
      dataClassification: 'CONFIDENTIAL',
      erasedFields: [],
    });
    const nulls = await idb.query<Record<string, null>>(
      `SELECT principal_type, target_resource_type, target_resource_id, patient_id, outcome_description, correlation_id,
              session_context, retention_policy, event_version, details, idempotency_key, producer_key_id, producer_signature, erased_at
       FROM events WHERE organization_id = $1 AND leaf_index = 3`,
      [a],
    );
    expect(nulls).toEqual([
      {
        principal_type: null,
        target_resource_type: null,
        target_resource_id: null,
        patient_id: null,
        outcome_description: null,
        correlation_id: null,
        session_context: null,
        retention_policy: null,
        event_version: null,
        details: null,
        idempotency_key: null,
        producer_key_id: null,
        producer_signature: null,
        erased_at: null,
      },
    ]);
  });

  it('builds rows with NULL for every absent value', () => {
    const row = repo.toRow(a, 'id-1', at('2026-01-01T00:00:00.000Z'), 7, Buffer.from('ab', 'hex'), { action: 'x.y' }, { action: 'c' }, { action: 's' });
    expect(row).toEqual({
      organizationId: a,
      id: 'id-1',
      recordedAt: at('2026-01-01T00:00:00.000Z'),
      leafIndex: 7,
      leafHash: Buffer.from('ab', 'hex'),
      timestamp: null,
      action: 'x.y',
      status: null,
      principalId: null,
      principalType: null,
      targetResourceType: null,
      targetResourceId: null,
      patientId: null,
      outcomeDescription: null,
      dataClassification: null,
      correlationId: null,
      sessionContext: null,
      retentionPolicy: null,
      eventVersion: null,
      details: null,
      idempotencyKey: null,
      commitments: { action: 'c' },
      salts: { action: 's' },
    });
  });

  it('drops an erased field from the values and lists it, keeping its commitment', async () => {
    const target = await repo.findByLeafIndex(idb.database.db, b, 0);
    await idb.query(
      `UPDATE events SET patient_id = NULL, "timestamp" = NULL, salts = salts - 'patientId' - 'timestamp', erased_at = now()
       WHERE organization_id = $1 AND id = $2`,
      [b, target!.id],
    );
    const row = (await repo.findById(idb.database.db, b, target!.id, target!.recordedAt))!;
    const record = repo.toRecord(row);
    expect(record.erasedFields.sort()).toEqual(['patientId', 'timestamp']);
    expect('patientId' in record).toBe(false);
    expect('timestamp' in record).toBe(false);
    expect(record.principalId).toBe('p-full');
    expect(Object.keys(row.commitments)).toHaveLength(16);
    expect(Object.keys(repo.valuesOf(row))).toHaveLength(14);
  });

  it('reads a value only while its salt is there (a salt without its value yields nothing)', () => {
    const row = {
      timestamp: null,
      action: 'x.y',
      status: null,
      salts: { action: 's', status: 's', timestamp: 's' },
      commitments: { action: 'c', status: 'c', timestamp: 'c', principalId: 'c' },
      principalId: 'kept only if salted',
    } as unknown as repo.EventRow;
    expect(repo.valuesOf(row)).toStrictEqual({ action: 'x.y' });
    // A salted field whose column is missing from the row object is not read as `undefined` either.
    expect(repo.valuesOf({ ...row, salts: { ...row.salts, eventVersion: 's' } })).toStrictEqual({ action: 'x.y' });
  });

  it('finds by id within the organization only, with or without the recording time', async () => {
    const db = idb.database.db;
    expect(leafOf(await repo.findById(db, a, ids.a2!, null))).toBe(2);
    expect(leafOf(await repo.findById(db, a, ids.a2!, at('2026-03-01T11:45:00.500Z')))).toBe(2);
    // A wrong recording time finds nothing: the time is part of the key.
    expect(await repo.findById(db, a, ids.a2!, at('2026-03-01T11:45:00.501Z'))).toBeNull();
    expect(await repo.findById(db, b, ids.a2!, null)).toBeNull();
    expect(await repo.findById(db, b, ids.a2!, at('2026-03-01T11:45:00.500Z'))).toBeNull();
  });

  it('finds by leaf index within the organization only', async () => {
    const db = idb.database.db;
    expect((await repo.findByLeafIndex(db, a, 5))?.id).toBe(ids.a5);
    expect((await repo.findByLeafIndex(db, b, 5))?.id).toBe(ids.b5);
    expect(await repo.findByLeafIndex(db, a, 6)).toBeNull();
  });

  it('reads leaf ranges [start, end) in leaf order, per organization', async () => {
    const db = idb.database.db;
    expect((await repo.findLeafRange(db, a, 1, 4)).map((r) => r.id)).toEqual([ids.a1, ids.a2, ids.a3]);
    expect((await repo.findLeafRange(db, b, 0, 6)).map((r) => r.id)).toEqual([ids.b0, ids.b1, ids.b2, ids.b3, ids.b4, ids.b5]);
    expect(await repo.findLeafRange(db, a, 2, 2)).toEqual([]);
  });

  it('finds idempotency keys of the organization only, with their first event', async () => {
    const db = idb.database.db;
    const found = await repo.findIdempotencyKeys(db, a, ['k-1', 'idem-full', 'unknown']);
    expect([...found.entries()].sort(([x], [y]) => x.localeCompare(y))).toEqual([
      ['idem-full', { eventId: ids.a0, leafIndex: 0, recordedAt: at('2026-03-01T10:15:00.000Z') }],
      ['k-1', { eventId: ids.a1, leafIndex: 1, recordedAt: at('2026-03-01T11:45:00.500Z') }],
    ]);
    expect((await repo.findIdempotencyKeys(db, b, ['k-1'])).get('k-1')?.eventId).toBe(ids.b1);
    expect((await repo.findIdempotencyKeys(db, a, [])).size).toBe(0);
    // No key, no query: a batch without idempotency keys costs no look-up.
    const statements: string[] = [];
    idb.hooks.beforeStatement = (s) => void statements.push(s.text);
    try {
      const none = await db.transaction(async (tx) => {
        const found = await repo.findIdempotencyKeys(tx, a, []);
        await repo.findIdempotencyKeys(tx, a, ['k-1']);
        return found;
      });
      expect(none.size).toBe(0);
      // Only the second call's query.
      expect(statements).toHaveLength(1);
    } finally {
      delete idb.hooks.beforeStatement;
    }
  });

  it('stores every column of an event written in the test, and pages by recording time, not by the order stored', async () => {
    const db = idb.database.db;
    const c = (await createOrganization(idb.database, 'c')).id;
    // Stored first, recorded later: an ascending page must still start with the earlier event.
    const [late] = await store(idb.database, writer, c, at('2026-03-05T00:00:00.000Z'), [{ action: 'late.one' }]);
    const [early] = await store(idb.database, writer, c, at('2026-03-04T00:00:00.000Z'), [FULL]);
    expect((await repo.queryPage(db, c, query({ sort: 'asc', limit: 10 }), null)).map((r) => r.id)).toEqual([early, late]);
    expect((await repo.queryPage(db, c, query({ limit: 10 }), null)).map((r) => r.id)).toEqual([late, early]);
    // A scan of the (organization, recorded_at, id) index yields recording order by itself; with
    // index scans off the rows come in the order stored, so only the query's ORDER BY gives this.
    const seqScanned = await db.transaction(async (tx) => {
      await tx.execute(sql`SET LOCAL enable_indexscan = off`);
      await tx.execute(sql`SET LOCAL enable_bitmapscan = off`);
      await tx.execute(sql`SET LOCAL enable_indexonlyscan = off`);
      return [
        (await repo.queryPage(tx, c, query({ sort: 'asc', limit: 10 }), null)).map((r) => r.id),
        (await repo.queryPage(tx, c, query({ limit: 10 }), null)).map((r) => r.id),
      ];
    });
    expect(seqScanned).toEqual([
      [early, late],
      [late, early],
    ]);
    const row = (await repo.findById(db, c, early!, null))!;
    const { producerSignature, ...fields } = FULL;
    expect(repo.toRecord(row)).toEqual({
      id: early,
      organizationId: c,
      recordedAt: '2026-03-04T00:00:00.000Z',
      leafIndex: 1,
      leafHash: row.leafHash.toString('base64'),
      ...fields,
      erasedFields: [],
    });
    expect([row.producerKeyId, row.producerSignature]).toEqual([producerSignature!.keyId, producerSignature!.signature]);
  });

  it('pages by (recordedAt, id) in both directions, limit + 1 rows, after the cursor', async () => {
    const db = idb.database.db;
    const asc = await repo.queryPage(db, a, query({ sort: 'asc', limit: 2 }), null);
    const byTime = (rows: repo.EventRow[]) => rows.map((r) => formatRecordedAt(r.recordedAt));
    expect(byTime(asc)).toEqual(['2026-03-01T10:15:00.000Z', '2026-03-01T11:45:00.500Z', '2026-03-01T11:45:00.500Z']);
    // Ties on recordedAt are ordered by id.
    const tie = [ids.a1!, ids.a2!].sort();
    expect(asc.slice(1).map((r) => r.id)).toEqual(tie);
    const next = await repo.queryPage(db, a, query({ sort: 'asc', limit: 10 }), { recordedAt: asc[1]!.recordedAt, id: asc[1]!.id });
    expect(next.map((r) => r.id)).toEqual([tie[1], ids.a3, ...[ids.a4!, ids.a5!].sort()]);
    const desc = await repo.queryPage(db, a, query({ limit: 10 }), null);
    expect(byTime(desc)).toEqual([...byTime(await repo.queryPage(db, a, query({ sort: 'asc', limit: 10 }), null))].reverse());
    expect(desc).toHaveLength(6);
    const before = await repo.queryPage(db, a, query({ limit: 10 }), { recordedAt: at('2026-03-02T00:00:00.000Z'), id: ids.a3! });
    expect(before.map((r) => r.leafIndex).sort()).toEqual([0, 1, 2]);
    expect(byTime(before)[0]).toBe('2026-03-01T11:45:00.500Z');
    expect(before.at(-1)!.id).toBe(ids.a0);
  });

  it('filters pages on each field, within the organization', async () => {
    const db = idb.database.db;
    // Membership only (sorted by leaf): the order of pages is the test above.
    const page = async (filter: Record<string, unknown>) => leaves(await repo.queryPage(db, a, query({ ...filter, sort: 'asc', limit: 100 }), null)).sort((x, y) => x - y);
    expect(await page({})).toEqual([0, 1, 2, 3, 4, 5]);
    expect(await page({ principalIds: ['p-1'] })).toEqual([1, 3]);
    expect(await page({ actions: ['data.read'] })).toEqual([0, 2, 4, 5]);
    expect(await page({ statuses: ['attempt', 'failure'] })).toEqual([0, 2]);
    expect(await page({ dataClassifications: ['PUBLIC', 'PHI'] })).toEqual([0, 2]);
    expect(await page({ targetResourceTypes: ['Patient'] })).toEqual([1]);
    expect(await page({ targetResourceIds: ['t-2', 'obs-9'] })).toEqual([0, 2]);
    expect(await page({ patientIds: ['pat-1'] })).toEqual([1]);
    expect(await page({ correlationIds: ['c-2'] })).toEqual([2]);
    // From is inclusive, to exclusive, on recordedAt.
    expect(await page({ dateRange: { from: '2026-03-01T11:45:00.500Z' } })).toEqual([1, 2, 3, 4, 5]);
    expect(await page({ dateRange: { to: '2026-03-02T00:00:00.000Z' } })).toEqual([0, 1, 2]);
    expect(await page({ dateRange: { from: '2026-03-01T11:45:00.500Z', to: '2026-03-03T23:59:59.999Z' } })).toEqual([1, 2, 3]);
    expect(await page({ principalIds: ['p-3'], statuses: ['success'], dataClassifications: ['INTERNAL'] })).toEqual([4, 5]);
    expect(await page({ principalIds: ['p-3'], statuses: ['failure'] })).toEqual([]);
  });

  it('counts per group, sorted by key, only the organization\'s events and only in the date range', async () => {
    const db = idb.database.db;
    expect(await repo.stats(db, a, { groupBy: 'action' })).toEqual([
      { key: 'auth.login', count: 1 },
      { key: 'data.read', count: 4 },
      { key: 'data.write', count: 1 },
    ]);
    expect(await repo.stats(db, a, { groupBy: 'status' })).toEqual([
      { key: 'attempt', count: 1 },
      { key: 'failure', count: 1 },
      { key: 'success', count: 4 },
    ]);
    expect(await repo.stats(db, a, { groupBy: 'dataClassification' })).toEqual([
      { key: 'CONFIDENTIAL', count: 1 },
      { key: 'INTERNAL', count: 3 },
      { key: 'PHI', count: 1 },
      { key: 'PUBLIC', count: 1 },
    ]);
    expect(await repo.stats(db, a, { groupBy: 'day' })).toEqual([
      { key: '2026-03-01', count: 3 },
      { key: '2026-03-02', count: 1 },
      { key: '2026-03-03', count: 2 },
    ]);
    expect(await repo.stats(db, a, { groupBy: 'hour', dateRange: { from: '2026-03-01T11:00:00.000Z', to: '2026-03-03T23:59:59.999Z' } })).toEqual([
      { key: '2026-03-01T11:00Z', count: 2 },
      { key: '2026-03-02T00:00Z', count: 1 },
    ]);
  });

  it('names an erased group value "(erased)"', async () => {
    const target = await repo.findByLeafIndex(idb.database.db, b, 3);
    await idb.database.db.execute(
      sql`UPDATE events SET action = NULL, salts = salts - 'action', erased_at = now() WHERE organization_id = ${b}::uuid AND id = ${target!.id}::uuid`,
    );
    // NULL sorts last in PostgreSQL's ascending order.
    expect(await repo.stats(idb.database.db, b, { groupBy: 'action' })).toEqual([
      { key: 'data.read', count: 4 },
      { key: 'data.write', count: 1 },
      { key: '(erased)', count: 1 },
    ]);
  });
});
