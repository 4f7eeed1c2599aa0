/**
 * Identifiers inside free-form values (docs/privacy.md §4): the one place that finds a direct
 * identifier in a nested value, either as a whole string or as the id of a FHIR literal reference
 * (`Patient/123`, an absolute `…/Patient/123`, or `…/_history/2`: FHIR R4 §2.3.0 "Literal
 * references"), and replaces it. Pseudonymous reads (GDPR Art. 4(5), Art. 25(1)) use it for
 * `details`, the FHIR AuditEvent view for the stored resource. Pure, no I/O.
 */

/** The type and id of a FHIR literal reference (relative or absolute), or null. */
export function splitReference(reference: string): { type: string; id: string } | null {
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]+)?$/.exec(reference);
  return m ? { type: m[1]!, id: m[2]! } : null;
}

const NO_KEYS: ReadonlySet<string> = new Set();

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `value` with every string equal to a key of `replace`, or a reference `Type/key`, replaced by
 * the key's replacement (`Type/replacement` for a reference). Object members named in `keep` are
 * left as they are at every depth (the FHIR view keeps the server's `id` and `meta`). What holds
 * nothing to replace is returned as the same object, so `result !== value` tells whether the value
 * held an identifier.
 */
export function replaceIdentifiers(value: unknown, replace: ReadonlyMap<string, string>, keep: ReadonlySet<string> = NO_KEYS): unknown {
  if (replace.size === 0) return value;
  if (typeof value === 'string') {
    const whole = replace.get(value);
    if (whole !== undefined) return whole;
    const ref = splitReference(value);
    const id = ref ? replace.get(ref.id) : undefined;
    return ref && id !== undefined ? `${ref.type}/${id}` : value;
  }
  if (Array.isArray(value)) {
    const out = value.map((v) => replaceIdentifiers(v, replace, keep));
    return out.some((v, i) => v !== value[i]) ? out : value;
  }
  if (!isPlainObject(value)) return value;
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const r = keep.has(k) ? v : replaceIdentifiers(v, replace, keep);
    if (r !== v) changed = true;
    out[k] = r;
  }
  return changed ? out : value;
}
