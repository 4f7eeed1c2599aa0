/**
 * AuditEvents in the shapes of the IHE Basic Audit Log Patterns (BALP) profiles, as a FHIR server's
 * audit interceptor emits them: RESTful create, read, update, delete, search (Query) and the
 * patient-specific read and query — client and server agents (DICOM 110153/110152), the user,
 * the source, the data entity, the patient entity and the request id (XrequestId).
 */
const REST = { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'Restful Operation' };
const interaction = (code: string) => [{ system: 'http://hl7.org/fhir/restful-interaction', code, display: code }];

const client = {
  type: { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110153', display: 'Source Role ID' }] },
  who: { display: 'ehr-frontend.example.org' },
  requestor: false,
  network: { address: '192.0.2.10', type: '2' },
};
const server = {
  type: { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110152', display: 'Destination Role ID' }] },
  who: { display: 'fhir.example.org' },
  requestor: false,
  network: { address: 'https://fhir.example.org/fhir', type: '5' },
};
const user = (id: string) => ({
  type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }] },
  who: { identifier: { system: 'https://idp.example.org', value: id } },
  requestor: true,
  purposeOfUse: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT', display: 'treatment' }] }],
});
const source = {
  site: 'fhir.example.org',
  observer: { display: 'fhir.example.org' },
  type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
};
const requestId = (value: string) => ({
  what: { identifier: { value } },
  type: { system: 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType', code: 'XrequestId', display: 'XrequestId' },
});
const data = (reference: string) => ({
  what: { reference },
  type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
  role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '4', display: 'Domain Resource' },
});
const patient = (id: string) => ({
  what: { reference: `Patient/${id}` },
  type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
  role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
});
const query = (q: string) => ({
  type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
  role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '24', display: 'Query' },
  query: Buffer.from(q).toString('base64'),
  description: q,
});

/** One AuditEvent per BALP profile (the profile name is the key). `recorded` is set per test run. */
export function balpEvents(recorded: string): Record<string, Record<string, unknown>> {
  const base = (code: string, action: string) => ({ resourceType: 'AuditEvent', type: REST, subtype: interaction(code), action, recorded, outcome: '0', source });
  return {
    Create: { ...base('create', 'C'), agent: [client, server, user('dr-ada')], entity: [data('Observation/obs-1'), requestId('req-create-1')] },
    Read: { ...base('read', 'R'), agent: [client, server, user('dr-bob')], entity: [data('Device/dev-9'), requestId('req-read-1')] },
    Update: { ...base('update', 'U'), outcome: '4', outcomeDesc: 'version conflict', agent: [client, server, user('dr-ada')], entity: [data('Observation/obs-1')] },
    Delete: { ...base('delete', 'D'), agent: [client, server, user('dr-cy')], entity: [data('Observation/obs-2')] },
    Query: { ...base('search-type', 'E'), agent: [client, server, user('dr-bob')], entity: [query('GET /fhir/Observation?code=1234-5')] },
    PatientRead: { ...base('read', 'R'), agent: [client, server, user('dr-ada')], entity: [data('Observation/obs-7'), patient('pat-1'), requestId('req-pr-1')] },
    PatientQuery: { ...base('search-type', 'E'), outcome: '8', agent: [client, server, user('dr-cy')], entity: [query('GET /fhir/Observation?patient=pat-2'), patient('pat-2')] },
  };
}
