/**
 * Keyed hashes and pseudonyms (docs/privacy.md "Pseudonyms"). Pure functions, no I/O: the keyed
 * hash that stands for a subject in the log (`privacy.erase`, legal holds) and the stable
 * pseudonym (`pseu_…`) that callers without `privacy.pseudonyms:resolve` see instead of a direct
 * identifier. Both are HMAC-SHA256 with the organization's privacy key (per version), with
 * distinct domain-separation prefixes so that one never equals the other.
 *
 * Other read models (reports, FHIR, analytics) apply {@link pseudonymizeRecord} to every record
 * they return to such a caller, with the {@link Pseudonymizer} the privacy service hands out.
 */
import { createHmac } from 'node:crypto';
import { replaceIdentifiers } from './identifiers';

/** Prefix of every pseudonym. */
export const PSEUDONYM_PREFIX = 'pseu_';

/** Whether `value` has the form of a pseudonym (`pseu_` + 22 base64url characters). */
export function isPseudonym(value: string): boolean {
  return /^pseu_[A-Za-z0-9_-]{22}$/.test(value);
}

/** The keyed hash of a subject identifier: hex HMAC-SHA256(secret, "smedrec-subject" || 0x00 || value). */
export function subjectHash(secret: Buffer, value: string): string {
  return createHmac('sha256', secret).update('smedrec-subject\0').update(value, 'utf8').digest('hex');
}

/**
 * The pseudonym of an identifier: `pseu_` + base64url of the first 128 bits of
 * HMAC-SHA256(secret, "smedrec-pseudonym" || 0x00 || value). Stable for one key version; the same
 * value has the same pseudonym whichever field it appears in, so a person who is both patient and
 * principal stays linkable without being identified.
 */
export function pseudonymOf(secret: Buffer, value: string): string {
  const mac = createHmac('sha256', secret).update('smedrec-pseudonym\0').update(value, 'utf8').digest();
  return PSEUDONYM_PREFIX + mac.subarray(0, 16).toString('base64url');
}

/** Maps an identifier to its pseudonym (and may remember the pair so that it can be resolved). */
export type Pseudonymizer = (value: string) => string;

/** The record fields a {@link pseudonymizeRecord} call replaces. */
export interface IdentifyingFields {
  patientId?: string | undefined;
  principalId?: string | undefined;
  targetResourceType?: string | undefined;
  targetResourceId?: string | undefined;
  action?: string | undefined;
  details?: unknown;
}

/** Resource types whose id is itself a direct identifier of a person. */
const PERSON_RESOURCES = new Set(['Patient', 'Person', 'RelatedPerson', 'Practitioner', 'User']);

/**
 * The record with its direct identifiers replaced by pseudonyms: `patientId`, `principalId`, a
 * `targetResourceId` that names a person (equal to the patient or principal, or of a person
 * resource type), the patient and principal filters that the log's own read events
 * (`audit.log.*`) record in `details.input`, and inside `details` every string equal to one of
 * those identifiers or a FHIR `Type/id` reference to one (a FHIR-imported event keeps the
 * patient's reference in `details.fhir`; GDPR Art. 4(5): the pseudonymized record must not carry
 * the identifier elsewhere). Every other field is returned as is. Pure.
 */
export function pseudonymizeRecord<T extends IdentifyingFields>(record: T, pseudonym: Pseudonymizer): T {
  const out: T = { ...record };
  const replaced = identifierPseudonyms(record, pseudonym);
  for (const k of ['patientId', 'principalId', 'targetResourceId'] as const) {
    const v = record[k];
    if (typeof v === 'string' && replaced.has(v)) out[k] = replaced.get(v)!;
  }
  if (typeof record.action === 'string' && record.action.startsWith('audit.log.'))
    out.details = pseudonymizeReadInput(record.details, pseudonym);
  if (out.details !== undefined) out.details = replaceIdentifiers(out.details, replaced);
  return out;
}

/** The record's direct identifiers, each mapped to its pseudonym (see {@link pseudonymizeRecord}). */
function identifierPseudonyms(record: IdentifyingFields, pseudonym: Pseudonymizer): Map<string, string> {
  const replaced = new Map<string, string>();
  const add = (v: string) => replaced.has(v) || replaced.set(v, pseudonym(v));
  if (typeof record.patientId === 'string') add(record.patientId);
  if (typeof record.principalId === 'string') add(record.principalId);
  const target = record.targetResourceId;
  if (
    typeof target === 'string' &&
    (target === record.patientId ||
      target === record.principalId ||
      (record.targetResourceType !== undefined && PERSON_RESOURCES.has(record.targetResourceType)))
  )
    add(target);
  return replaced;
}

/** `details.input.{patientIds,principalIds,patientId,principalId}` of a recorded read, pseudonymized. */
function pseudonymizeReadInput(details: unknown, pseudonym: Pseudonymizer): unknown {
  if (typeof details !== 'object' || details === null || Array.isArray(details)) return details;
  const d = details as Record<string, unknown>;
  const input = d.input;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return details;
  const i: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  for (const k of ['patientIds', 'principalIds']) {
    const list = i[k];
    if (Array.isArray(list))
      i[k] = (list as unknown[]).map((v) => (typeof v === 'string' && !isPseudonym(v) ? pseudonym(v) : v));
  }
  for (const k of ['patientId', 'principalId', 'subject']) {
    const v = i[k];
    if (typeof v === 'string' && !isPseudonym(v)) i[k] = pseudonym(v);
  }
  return { ...d, input: i };
}

/** A committed field of an export bundle or a ledger leaf, as a caller may receive it. */
export interface ExportedField {
  commitment: string;
  salt: string | null;
  value?: unknown;
  /** Set when the value is withheld from this caller: the value's pseudonym. */
  pseudonym?: string;
}

/**
 * The committed fields of one exported event with the direct identifiers withheld: the value and
 * salt of `patientId`, `principalId` and a `targetResourceId` naming a person are left out (a
 * verifier reports them as erased; the leaf hash still verifies from the commitment) and the
 * value's pseudonym is given beside the commitment. Pure.
 */
export function withholdIdentifiers<F extends ExportedField>(
  fields: Record<string, F>,
  pseudonym: Pseudonymizer,
): Record<string, F | ExportedField> {
  const valueOf = (name: string): unknown => fields[name]?.value;
  const record: IdentifyingFields = {};
  for (const k of ['patientId', 'principalId', 'targetResourceId', 'targetResourceType', 'action'] as const) {
    const v = valueOf(k);
    if (typeof v === 'string') record[k] = v;
  }
  const out: Record<string, F | ExportedField> = { ...fields };
  const shown = pseudonymizeRecord(record, pseudonym);
  for (const k of ['patientId', 'principalId', 'targetResourceId'] as const) {
    const f = fields[k];
    if (!f || shown[k] === record[k] || f.salt === null) continue;
    out[k] = { commitment: f.commitment, salt: null, pseudonym: shown[k]! };
  }
  // A recorded read's details name the patients it filtered by, and other details may hold an
  // identifier (a FHIR reference): withheld whole, since a committed value cannot be rewritten.
  const details = fields.details;
  if (
    details &&
    details.salt !== null &&
    ((typeof record.action === 'string' && record.action.startsWith('audit.log.')) ||
      replaceIdentifiers(details.value, identifierPseudonyms(record, pseudonym)) !== details.value)
  ) {
    out.details = { commitment: details.commitment, salt: null };
  }
  return out;
}
