/* eslint-disable @typescript-eslint/no-unsafe-return -- FHIR answers are read as `any` in these tests */
/**
 * The official IHE BALP example AuditEvents (balp-examples/, see its README for their source and
 * licence), each sent as it is to `POST /fhir/AuditEvent`: accepted, stored with the fields a
 * search and the reports use, read back as sent (apart from the server's id and meta), and found by
 * patient, agent and date (their `recorded`, 2020-04-29) — and by _lastUpdated (when the log recorded them).
 */
import fs from 'node:fs';
import path from 'node:path';
import { validateFhir } from '../../src/fhir/validate';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

type Resource = Record<string, any>;

const DIR = path.join(__dirname, 'balp-examples');
const EXAMPLES: Record<string, Resource> = Object.fromEntries(
  fs
    .readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => {
      const r = JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8')) as Resource;
      return [r.id as string, r];
    }),
);

describeEachBackend('official BALP examples through FHIR on %s', (backend) => {
  let srv: TestServer;
  let producerKey: string;
  let officerKey: string;
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    srv = await startTestServer(backend);
    producerKey = (await srv.runtime.services.apiKeys.create(srv.organizationId, 'fhir server', 'producer')).key;
    // A compliance officer sees identifiers as they are (an auditor sees pseudonyms).
    officerKey = (await srv.runtime.services.apiKeys.create(srv.organizationId, 'officer', 'compliance_officer')).key;
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  const fhir = async (method: string, url: string, key: string, body?: unknown) => {
    const res = await fetch(`${srv.url}/fhir/${url}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Resource };
  };

  it('has the four examples', () => {
    expect(Object.keys(EXAMPLES).sort()).toEqual(['ex-auditBasicCreateServer', 'ex-auditBasicDeleteNoUser', 'ex-auditBasicQueryGetServer', 'ex-auditBasicReadServer']);
  });

  it.each(Object.keys(EXAMPLES))('ingests %s as it is and reads it back as sent', async (name) => {
    const created = await fhir('POST', 'AuditEvent', producerKey, EXAMPLES[name]);
    expect({ status: created.status, issues: created.body.issue }).toEqual({ status: 201, issues: undefined });
    expect(validateFhir(created.body)).toEqual([]);
    ids[name] = created.body.id;
    const read = await fhir('GET', `AuditEvent/${ids[name]}`, officerKey);
    expect(read.status).toBe(200);
    const { id: _id, meta, ...rest } = read.body;
    const { id: _sentId, meta: sentMeta, ...sent } = EXAMPLES[name]!;
    expect(rest).toEqual(sent);
    // The example's profile and security label (HTEST: test data) are kept beside the server's meta.
    expect(meta).toMatchObject({ versionId: '1', profile: sentMeta.profile, security: sentMeta.security });
  });

  it('maps each onto the event fields the reports and searches use', async () => {
    const event = async (name: string) => (await srv.request('GET', `/api/v1/events/${ids[name]}`)).body.event;
    expect(await event('ex-auditBasicReadServer')).toMatchObject({
      action: 'fhir.rest.read',
      status: 'success',
      timestamp: '2020-04-29T09:49:00.000Z',
      principalId: 'John Smith',
      principalType: 'fhir:IRCP',
      patientId: 'ex-patient',
      targetResourceType: 'List',
      targetResourceId: 'ex-list',
      correlationId: '76d148b6-586d-11ec-bf63-0242ac130002',
      dataClassification: 'PHI',
    });
    expect(await event('ex-auditBasicQueryGetServer')).toMatchObject({ action: 'fhir.rest.search', principalId: 'John Smith', patientId: 'ex-patient', correlationId: 'cc6d168e-5871-11ec-bf63-0242ac130002' });
    expect(await event('ex-auditBasicCreateServer')).toMatchObject({ action: 'fhir.rest.create', principalId: 'John Smith', principalType: 'fhir:AUT', targetResourceType: 'List' });
    // No user and no requestor: the client application did it, not the server that holds the data.
    expect(await event('ex-auditBasicDeleteNoUser')).toMatchObject({ action: 'fhir.rest.delete', principalId: 'myMachine.example.org', principalType: 'fhir:110150', patientId: 'ex-patient' });
  });

  async function search(query: string): Promise<string[]> {
    const res = await fhir('GET', `AuditEvent?${query}&_count=100`, officerKey);
    expect(res.status).toBe(200);
    expect(validateFhir(res.body)).toEqual([]);
    const mine = new Set(Object.values(ids));
    return (res.body.entry ?? []).map((e: Resource) => e.resource.id as string).filter((id: string) => mine.has(id)).sort();
  }
  const idsOf = (...names: string[]) => names.map((n) => ids[n]!).sort();

  it('finds them by patient, by agent and by date', async () => {
    expect(await search('patient=Patient/ex-patient')).toEqual(idsOf(...Object.keys(EXAMPLES)));
    expect(await search('patient=ex-patient')).toEqual(idsOf(...Object.keys(EXAMPLES)));
    expect(await search(`agent=${encodeURIComponent('John Smith')}`)).toEqual(idsOf('ex-auditBasicReadServer', 'ex-auditBasicQueryGetServer', 'ex-auditBasicCreateServer'));
    expect(await search('agent=myMachine.example.org')).toEqual(idsOf('ex-auditBasicDeleteNoUser'));
    // date is the resource's `recorded` (FHIR's AuditEvent-date): the examples say 2020-04-29T09:49:00.000Z.
    const all = idsOf(...Object.keys(EXAMPLES));
    expect(await search('date=2020-04-29')).toEqual(all);
    expect(await search('date=ge2020-04-29&date=le2020-04-30')).toEqual(all);
    expect(await search('date=2020-04')).toEqual(all);
    expect(await search('date=2020-04-29T09:49:00Z')).toEqual(all);
    expect(await search('date=gt2020-04-29T09:49:00Z')).toEqual([]);
    expect(await search('date=lt2020-04-29T09:49:00.000Z')).toEqual([]);
    expect(await search('date=le2020-04-29T09:49:00.000Z')).toEqual(all);
    expect(await search('patient=ex-patient&action=D&date=2020-04-29')).toEqual(idsOf('ex-auditBasicDeleteNoUser'));
    // Not by when the log recorded them: that is meta.lastUpdated, searched with _lastUpdated.
    const recordedAt = (await srv.request('GET', `/api/v1/events/${ids['ex-auditBasicReadServer']}`)).body.event.recordedAt as string;
    const day = recordedAt.slice(0, 10);
    expect(await search(`date=${day}`)).toEqual([]);
    expect(await search(`date=ge${day}`)).toEqual([]);
    expect(await search(`_lastUpdated=${day}`)).toEqual(all);
    expect(await search(`_lastUpdated=ge${day}&date=le2020-04-30`)).toEqual(all);
    expect(await search('_lastUpdated=2020-04-29')).toEqual([]);
  });
});
