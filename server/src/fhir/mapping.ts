/**
 * FHIR R4 AuditEvent ↔ audit event (docs/fhir.md has the table). An ingested AuditEvent is mapped
 * onto the event's own fields (action, status, timestamp, principal, patient, target, outcome
 * text, correlation id, client address) so reports, queries and search work on it like on any
 * event, and the resource as sent — without `id` and the parts of `meta` the server assigns (it
 * keeps the sender's profile, security labels and tags) — is kept
 * whole in `details.fhir`: it is committed like every field, so the ledger covers what was sent,
 * and a read returns exactly it. An event that did not arrive as FHIR is rendered from its fields.
 */
import type { EventRecord } from '../events/schema';
import { replaceIdentifiers, splitReference } from '../privacy/identifiers';

/** An AuditEvent as JSON. */
export type AuditEventResource = { resourceType: 'AuditEvent' } & Record<string, unknown>;

/** The nested extension in `meta` that carries an event's place in the ledger. */
export const RECEIPT_EXTENSION_URL = 'https://smedrec.org/fhir/StructureDefinition/ledger-receipt';
/** CodeSystem of our action names (the `type` of an event that did not arrive as FHIR). */
export const ACTION_SYSTEM = 'https://smedrec.org/fhir/CodeSystem/audit-action';

export const SYSTEMS = {
  entityType: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
  objectRole: 'http://terminology.hl7.org/CodeSystem/object-role',
  balpEntityType: 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType',
  networkType: 'http://hl7.org/fhir/network-type',
} as const;

/** The key of the stored resource inside `details`. */
export const DETAILS_KEY = 'fhir';

type Json = Record<string, unknown>;

const obj = (v: unknown): Json | null => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : null);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
/** The objects of a JSON array (anything else skipped). */
function objs(v: unknown): Json[] {
  const out: Json[] = [];
  for (const x of arr(v)) {
    const o = obj(x);
    if (o) out.push(o);
  }
  return out;
}
const codings = (cc: unknown): Json[] => objs(obj(cc)?.coding);
const hasCode = (c: unknown, system: string, code: string) => {
  const o = obj(c);
  return o?.system === system && o.code === code;
};

/** One action segment: characters outside `[A-Za-z0-9_-]` become `_`. */
function segment(code: string | undefined): string {
  const s = (code ?? '').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 50);
  return s === '' ? '_' : s;
}

const VERBS: Record<string, string> = { C: 'create', R: 'read', U: 'update', D: 'delete', E: 'execute' };

/** `meta` members an AuditEvent keeps as sent (the others the server assigns). */
const SENT_META: ReadonlySet<string> = new Set(['profile', 'security', 'tag']);

/** An agent that receives the request or holds the data rather than making it. */
function isServerSide(agent: Json): boolean {
  return codings(agent.type).some(
    (c) => hasCode(c, 'http://dicom.nema.org/resources/ontology/DCM', '110152') || hasCode(c, 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', 'custodian'),
  );
}

/** A Reference as one string: its reference, else its identifier's value, else its display. */
function referenceText(ref: unknown): string | undefined {
  const r = obj(ref);
  if (!r) return undefined;
  return str(r.reference) ?? str(obj(r.identifier)?.value) ?? str(r.display);
}

function isIp(s: string): boolean {
  return /^(\d{1,3})(\.\d{1,3}){3}$/.test(s) ? s.split('.').every((p) => Number(p) <= 255) : /^[0-9A-Fa-f:]+$/.test(s) && s.includes(':');
}

/**
 * The event (before parsing by the event schema) an AuditEvent maps to. `resource` was validated
 * against the R4 structure definitions (validate.ts); here nothing is assumed beyond that.
 */
export function toEventBody(resource: AuditEventResource): Record<string, unknown> {
  const { id: _id, meta, ...rest } = resource;
  // The sender's profile claims, security labels and tags are part of what was sent; the rest of
  // meta (version, lastUpdated, source) is the server's to assign.
  const kept = Object.fromEntries(Object.entries(obj(meta) ?? {}).filter(([k]) => SENT_META.has(k)));
  const sent = Object.keys(kept).length > 0 ? { ...rest, meta: kept } : rest;
  const type = obj(resource.type);
  const subtype = obj(arr(resource.subtype)[0]);
  const verb = typeof resource.action === 'string' ? VERBS[resource.action] : undefined;
  const action = `fhir.${segment(str(type?.code))}.${segment(str(subtype?.code) ?? verb ?? 'event')}`;
  const outcome = str(resource.outcome);
  const status = outcome === undefined ? 'attempt' : outcome === '0' ? 'success' : 'failure';

  const agents = objs(resource.agent);
  // Who did it: the requestor; without one (BALP's patterns with no user), the first agent that is
  // not the server side (DICOM 110152 Destination Role ID, or the custodian), i.e. the client.
  const requestor = agents.find((a) => a.requestor === true) ?? agents.find((a) => !isServerSide(a)) ?? agents[0];

  const entities = objs(resource.entity);
  const isPatient = (e: Json) => hasCode(e.role, SYSTEMS.objectRole, '1') || splitReference(str(obj(e.what)?.reference) ?? '')?.type === 'Patient';
  const patientEntity = entities.find(isPatient);
  const patientRef = str(obj(patientEntity?.what)?.reference);
  const patientId = patientRef ? (splitReference(patientRef)?.id ?? patientRef) : str(obj(obj(patientEntity?.what)?.identifier)?.value);
  const requestId = entities.find((e) => hasCode(e.type, SYSTEMS.balpEntityType, 'XrequestId'));
  const correlationId = str(obj(obj(requestId?.what)?.identifier)?.value);
  const targetEntity = entities.find((e) => e !== patientEntity && e !== requestId && splitReference(str(obj(e.what)?.reference) ?? '') !== null) ?? patientEntity;
  const target = splitReference(str(obj(targetEntity?.what)?.reference) ?? '');

  const address = str(obj(requestor?.network)?.address);
  const purposes = [...arr(resource.purposeOfEvent), ...agents.flatMap((a) => arr(a.purposeOfUse))].flatMap((cc) => codings(cc).flatMap((c) => str(c.code) ?? []));

  const body: Record<string, unknown> = {
    action,
    status,
    eventVersion: 'fhir-r4',
    dataClassification: patientId ? 'PHI' : 'INTERNAL',
    details: {
      [DETAILS_KEY]: sent,
      ...(purposes.length > 0 ? { purposeOfUse: [...new Set(purposes)] } : {}),
    },
  };
  const put = (k: string, v: string | undefined, max: number) => {
    if (v !== undefined) body[k] = v.slice(0, max);
  };
  put('timestamp', str(resource.recorded), 64);
  put('principalId', requestor ? (str(obj(obj(requestor.who)?.identifier)?.value) ?? referenceText(requestor.who) ?? str(requestor.altId) ?? str(requestor.name)) : undefined, 256);
  put('principalType', requestor ? `fhir:${str(codings(requestor.type)[0]?.code) ?? 'agent'}` : undefined, 64);
  put('patientId', patientId, 256);
  put('targetResourceType', target?.type, 128);
  put('targetResourceId', target?.id, 256);
  put('outcomeDescription', str(resource.outcomeDesc), 2000);
  put('correlationId', correlationId, 256);
  if (address && isIp(address)) body.sessionContext = { ipAddress: address };
  return body;
}

/** Our receipt's fields, as the nested extension in `meta`. */
export function receiptExtension(r: { leafIndex: number; leafHash: string; treeSize?: number; rootHash?: string; checkpoint?: string }): Json {
  const ext: Json[] = [
    { url: 'leafIndex', valueString: String(r.leafIndex) },
    { url: 'leafHash', valueBase64Binary: r.leafHash },
  ];
  if (r.treeSize !== undefined) ext.push({ url: 'treeSize', valueString: String(r.treeSize) });
  if (r.rootHash !== undefined) ext.push({ url: 'rootHash', valueBase64Binary: r.rootHash });
  if (r.checkpoint !== undefined) ext.push({ url: 'checkpoint', valueString: r.checkpoint });
  return { url: RECEIPT_EXTENSION_URL, extension: ext };
}

/** The `meta` the server assigns: version 1 (events never change), recordedAt, the receipt. */
function metaOf(e: Pick<EventRecord, 'recordedAt' | 'leafIndex' | 'leafHash'>, receipt?: { treeSize: number; rootHash: string; checkpoint: string }): Json {
  return { versionId: '1', lastUpdated: e.recordedAt, extension: [receiptExtension({ leafIndex: e.leafIndex, leafHash: e.leafHash, ...receipt })] };
}

/** How identifiers are shown to the caller (docs/privacy.md §4): as they are, or as pseudonyms. */
export interface IdentifierView {
  readonly pseudonymous: boolean;
  apply<T extends { patientId?: string | undefined; principalId?: string | undefined; targetResourceType?: string | undefined; targetResourceId?: string | undefined; action?: string | undefined; details?: unknown }>(record: T): T;
}

/**
 * The AuditEvent of a stored event: the resource as sent when it arrived as FHIR, else one built
 * from its fields. For a pseudonymous caller, the event's patient, principal and person target
 * are replaced by their pseudonyms wherever they appear in the resource (as a value, or as the id
 * of a `Type/id` reference).
 */
export function toAuditEvent(e: EventRecord, receipt?: { treeSize: number; rootHash: string; checkpoint: string }, view?: IdentifierView): AuditEventResource {
  const stored = obj(obj(e.details)?.[DETAILS_KEY]);
  if (stored && stored.resourceType === 'AuditEvent') {
    const { resourceType: _rt, meta: sentMeta, ...rest } = stored;
    const resource: AuditEventResource = { resourceType: 'AuditEvent', id: e.id, meta: { ...obj(sentMeta), ...metaOf(e, receipt) }, ...rest };
    if (!view?.pseudonymous) return resource;
    const shown = view.apply({ patientId: e.patientId, principalId: e.principalId, targetResourceType: e.targetResourceType, targetResourceId: e.targetResourceId });
    const replace = new Map<string, string>();
    for (const k of ['patientId', 'principalId', 'targetResourceId'] as const) {
      const from = e[k];
      const to = shown[k];
      if (from !== undefined && to !== undefined && from !== to) replace.set(from, to);
    }
    return replaceIdentifiers(resource, replace, SERVER_MEMBERS) as AuditEventResource;
  }
  const record = view?.pseudonymous ? view.apply(e) : e;
  return { resourceType: 'AuditEvent', id: e.id, meta: metaOf(e, receipt), ...fromFields(record) };
}

/** Members of a served AuditEvent that the server assigns: never rewritten. */
const SERVER_MEMBERS: ReadonlySet<string> = new Set(['meta', 'id']);

/** A verb of ours → the AuditEvent action code. */
export function actionCodeOf(action: string): 'C' | 'R' | 'U' | 'D' | 'E' {
  const verb = action.slice(action.lastIndexOf('.') + 1).toLowerCase();
  if (NATIVE_VERBS.C.includes(verb)) return 'C';
  if (NATIVE_VERBS.R.includes(verb)) return 'R';
  if (NATIVE_VERBS.U.includes(verb)) return 'U';
  if (NATIVE_VERBS.D.includes(verb)) return 'D';
  return 'E';
}

/** The last segment of our actions that maps to each AuditEvent action code (anything else is E). */
export const NATIVE_VERBS: Record<'C' | 'R' | 'U' | 'D', readonly string[]> = {
  C: ['create'],
  R: ['read', 'view', 'search', 'query', 'export', 'report'],
  U: ['update', 'write', 'patch'],
  D: ['delete', 'erase'],
};

/** Status → outcome code (an attempt has none). */
export const OUTCOME_OF_STATUS: Record<string, string> = { success: '0', failure: '8' };

function fromFields(e: EventRecord): Json {
  const out: Json = {
    type: { system: ACTION_SYSTEM, code: e.action ?? 'erased' },
    action: actionCodeOf(e.action ?? ''),
    recorded: e.timestamp ?? e.recordedAt,
  };
  const outcome = e.status ? OUTCOME_OF_STATUS[e.status] : undefined;
  if (outcome) out.outcome = outcome;
  if (e.outcomeDescription) out.outcomeDesc = e.outcomeDescription;
  const agent: Json = { requestor: true };
  if (e.principalType) agent.type = { text: e.principalType };
  agent.who = e.principalId ? { identifier: { value: e.principalId } } : { display: 'unknown (not recorded or erased)' };
  const ip = e.sessionContext?.ipAddress;
  if (ip) agent.network = { address: ip, type: '2' }; // 2 = IP address (network-type)
  out.agent = [agent];
  out.source = { observer: { display: 'SMEDREC Audit' } };
  const entity: Json[] = [];
  if (e.patientId) {
    entity.push({ what: { reference: `Patient/${e.patientId}` }, type: { system: SYSTEMS.entityType, code: '1', display: 'Person' }, role: { system: SYSTEMS.objectRole, code: '1', display: 'Patient' } });
  }
  if (e.targetResourceType || e.targetResourceId) {
    const ref = e.targetResourceType && e.targetResourceId && /^[A-Z][A-Za-z]+$/.test(e.targetResourceType) && /^[A-Za-z0-9\-.]{1,64}$/.test(e.targetResourceId);
    entity.push(ref ? { what: { reference: `${e.targetResourceType}/${e.targetResourceId}` } } : { name: [e.targetResourceType, e.targetResourceId].filter(Boolean).join('/') });
  }
  if (e.correlationId) entity.push({ what: { identifier: { value: e.correlationId } }, type: { system: SYSTEMS.balpEntityType, code: 'XrequestId' } });
  if (entity.length > 0) out.entity = entity;
  return out;
}
