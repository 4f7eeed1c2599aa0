/**
 * Pseudonyms (docs/privacy.md §4): callers without privacy.pseudonyms:resolve see `pseu_…` instead
 * of patient and principal ids in every read (query, by id, tRPC, GraphQL via the same table, the
 * export bundle, ledger leaves), can filter by a pseudonym, and the export they get still
 * verifies; the privacy office sees identifiers and resolves pseudonyms (audited); an erasure
 * makes the subject's pseudonyms unresolvable; a key rotation changes every pseudonym.
 */
import { createHmac } from 'node:crypto';
import { isPseudonym, pseudonymizeRecord, pseudonymOf, subjectHash, withholdIdentifiers } from '../../src/privacy/pseudonyms';
import { replaceIdentifiers, splitReference } from '../../src/privacy/identifiers';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';
import { exportNdjson, verifyNdjson, waitForErasure } from './helpers';

jest.setTimeout(180_000);

const PATIENT = 'patient-pseudo-77ab';
const DOCTOR = 'dr-pseudo-19c0';

describe('pseudonyms (pure)', () => {
  const k1 = Buffer.alloc(32, 1);
  const k2 = Buffer.alloc(32, 2);
  it('are stable per key, differ between keys and values, and have the documented form', () => {
    expect(pseudonymOf(k1, 'p-1')).toBe(pseudonymOf(k1, 'p-1'));
    expect(pseudonymOf(k1, 'p-1')).not.toBe(pseudonymOf(k2, 'p-1'));
    expect(pseudonymOf(k1, 'p-1')).not.toBe(pseudonymOf(k1, 'p-2'));
    expect(isPseudonym(pseudonymOf(k1, 'p-1'))).toBe(true);
    const mac = createHmac('sha256', k1).update('smedrec-pseudonym\0p-1').digest();
    expect(pseudonymOf(k1, 'p-1')).toBe('pseu_' + mac.subarray(0, 16).toString('base64url'));
    expect(subjectHash(k1, 'p-1')).toBe(createHmac('sha256', k1).update('smedrec-subject\0p-1').digest('hex'));
  });
  it('replace patient, principal and person targets, and nothing else', () => {
    const p = (v: string) => `P(${v})`;
    expect(pseudonymizeRecord({ patientId: 'a', principalId: 'b', targetResourceType: 'Observation', targetResourceId: 'o-1', action: 'data.read', details: { x: 'o-1' } }, p)).toEqual({
      patientId: 'P(a)',
      principalId: 'P(b)',
      targetResourceType: 'Observation',
      targetResourceId: 'o-1',
      action: 'data.read',
      details: { x: 'o-1' },
    });
    expect(pseudonymizeRecord({ targetResourceType: 'Patient', targetResourceId: 'a' }, p).targetResourceId).toBe('P(a)');
    expect(pseudonymizeRecord({ action: 'audit.log.read', details: { input: { patientIds: ['a', 'b'], limit: 5 } } }, p).details).toEqual({
      input: { patientIds: ['P(a)', 'P(b)'], limit: 5 },
    });
    const fields = { patientId: { commitment: 'c', salt: 's', value: 'a' }, action: { commitment: 'd', salt: 't', value: 'data.read' } };
    expect(withholdIdentifiers(fields, p)).toEqual({ patientId: { commitment: 'c', salt: null, pseudonym: 'P(a)' }, action: fields.action });
  });
  it('replace the record\'s identifiers inside details, as values and as FHIR references, and nothing else', () => {
    const p = (v: string) => `P(${v})`;
    const details = {
      fhir: {
        agent: [{ who: { identifier: { value: 'dr-1' } } }, { who: { display: 'dr-1 (Dr One)' } }],
        entity: [{ what: { reference: 'Patient/pat-1' } }, { what: { reference: 'https://fhir.example.org/fhir/Patient/pat-1/_history/3' } }, { what: { reference: 'Observation/obs-1' } }],
      },
      other: ['pat-1', 'pat-2', 7, null, true],
      id: 'pat-1',
    };
    expect(pseudonymizeRecord({ patientId: 'pat-1', principalId: 'dr-1', action: 'data.read', details }, p).details).toEqual({
      fhir: {
        // A free-text display that merely contains the id is not an identifier value (docs/privacy.md §9).
        agent: [{ who: { identifier: { value: 'P(dr-1)' } } }, { who: { display: 'dr-1 (Dr One)' } }],
        entity: [{ what: { reference: 'Patient/P(pat-1)' } }, { what: { reference: 'Patient/P(pat-1)' } }, { what: { reference: 'Observation/obs-1' } }],
      },
      other: ['P(pat-1)', 'pat-2', 7, null, true],
      id: 'P(pat-1)',
    });
    // A person target is an identifier too; an Observation id is not.
    expect(pseudonymizeRecord({ targetResourceType: 'Practitioner', targetResourceId: 'pr-9', details: { by: 'Practitioner/pr-9' } }, p).details).toEqual({ by: 'Practitioner/P(pr-9)' });
    expect(pseudonymizeRecord({ targetResourceType: 'Observation', targetResourceId: 'obs-1', details: { r: 'Observation/obs-1' } }, p).details).toEqual({ r: 'Observation/obs-1' });
    // A recorded read gets both: its filters and any other mention.
    expect(pseudonymizeRecord({ principalId: 'dr-1', action: 'audit.log.read', details: { input: { patientIds: ['x'] }, by: 'dr-1' } }, p).details).toEqual({ input: { patientIds: ['P(x)'] }, by: 'P(dr-1)' });
    // Details without an identifier are the same object (nothing copied).
    const plain = { i: 1, nested: { s: 'text' } };
    expect(pseudonymizeRecord({ patientId: 'pat-1', details: plain }, p).details).toBe(plain);
  });
  it('withhold a committed details value that holds an identifier (it cannot be rewritten), and keep others', () => {
    const p = (v: string) => `P(${v})`;
    const base = { patientId: { commitment: 'c', salt: 's', value: 'pat-1' }, action: { commitment: 'a', salt: 't', value: 'data.read' } };
    const holding = { ...base, details: { commitment: 'd', salt: 'u', value: { fhir: { entity: [{ what: { reference: 'Patient/pat-1' } }] } } } };
    expect(withholdIdentifiers(holding, p).details).toEqual({ commitment: 'd', salt: null });
    const clean = { ...base, details: { commitment: 'd', salt: 'u', value: { note: 'routine' } } };
    expect(withholdIdentifiers(clean, p).details).toBe(clean.details);
  });
  it('replaceIdentifiers keeps the named members and splitReference reads FHIR literal references', () => {
    const map = new Map([['pat-1', 'X']]);
    expect(replaceIdentifiers({ id: 'pat-1', meta: { tag: 'pat-1' }, subject: 'Patient/pat-1' }, map, new Set(['id', 'meta']))).toEqual({ id: 'pat-1', meta: { tag: 'pat-1' }, subject: 'Patient/X' });
    expect(splitReference('https://x/fhir/Patient/123/_history/2')).toEqual({ type: 'Patient', id: '123' });
    expect(splitReference('patient/123')).toBeNull();
    expect(splitReference('no reference')).toBeNull();
  });
});

describeEachBackend('pseudonyms on %s', (backend) => {
  let srv: TestServer;
  let auditorKey: string;
  let officerKey: string;
  beforeAll(async () => {
    srv = await startTestServer(backend, { INGEST_MAX_WAIT_MS: '0' });
    auditorKey = (await srv.client().apiKeys.create.mutate({ name: 'auditor', role: 'auditor' })).key;
    officerKey = (await srv.client().apiKeys.create.mutate({ name: 'privacy office', role: 'compliance_officer' })).key;
    const events = [
      ...Array.from({ length: 4 }, (_, i) => ({ action: 'data.read', status: 'success', principalId: DOCTOR, patientId: PATIENT, targetResourceType: 'Patient', targetResourceId: PATIENT, details: { i } })),
      { action: 'data.write', status: 'success', principalId: 'dr-other', patientId: 'patient-other' },
    ];
    expect((await srv.request('POST', '/api/v1/events/bulk', { events })).body.accepted).toBe(5);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('shows auditors pseudonyms in every read, and they can filter by one', async () => {
    const page = (await srv.request('GET', '/api/v1/events?actions=data.read&limit=10', undefined, auditorKey)).body.items as Array<Record<string, string>>;
    expect(page).toHaveLength(4);
    const p = page[0]!.patientId!;
    expect(isPseudonym(p)).toBe(true);
    expect(page.every((e) => e.patientId === p && e.targetResourceId === p && isPseudonym(e.principalId!) && e.principalId !== p)).toBe(true);
    expect(JSON.stringify(page)).not.toContain(PATIENT);
    expect(JSON.stringify(page)).not.toContain(DOCTOR);

    const byPseudonym = (await srv.request('GET', `/api/v1/events?patientIds=${p}&limit=10`, undefined, auditorKey)).body.items as unknown[];
    expect(byPseudonym).toHaveLength(4);
    const one = (await srv.request('GET', `/api/v1/events/${page[0]!.id}?withProof=true`, undefined, auditorKey)).body;
    expect(one.event.patientId).toBe(p);
    const viaTrpc = await srv.client(auditorKey).events.query.query({ principalIds: [page[0]!.principalId!], limit: 10 });
    expect(viaTrpc.items).toHaveLength(4);
    expect(viaTrpc.items[0]!.principalId).toBe(page[0]!.principalId);

    // The log's record of the auditor's own reads names the patient only as a pseudonym to them.
    const reads = (await srv.request('GET', '/api/v1/events?actions=audit.log.read&limit=50', undefined, auditorKey)).body.items;
    expect(JSON.stringify(reads)).not.toContain(PATIENT);
    // The privacy office sees identifiers as they are.
    const clear = (await srv.request('GET', '/api/v1/events?actions=data.read&limit=10', undefined, officerKey)).body.items as Array<Record<string, string>>;
    expect(clear.every((e) => e.patientId === PATIENT && e.principalId === DOCTOR)).toBe(true);
  });

  it('withholds identifiers from an auditor’s export and leaves, which still verify', async () => {
    const bundle = await exportNdjson(srv, '', auditorKey);
    expect(bundle).not.toContain(PATIENT);
    expect(bundle).not.toContain(DOCTOR);
    expect(bundle).toContain('"pseudonym":"pseu_');
    const report = verifyNdjson(bundle, srv.verifierKey);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    const leaves = (await srv.request('GET', '/api/v1/ledger/leaves?start=0&end=20', undefined, auditorKey)).body;
    expect(JSON.stringify(leaves)).not.toContain(PATIENT);
    const withPatient = (leaves.leaves as Array<{ fields: Record<string, unknown> }>).filter((l) => l.fields.patientId);
    expect(withPatient.length).toBeGreaterThanOrEqual(5);
    expect(withPatient[0]!.fields.patientId).toMatchObject({ salt: null, pseudonym: expect.stringMatching(/^pseu_/) });
    // The admin's export holds the values.
    expect(await exportNdjson(srv)).toContain(PATIENT);
  });

  it('lets the privacy office resolve a pseudonym (audited), nobody else', async () => {
    const p = (await srv.request('GET', '/api/v1/events?actions=data.read&limit=1', undefined, auditorKey)).body.items[0].patientId as string;
    expect((await srv.request('GET', `/api/v1/privacy/pseudonyms/${p}`, undefined, auditorKey)).status).toBe(403);
    const resolved = await srv.request('GET', `/api/v1/privacy/pseudonyms/${p}`, undefined, officerKey);
    expect(resolved.body).toEqual({ pseudonym: p, value: PATIENT });
    expect(await srv.client(officerKey).privacy.resolve.query({ pseudonym: p })).toEqual({ pseudonym: p, value: PATIENT });
    const audited = (await srv.request('GET', '/api/v1/events?actions=privacy.pseudonym.resolve&limit=10')).body.items;
    expect(audited).toHaveLength(2);
    expect(audited[0]).toMatchObject({ status: 'success', targetResourceId: p, principalType: 'apiKey:compliance_officer' });
    expect((await srv.request('GET', '/api/v1/privacy/pseudonyms/pseu_AAAAAAAAAAAAAAAAAAAAAA', undefined, officerKey)).status).toBe(404);
    expect((await srv.request('GET', '/api/v1/privacy/pseudonyms/not-a-pseudonym', undefined, officerKey)).status).toBe(400);
  });

  it('changes every pseudonym when the organization key is rotated', async () => {
    const before = (await srv.request('GET', '/api/v1/events?actions=data.write&limit=1', undefined, auditorKey)).body.items[0].patientId as string;
    expect(await srv.runtime.services.privacy.keyring.rotate(srv.organizationId)).toBe(2);
    const after = (await srv.request('GET', '/api/v1/events?actions=data.write&limit=1', undefined, auditorKey)).body.items[0].patientId as string;
    expect(isPseudonym(after)).toBe(true);
    expect(after).not.toBe(before);
    // Both resolve: the old pseudonym was handed out under version 1.
    expect((await srv.request('GET', `/api/v1/privacy/pseudonyms/${before}`, undefined, officerKey)).body.value).toBe('patient-other');
    expect((await srv.request('GET', `/api/v1/privacy/pseudonyms/${after}`, undefined, officerKey)).body.value).toBe('patient-other');
  });

  it('forgets the pseudonyms of an erased subject', async () => {
    const p = (await srv.request('GET', '/api/v1/events?actions=data.read&limit=1', undefined, auditorKey)).body.items[0].patientId as string;
    const res = await srv.request('POST', '/api/v1/privacy/erasures', { patientId: PATIENT, reason: 'request 9' }, officerKey);
    expect(res.status).toBe(202);
    await waitForErasure(srv, res.body.id);
    expect((await srv.request('GET', `/api/v1/privacy/pseudonyms/${p}`, undefined, officerKey)).status).toBe(404);
  });
});

describeEachBackend('pseudonyms inside details on %s', (backend) => {
  let srv: TestServer;
  let auditorKey: string;
  const FHIR_PATIENT = 'pat-fhir-5d2e';
  const FHIR_DOCTOR = 'dr-fhir-8a41';
  beforeAll(async () => {
    srv = await startTestServer(backend, { INGEST_MAX_WAIT_MS: '0' });
    auditorKey = (await srv.client().apiKeys.create.mutate({ name: 'auditor', role: 'auditor' })).key;
    // A BALP patient read as a FHIR server's audit interceptor sends it.
    const res = await fetch(`${srv.url}/fhir/AuditEvent`, {
      method: 'POST',
      headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({
        resourceType: 'AuditEvent',
        type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
        subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }],
        action: 'R',
        recorded: new Date().toISOString(),
        outcome: '0',
        source: { observer: { display: 'fhir.example.org' } },
        agent: [{ who: { identifier: { system: 'https://idp.example.org', value: FHIR_DOCTOR } }, requestor: true }],
        entity: [
          { what: { reference: 'Observation/obs-7' } },
          { what: { reference: `Patient/${FHIR_PATIENT}` }, role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1' } },
        ],
      }),
    });
    expect(res.status).toBe(201);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('shows an auditor no identifier inside details over REST and tRPC; the export withholds such details', async () => {
    const page = (await srv.request('GET', `/api/v1/events?limit=50`, undefined, auditorKey)).body.items as Array<Record<string, any>>;
    const imported = page.find((e) => e.details?.fhir);
    expect(imported).toBeDefined();
    expect(isPseudonym(imported!.patientId)).toBe(true);
    expect(imported!.details.fhir.entity[1].what.reference).toBe(`Patient/${imported!.patientId}`);
    expect(imported!.details.fhir.agent[0].who.identifier.value).toBe(imported!.principalId);
    expect(JSON.stringify(page)).not.toContain(FHIR_PATIENT);
    expect(JSON.stringify(page)).not.toContain(FHIR_DOCTOR);
    const one = (await srv.request('GET', `/api/v1/events/${imported!.id}`, undefined, auditorKey)).body;
    expect(JSON.stringify(one)).not.toContain(FHIR_PATIENT);
    const viaTrpc = await srv.client(auditorKey).events.query.query({ limit: 50 });
    expect(JSON.stringify(viaTrpc.items)).not.toContain(FHIR_PATIENT);
    expect(JSON.stringify(viaTrpc.items)).not.toContain(FHIR_DOCTOR);

    const bundle = await exportNdjson(srv, '', auditorKey);
    expect(bundle).not.toContain(FHIR_PATIENT);
    expect(bundle).not.toContain(FHIR_DOCTOR);
    expect(verifyNdjson(bundle, srv.verifierKey).failures).toEqual([]);
    // The privacy office reads the resource as sent.
    const clear = (await srv.request('GET', `/api/v1/events/${imported!.id}`)).body;
    expect(clear.event.details.fhir.entity[1].what.reference).toBe(`Patient/${FHIR_PATIENT}`);
  });
});
