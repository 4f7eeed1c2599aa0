/**
 * The REST export's NDJSON, written straight from text rows (export/event-line.ts through
 * `exportBundleText`), against the reference: `formatBundleRecord` of every record
 * `exportBundle` builds, over the same database. Byte for byte, over generated logs: Unicode
 * text, JSON details (integer-like keys, nested values, numbers), old and odd event timestamps,
 * erased events, producer-signed events, every record kind (a range starting past 0 brings the
 * frontier, one ending before the latest checkpoint the trailing consistency proof), leaf and time
 * ranges with their boundaries, page sizes that split pages and checkpoint runs anywhere, and rows
 * an attacker rewrote in the database. The lines must also still verify.
 */
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { createOrganization } from '../../src/auth/organizations';
import { registerProducerKey } from '../../src/auth/producer-keys';
import { exportBundle, exportBundleText, type ExportRange } from '../../src/export/bundle-export';
import { BundleVerifier, formatBundleRecord, parseVerifierKey, signProducerEvent, type BundleRecord } from '../../src/ledger';
import { unsafeTextReason } from '../../src/util/safe-input';
import { describeEachBackend } from '../helpers/backends';
import { bulkItems } from '../helpers/events';
import { startTestServer, type TestServer } from '../helpers/server';

/** The header's `exportedAt`, the one value of a bundle that depends on the moment (docs/verification.md §3). */
const EXPORTED_AT = new Date('2026-12-06T12:00:00.000Z');
const now = () => EXPORTED_AT;

/** Text the event schema stores: well-formed, no NUL, no leading byte-order mark (util/safe-input.ts). */
const text = (maxLength: number) =>
  fc
    .oneof(fc.string({ maxLength }), fc.string({ unit: 'binary', maxLength }), fc.string({ unit: 'grapheme', maxLength }), fc.constantFrom('é ☃', '"\\\n\t\u0001\u007f\u2028', '𝄞 emoji 👩‍⚕️'))
    .filter((s) => s.length > 0 && s.length <= maxLength && unsafeTextReason(s) === null && !s.startsWith('\ufeff'));

/** JSON values as `details` holds them; integer-like keys sort first in JavaScript, by length in jsonb. */
const detailKey = fc.oneof(text(8), fc.constantFrom('10', '2', 'a', 'b', '0'));
const jsonLeaf = fc.oneof(text(16), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.boolean(), fc.constant(null));
const detailValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, jsonLeaf, fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(detailKey, tie('value'), { maxKeys: 3 })),
})).value;
const details = fc.dictionary(detailKey, detailValue, { maxKeys: 4 });

/** An RFC 3339 instant the schema accepts, years 0001–9999 (years below 100 are read exactly: db/timestamps.ts). */
const instant = fc.date({ min: new Date('0001-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }).map((d) => d.toISOString());

const event = fc.record(
  {
    timestamp: instant,
    action: fc.constantFrom('data.read', 'fhir.Patient.read', 'auth.login'),
    status: fc.constantFrom('attempt', 'success', 'failure'),
    principalId: text(24),
    principalType: text(12),
    targetResourceType: text(12),
    targetResourceId: text(24),
    patientId: text(24),
    outcomeDescription: text(40),
    dataClassification: fc.constantFrom('PUBLIC', 'INTERNAL', 'CONFIDENTIAL', 'PHI'),
    correlationId: text(24),
    sessionContext: fc.record({ sessionId: text(16), ipAddress: fc.ipV4(), userAgent: text(24) }, { requiredKeys: [] }),
    retentionPolicy: text(12),
    eventVersion: text(8),
    details,
  },
  { requiredKeys: ['action', 'status'] },
);

/** A log: appends (one checkpoint each), which events get erased or producer-signed. */
const logShape = fc.record({
  batches: fc.array(fc.array(fc.record({ event, erase: fc.boolean(), sign: fc.boolean() }), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 4 }),
  pageSize: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constant(1000)),
  ranges: fc.array(
    fc.oneof(
      fc.record({ start: fc.nat(24), end: fc.nat(24) }, { requiredKeys: [] }),
      fc.record({ fromEvent: fc.nat(24), toEvent: fc.nat(24) }, { requiredKeys: [] }),
    ),
    { minLength: 1, maxLength: 4 },
  ),
});

type LogShape = typeof logShape extends fc.Arbitrary<infer T> ? T : never;

function producerKeyPair(): { seed: Buffer; publicKey: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    seed: Buffer.from(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32)),
    publicKey: Buffer.from(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)),
  };
}

describeEachBackend('bundle NDJSON written from rows on %s', (backend) => {
  let srv: TestServer;
  const producer = producerKeyPair();

  beforeAll(async () => {
    srv = await startTestServer(backend, { INGEST_MAX_WAIT_MS: '0', AUDIT_SELF_AUDIT_INTERVAL_MS: '0' });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  const db = () => srv.runtime.database.db;
  const origin = (org: string) => srv.runtime.services.ledger.originOf(org);

  /** Both serializations of one export, and the records of the reference. */
  async function bothWays(org: string, range: ExportRange, pageSize: number): Promise<{ reference: string; lines: string; records: BundleRecord[] }> {
    const records: BundleRecord[] = [];
    for await (const r of exportBundle(db(), org, origin(org), range, { pageSize, now })) records.push(r);
    const pieces: string[] = [];
    for await (const p of exportBundleText(db(), org, origin(org), range, { pageSize, now })) pieces.push(p);
    return { reference: records.map((r) => formatBundleRecord(r) + '\n').join(''), lines: pieces.join(''), records };
  }

  function verifyLines(lines: string) {
    const v = new BundleVerifier({ verifiers: [parseVerifierKey(srv.verifierKey)] });
    for (const l of lines.trimEnd().split('\n')) v.push(JSON.parse(l) as unknown);
    return v.finish();
  }

  /** A fresh organization holding the generated log; the recordedAt of each event by position. */
  async function buildLog(shape: Pick<LogShape, 'batches'>): Promise<{ org: string; recordedAt: string[] }> {
    const { id: org } = await createOrganization(srv.runtime.database, `org-${Math.random().toString(36).slice(2)}`);
    const key = await registerProducerKey(db(), org, 'ehr', producer.publicKey.toString('base64'));
    const recordedAt: string[] = [];
    const erase: string[] = [];
    for (const batch of shape.batches) {
      const raws = batch.map(({ event: e, sign }) => {
        // A signed event names its instant and classification (events/schema.ts).
        if (!sign) return e;
        const signedForm = { ...e, timestamp: e.timestamp ?? '2026-11-27T10:00:00.123Z', dataClassification: e.dataClassification ?? 'PHI' };
        return { ...signedForm, producerSignature: signProducerEvent(signedForm, producer.seed, producer.publicKey) };
      });
      const results = await srv.runtime.services.events.bulkCreate(org, bulkItems(raws));
      results.forEach((r, i) => {
        if (!r.ok) throw new Error(`event rejected: ${JSON.stringify(r)}`);
        recordedAt.push(r.receipt.recordedAt);
        if (batch[i]!.erase) erase.push(r.receipt.id);
      });
    }
    expect(key.keyId).toMatch(/^[0-9a-f]{16}$/);
    if (erase.length > 0) await srv.runtime.services.privacy.erasures.eraseEvents(org, erase, 'test erasure');
    return { org, recordedAt };
  }

  it('gives the reference bytes for generated logs, ranges and page sizes, and the lines verify', async () => {
    const kinds = new Set<string>();
    await fc.assert(
      fc.asyncProperty(logShape, async (shape) => {
        const { org, recordedAt } = await buildLog(shape);
        const ranges: ExportRange[] = [{}];
        for (const r of shape.ranges) {
          if ('fromEvent' in r || 'toEvent' in r) {
            const at = (i: number | undefined) => (i === undefined ? undefined : new Date(recordedAt[i % recordedAt.length]!));
            ranges.push({ from: at(r.fromEvent), to: at(r.toEvent) });
          } else {
            const { start, end } = r as { start?: number; end?: number };
            // The API refuses start > end; any other pair, past the log included, is a range.
            ranges.push(start !== undefined && end !== undefined && start > end ? { start: end, end: start } : { start, end });
          }
        }
        for (const range of ranges) {
          const { reference, lines, records } = await bothWays(org, range, shape.pageSize);
          expect(lines).toBe(reference);
          for (const r of records) kinds.add(r.type);
          const report = verifyLines(lines);
          expect(report.failures).toEqual([]);
          expect(report.ok).toBe(true);
        }
      }),
      { numRuns: 40 },
    );
    // The comparison covered every kind of record the format has (ledger/bundle-format.ts).
    expect([...kinds].sort()).toEqual(['checkpoint', 'consistency', 'end', 'event', 'frontier', 'header', 'key', 'producerKey']);
  });

  it('gives the reference bytes for rows an attacker rewrote, which the verifier then names', async () => {
    const { org } = await buildLog({
      batches: [
        [1, 2, 3].map((n) => ({ event: { action: 'data.read', status: 'success', principalId: `u-${n}`, details: { n } }, erase: false, sign: false })),
        [4, 5, 6].map((n) => ({ event: { action: 'data.read', status: 'failure', patientId: `p-${n}`, details: { n } }, erase: n === 5, sign: false })),
      ],
    });
    const conn = await srv.runtime.database.connect();
    try {
      // Triggers off, as a superuser can (server/test/tamper): what ingest never writes.
      await conn.exec('SET session_replication_role = replica');
      const q = (sql: string) => conn.query(sql, [org]);
      // A commitment under a name that is no event field, and a salt that is not a string.
      await q(`UPDATE events SET commitments = commitments || '{"extra": "00", "toString": "x"}', salts = salts || '{"extra": 7}' WHERE organization_id = $1 AND leaf_index = 0`);
      // jsonb strings holding JSON (Drizzle parses them a second time) and a JSON null.
      await q(`UPDATE events SET details = to_jsonb('{"a":[1,2.50]}'::text), session_context = 'null'::jsonb WHERE organization_id = $1 AND leaf_index = 1`);
      await q(`UPDATE events SET salts = to_jsonb('{"action":"AAAAAAAAAAAAAAAAAAAAAA=="}'::text) WHERE organization_id = $1 AND leaf_index = 2`);
      // Commitments that need escaping: a quote and a backslash in one, all of them as a jsonb string.
      await q(`UPDATE events SET commitments = jsonb_set(commitments, '{action}', to_jsonb('ab"c\\'::text)) WHERE organization_id = $1 AND leaf_index = 1`);
      await q(`UPDATE events SET commitments = to_jsonb(commitments::text) WHERE organization_id = $1 AND leaf_index = 5`);
      // A forged row at an index already taken, and a leaf whose tree node is gone (checkpoints at
      // 3 and 6: the proof between them uses the node over [4, 6), not leaf 4's).
      await q(
        `INSERT INTO events (organization_id, id, recorded_at, leaf_index, leaf_hash, action, status, details, commitments, salts)
         SELECT organization_id, gen_random_uuid(), recorded_at, leaf_index, leaf_hash, action, 'forged', details, commitments, salts
           FROM events WHERE organization_id = $1 AND leaf_index = 3`,
      );
      await q(`DELETE FROM ledger_nodes WHERE organization_id = $1 AND level = 0 AND idx = 4`);
    } finally {
      await conn.exec('SET session_replication_role = DEFAULT');
      conn.release();
    }
    for (const pageSize of [1, 2, 1000]) {
      const { reference, lines } = await bothWays(org, {}, pageSize);
      expect(lines).toBe(reference);
      const report = verifyLines(lines);
      expect(report.ok).toBe(false);
      expect(report.failures.length).toBeGreaterThan(0);
    }
  });

  it('serves the same bytes over GET /api/v1/ledger/export as the reference, but for the moment in the header', async () => {
    // The admin key reads the bootstrap organization. The request appends its own read event
    // (api/accountability.ts) before the range is resolved; nothing is appended after it.
    const own = srv.organizationId;
    const results = await srv.runtime.services.events.bulkCreate(
      own,
      bulkItems([{ action: 'data.read', status: 'success', principalId: 'dr-☃ 𝄞', outcomeDescription: 'line\nbreak "quoted"', details: { '10': 1, '2': [true, null, 2.5], note: 'é' } }]),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    const res = await fetch(`${srv.url}/api/v1/ledger/export`, { headers: { authorization: `Bearer ${srv.adminKey}` } });
    expect(res.status).toBe(200);
    const served = await res.text();
    const { reference } = await bothWays(own, {}, 1000);
    const [servedHeader, ...servedRest] = served.split('\n');
    const [referenceHeader, ...referenceRest] = reference.split('\n');
    expect(servedRest.join('\n')).toBe(referenceRest.join('\n'));
    expect(servedRest.length).toBeGreaterThan(4);
    const withoutMoment = (line: string) => ({ ...(JSON.parse(line) as Record<string, unknown>), exportedAt: null });
    expect(withoutMoment(servedHeader!)).toEqual(withoutMoment(referenceHeader!));
  });
});
