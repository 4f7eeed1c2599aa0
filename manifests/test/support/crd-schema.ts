import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';

/**
 * Offline validation of custom resources against the operators' own CRD schemas
 * (test/fixtures/crds, see its README for sources and licenses). A structural schema makes the
 * API server prune unknown fields silently; here every object schema that lists its properties
 * and does not preserve unknown fields gets `additionalProperties: false`, so a misspelt field
 * is an error, as with `kubectl apply --validate=strict`.
 */
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'crds');

type Schema = Record<string, any>;

function strict(schema: any): any {
  if (Array.isArray(schema)) return schema.map(strict);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Schema = {};
  for (const [k, v] of Object.entries(schema)) {
    // `properties` maps names to schemas: recurse into each value, never treat a name as a keyword.
    if (k === 'properties') out[k] = Object.fromEntries(Object.entries(v as Schema).map(([name, s]) => [name, strict(s)]));
    else out[k] = strict(v);
  }
  if (out.type === 'object' && out.properties && out['x-kubernetes-preserve-unknown-fields'] !== true && out.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  return out;
}

// The CRDs carry Go (RE2) patterns; the only construct JavaScript lacks is the inline `(?i)` flag.
const regExp = (pattern: string, flags: string): RegExp =>
  pattern.includes('(?i)') ? new RegExp(pattern.replaceAll('(?i)', ''), `${flags}i`) : new RegExp(pattern, flags);
regExp.code = 'new RegExp';
const ajv = new Ajv({ strict: false, allErrors: true, code: { regExp } });
// Kubernetes formats the API server checks; the ones not listed are accepted as plain strings.
ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
for (const f of ['date-time', 'byte', 'duration', 'uri', 'email', 'hostname', 'ipv4', 'ipv6', 'double', 'float', 'password']) ajv.addFormat(f, true);

const compiled = new Map<string, ReturnType<typeof ajv.compile>>();

/** Names of the fixture files: `monitoring.coreos.com_alertmanagerconfigs` and so on. */
export function crdFixtureNames(): string[] {
  return fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, ''));
}

function validatorFor(apiVersion: string, kind: string): ReturnType<typeof ajv.compile> | undefined {
  const key = `${apiVersion}/${kind}`;
  const hit = compiled.get(key);
  if (hit) return hit;
  const [group, version] = apiVersion.split('/');
  for (const name of crdFixtureNames()) {
    const crd = JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8'));
    if (crd.group === group && crd.kind === kind && crd.versions[version!]) {
      const v = ajv.compile(strict(crd.versions[version!]));
      compiled.set(key, v);
      return v;
    }
  }
  return undefined;
}

/** True when a fixture holds the CRD schema of `apiVersion`/`kind`. */
export function hasCrdSchema(apiVersion: string, kind: string): boolean {
  return validatorFor(apiVersion, kind) !== undefined;
}

/** Errors of `object` against its CRD schema (`path message` each); throws when no fixture has the kind. */
export function crdSchemaErrors(object: Schema): string[] {
  const validate = validatorFor(String(object.apiVersion), String(object.kind));
  if (!validate) throw new Error(`no CRD schema fixture for ${String(object.apiVersion)}/${String(object.kind)}`);
  if (validate(object)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}${e.params && 'additionalProperty' in e.params ? ` '${String(e.params.additionalProperty)}'` : ''}`);
}
