/**
 * Fast paths of the verifier's hot loop. A bundle of a million events means ~15 million field
 * commitments: these are the same computations as `verifyCommittedField` and
 * `leafHash(leafBytes(…))` (commitment.ts, the reference an auditor reads), with fast paths for the
 * common shapes and a fall-back to the reference code for everything else. The tests check them
 * against the reference on random input (server/test/verify/bundle-verifier.test.ts).
 */
import { hash as oneShotHash } from 'node:crypto';
import { SALT_SIZE, isRecordedAt, leafBytes, type CommittedField, type CommittedFieldStatus } from './commitment';
import { leafHash } from './hash';
import { canonicalize } from './jcs';

/** Canonical standard base64 of exactly 16 bytes: 21 free characters, one with 4 zero low bits, `==`. */
const SALT_B64_RE = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
const SURROGATE_RE = /[\uD800-\uDFFF]/;

/**
 * RFC 8785 of a value. A string without surrogates serializes exactly as JSON.stringify does it
 * (RFC 8785 §3.2.2.2 adopts the ECMAScript escaping), so that shortcut is exact; anything else
 * (objects, numbers, strings with surrogate pairs or lone surrogates) goes through canonicalize.
 */
function jcs(value: unknown): string {
  if (typeof value === 'string' && !SURROGATE_RE.test(value)) return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) {
    try {
      const out = jcsParsed(value);
      if (out !== null) return out;
    } catch {
      // too deep for recursion: the iterative reference handles it
    }
  }
  return canonicalize(value);
}

/**
 * RFC 8785 for what JSON.parse returns (no cycles, no undefined, only plain objects and arrays),
 * recursively: members sorted by UTF-16 code units (§3.2.3, the default sort), numbers by
 * ECMAScript Number::toString (§3.2.2.3, which `String` is; JSON.parse never yields NaN or ±∞),
 * strings as JSON.stringify writes them (§3.2.2.2). Returns null, to fall back on the reference
 * code, for anything else: a surrogate anywhere, a non-plain object, a non-finite number.
 */
function jcsParsed(value: unknown): string | null {
  switch (typeof value) {
    case 'string':
      return SURROGATE_RE.test(value) ? null : JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : null;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        const parts: string[] = [];
        for (const item of value as unknown[]) {
          const p = jcsParsed(item);
          if (p === null) return null;
          parts.push(p);
        }
        return `[${parts.join(',')}]`;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype) return null;
      const obj = value as Record<string, unknown>;
      const parts: string[] = [];
      for (const key of Object.keys(obj).sort()) {
        const v = obj[key];
        if (v === undefined) continue; // as canonicalize: absent members are omitted
        if (SURROGATE_RE.test(key)) return null;
        const p = jcsParsed(v);
        if (p === null) return null;
        parts.push(`${JSON.stringify(key)}:${p}`);
      }
      return `{${parts.join(',')}}`;
    }
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      return null;
  }
}

/** Scratch space for salt || JCS(value), so hashing a field allocates nothing on the way. */
let scratch = Buffer.alloc(64 * 1024);

/**
 * Same value and errors as `commitField(salt, value)`: lower-case hex SHA-256(salt || UTF-8(JCS(value))),
 * hashed in one call from a reused buffer (no intermediate Buffer per field).
 * @throws RangeError if the salt is not 16 bytes; TypeError if the value is not JSON.
 */
export function commitFieldFast(salt: Uint8Array, value: unknown): string {
  if (salt.length !== SALT_SIZE) throw new RangeError(`salt must be ${SALT_SIZE} bytes, got ${salt.length}`);
  const text = jcs(value);
  const need = SALT_SIZE + text.length * 3; // UTF-8 needs at most 3 bytes per UTF-16 code unit
  if (need > scratch.length) scratch = Buffer.alloc(Math.max(need, scratch.length * 2));
  scratch.set(salt, 0);
  const n = scratch.write(text, SALT_SIZE, 'utf8');
  return oneShotHash('sha256', scratch.subarray(0, SALT_SIZE + n), 'hex');
}

/** Same verdict as `verifyCommittedField`: 'ok', 'erased' (no salt, no value) or 'mismatch'; never throws. */
export function committedFieldStatus(f: CommittedField): CommittedFieldStatus {
  const hasValue = 'value' in f && f.value !== undefined;
  if (f.salt === null) return hasValue ? 'mismatch' : 'erased';
  // A malformed commitment needs no separate check: it can never equal a lower-case hex digest.
  if (!hasValue || typeof f.commitment !== 'string') return 'mismatch';
  if (typeof f.salt !== 'string' || !SALT_B64_RE.test(f.salt)) return 'mismatch';
  let text: string;
  try {
    text = jcs(f.value);
  } catch {
    return 'mismatch'; // not JSON (NaN, a lone surrogate…): cannot be what was committed
  }
  // c = SHA-256(salt || UTF-8(JCS(value))) (docs/ledger-spec.md §4).
  const need = SALT_SIZE + text.length * 3; // UTF-8 needs at most 3 bytes per UTF-16 code unit
  if (need > scratch.length) scratch = Buffer.alloc(Math.max(need, scratch.length * 2));
  scratch.write(f.salt, 0, 'base64');
  const n = scratch.write(text, SALT_SIZE, 'utf8');
  const digest = oneShotHash('sha256', scratch.subarray(0, SALT_SIZE + n), 'hex');
  return digest === f.commitment ? 'ok' : 'mismatch';
}

/**
 * Whether `c` is 64 lower-case hex digits (what `^[0-9a-f]{64}$` tests; a character loop, because
 * that pattern showed in profiles on the hex strings crypto returns).
 */
function isCommitment(c: unknown): boolean {
  if (typeof c !== 'string' || c.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const u = c.charCodeAt(i);
    if (!((u >= 0x30 && u <= 0x39) || (u >= 0x61 && u <= 0x66))) return false;
  }
  return true;
}

/**
 * leafHash(leafBytes({org, id, recordedAt, fields})). JCS orders members by UTF-16 code units:
 * "fields" < "id" < "org" < "recordedAt" < "v", and field names by the default sort. Inputs the
 * fast path does not cover exactly (surrogates, malformed values) go through the reference code,
 * which throws for what is not a valid leaf.
 *
 * `hexChecked`: the caller already knows every commitment is 64 lower-case hex digits (a
 * commitment equal to a digest just computed is), so they are not scanned again.
 */
export function rebuildLeafHash(org: string, id: string, recordedAt: string, fields: Record<string, string>, hexChecked = false): Buffer {
  const simple = (s: unknown): s is string => typeof s === 'string' && !SURROGATE_RE.test(s);
  const names = Object.keys(fields).sort();
  if (
    !simple(org) ||
    !simple(id) ||
    typeof recordedAt !== 'string' ||
    !isRecordedAt(recordedAt) ||
    !names.every(simple) ||
    (!hexChecked && !names.every((n) => isCommitment(fields[n])))
  ) {
    return leafHash(leafBytes({ org, id, recordedAt, fields }));
  }
  // SHA-256(0x00 || leaf text) (RFC 9162 leaf prefix): the NUL character is the 0x00 byte in UTF-8.
  let text = '\0{"fields":{';
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!;
    text += (i === 0 ? '' : ',') + JSON.stringify(n) + ':"' + fields[n]! + '"';
  }
  text += '},"id":' + JSON.stringify(id) + ',"org":' + JSON.stringify(org) + ',"recordedAt":"' + recordedAt + '","v":1}';
  return oneShotHash('sha256', text, 'buffer');
}
