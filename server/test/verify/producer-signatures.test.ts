/**
 * Optional producer signatures: a producer signs its event (Ed25519 over the JCS of the event as
 * sent) with a key registered for its organization; the server verifies on ingest and stores the
 * signature beside the event; the bundle verifier checks it offline from the committed values.
 */
import { generateKeyPairSync } from 'node:crypto';
import { TRPCClientError } from '@trpc/client';
import { BundleVerifier, parseVerifierKey, signProducerEvent, type BundleRecord } from '../../src/ledger';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

function producerKeyPair(): { seed: Buffer; publicKey: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return { seed: Buffer.from(seed), publicKey: Buffer.from(pub) };
}

describeEachBackend('producer signatures on %s', (backend) => {
  let srv: TestServer;
  const producer = producerKeyPair();
  let keyId: string;

  beforeAll(async () => {
    srv = await startTestServer(backend, { AUDIT_SELF_AUDIT_INTERVAL_MS: '0' });
    const key = await srv
      .client()
      .ledger.registerProducerKey.mutate({
        name: 'ehr-frontend',
        publicKey: producer.publicKey.toString('base64'),
      });
    keyId = key.keyId;
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  const event = (n: number) => ({
    timestamp: '2026-11-27T10:00:00.123Z',
    action: 'fhir.Patient.read',
    status: 'success' as const,
    principalId: `dr-${n}`,
    patientId: 'patient-42',
    dataClassification: 'PHI' as const,
    details: { purpose: 'treatment', n },
  });
  const signed = (e: Record<string, unknown>) => ({
    ...e,
    producerSignature: signProducerEvent(e, producer.seed, producer.publicKey),
  });

  it('accepts a correctly signed event and lists the producer key', async () => {
    const receipt = await srv.client().events.create.mutate(signed(event(1)) as never);
    expect(receipt.leafIndex).toBeGreaterThanOrEqual(0);
    const { keys } = await srv.client().ledger.producerKeys.query();
    expect(keys).toEqual([
      expect.objectContaining({
        keyId,
        name: 'ehr-frontend',
        publicKey: producer.publicKey.toString('base64'),
        revokedAt: null,
      }),
    ]);
  });

  it('rejects a signature that does not match the event, an unknown key and a non-committed form', async () => {
    const tampered = { ...signed(event(2)), principalId: 'someone-else' };
    const err = (await srv
      .client()
      .events.create.mutate(tampered as never)
      .catch((e: unknown) => e)) as TRPCClientError<any>;
    expect(err).toBeInstanceOf(TRPCClientError);
    expect(err.message).toBe('producer signature does not verify');
    const other = producerKeyPair();
    const stranger = {
      ...event(3),
      producerSignature: signProducerEvent(event(3), other.seed, other.publicKey),
    };
    const err2 = (await srv
      .client()
      .events.create.mutate(stranger as never)
      .catch((e: unknown) => e)) as TRPCClientError<any>;
    expect(err2.message).toMatch(/is not registered or was revoked/);
    const loose = signed({ ...event(4), timestamp: '2026-11-27T11:00:00+01:00' });
    const err3 = (await srv
      .client()
      .events.create.mutate(loose as never)
      .catch((e: unknown) => e)) as TRPCClientError<any>;
    expect(err3.data.issues.map((i: { path: string }) => i.path)).toEqual(['timestamp']);
  });

  it('requires an explicit dataClassification on a signed event, alike for single and bulk appends, REST and tRPC', async () => {
    const { dataClassification: _omit, ...unclassified } = event(8);
    const body = signed(unclassified); // validly signed, but the server would default the field
    const rest = await srv.request('POST', '/api/v1/events', body);
    expect(rest.status).toBe(400);
    expect(rest.body.error.issues).toEqual([
      { path: 'dataClassification', message: 'a signed event needs an explicit dataClassification' },
    ]);
    const err = (await srv
      .client()
      .events.create.mutate(body as never)
      .catch((e: unknown) => e)) as TRPCClientError<any>;
    expect(err.data.issues).toEqual(rest.body.error.issues);
    const bulk = await srv.request('POST', '/api/v1/events/bulk', { events: [body, event(9)] });
    expect(bulk.body.results[0]).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', issues: rest.body.error.issues },
    });
    expect(bulk.body.results[1].ok).toBe(true);
    const trpcBulk = await srv.client().events.bulkCreate.mutate({ events: [body as never] });
    expect(trpcBulk.results[0]).toMatchObject({ ok: false, error: { issues: rest.body.error.issues } });
  });

  it('reports a bad signature per item in a bulk append, accepting the others', async () => {
    const res = await srv.request('POST', '/api/v1/events/bulk', {
      events: [signed(event(5)), { ...signed(event(6)), status: 'failure' }, event(7)],
    });
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(2);
    expect(res.body.results[1]).toMatchObject({
      ok: false,
      error: { message: 'producer signature does not verify', issues: [{ path: 'producerSignature' }] },
    });
  });

  it('exports signatures and producer keys; the offline verifier checks them, and an erasure makes them unverifiable, not failed', async () => {
    const records: BundleRecord[] = [];
    for await (const r of srv.runtime.services.exports.exportBundle(srv.organizationId)) records.push(r);
    expect(records.filter((r) => r.type === 'producerKey')).toHaveLength(1);
    const verify = (rs: BundleRecord[]) => {
      const v = new BundleVerifier({ verifiers: [parseVerifierKey(srv.verifierKey)] });
      rs.forEach((r) => v.push(r));
      return v.finish();
    };
    const report = verify(records);
    expect(report.failures).toEqual([]);
    expect(report.producerSignaturesVerified).toBe(2);

    // A forged signature in the bundle names the leaf.
    const forged = structuredClone(records);
    const ev = forged.find((r) => r.type === 'event' && r.producerSignature) as Extract<
      BundleRecord,
      { type: 'event' }
    >;
    ev.producerSignature!.signature = signProducerEvent(
      { other: true },
      producer.seed,
      producer.publicKey,
    ).signature;
    expect(verify(forged).failures[0]).toMatchObject({
      kind: 'leaf',
      leafIndex: ev.leafIndex,
      reason: `leaf ${ev.leafIndex}: producer signature of key ${keyId} does not verify`,
    });

    const conn = await srv.runtime.database.connect();
    try {
      await conn.query(
        `UPDATE events SET patient_id = NULL, salts = salts - 'patientId', erased_at = now() WHERE organization_id = $1 AND producer_key_id IS NOT NULL AND leaf_index = $2`,
        [srv.organizationId, ev.leafIndex],
      );
      // The signature itself can never be changed or dropped, even by the erasure path.
      await expect(
        conn.query(
          `UPDATE events SET producer_signature = NULL WHERE organization_id = $1 AND leaf_index = $2`,
          [srv.organizationId, ev.leafIndex],
        ),
      ).rejects.toThrow(/immutable/);
    } finally {
      conn.release();
    }
    const after: BundleRecord[] = [];
    for await (const r of srv.runtime.services.exports.exportBundle(srv.organizationId)) after.push(r);
    const r2 = verify(after);
    expect(r2.ok).toBe(true);
    expect(r2.producerSignaturesVerified).toBe(1);
    expect(r2.producerSignaturesUnverifiable).toBe(1);
  });
});
