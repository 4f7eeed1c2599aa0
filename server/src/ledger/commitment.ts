/**
 * Field commitments and leaf bytes (docs/ledger-spec.md §4, §5).
 *
 * Each event field is committed as `c = SHA-256(salt || UTF-8(JCS(value)))` with a fresh 16-byte
 * salt. The leaf holds only commitments, so erasing a field (deleting its value *and* its salt)
 * leaves every leaf hash, and so every proof, intact, while the salt keeps the erased value from
 * being recovered by guessing.
 */
import { randomBytes } from 'node:crypto';

import { decodeBase64Strict } from './encoding';
import { sha256 } from './hash';
import { canonicalize } from './jcs';

/** Length in bytes of a field salt. */
export const SALT_SIZE = 16;

/** A commitment: 64 lower-case hex digits. */
const COMMITMENT_RE = /^[0-9a-f]{64}$/;
/** RFC 3339 UTC with exactly millisecond precision and `Z`, e.g. `2026-11-27T13:48:11.123Z`. */
const RECORDED_AT_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Whether `s` has the form of a leaf's `recordedAt`: RFC 3339 UTC with exactly millisecond
 * precision and `Z` (`2026-11-27T13:48:11.123Z`). Checks the form only, not the calendar.
 */
export function isRecordedAt(s: unknown): s is string {
  return typeof s === 'string' && RECORDED_AT_RE.test(s);
}

/**
 * Commitment to one field value: lower-case hex SHA-256(salt || UTF-8(JCS(value))).
 * @throws RangeError if the salt is not 16 bytes; TypeError if the value is not JSON (see {@link canonicalize}).
 */
export function commitField(salt: Uint8Array, value: unknown): string {
  if (salt.length !== SALT_SIZE) throw new RangeError(`salt must be ${SALT_SIZE} bytes, got ${salt.length}`);
  return sha256(salt, Buffer.from(canonicalize(value), 'utf8')).toString('hex');
}

/** A fresh random 16-byte salt (node:crypto CSPRNG). */
export function newSalt(): Buffer {
  return randomBytes(SALT_SIZE);
}

/**
 * The `recordedAt` form used in leaves: RFC 3339 UTC, exactly millisecond precision, `Z`
 * (`2026-11-27T13:48:11.123Z`).
 * @throws RangeError for an invalid date or a year outside 0000–9999 (RFC 3339 has 4-digit years).
 */
export function formatRecordedAt(date: Date): string {
  const t = date.getTime();
  if (Number.isNaN(t)) throw new RangeError('recordedAt: invalid date');
  const s = date.toISOString(); // always UTC, milliseconds, 'Z'; years past 9999 get a '+' form
  if (!RECORDED_AT_RE.test(s)) throw new RangeError(`recordedAt: year out of RFC 3339 range: ${s}`);
  return s;
}

/** What a leaf commits to: the event's identity, its recording time and one commitment per field. */
export interface LeafContent {
  /** Organization id (the tenant; one log per organization). */
  org: string;
  /** Event id. */
  id: string;
  /** RFC 3339 UTC with millisecond precision and `Z`, as produced by {@link formatRecordedAt}. */
  recordedAt: string;
  /** Field name → commitment (64 lower-case hex), for every present field other than id, organizationId, recordedAt. */
  fields: Record<string, string>;
}

/**
 * The leaf bytes: UTF-8(JCS({"v":1,"org":…,"id":…,"recordedAt":…,"fields":{…}})) (docs/ledger-spec.md §5).
 * @throws TypeError if a member is missing, `recordedAt` is not in the millisecond `Z` form or a commitment is not 64 lower-case hex.
 */
export function leafBytes(content: LeafContent): Buffer {
  const { org, id, recordedAt, fields } = content;
  if (typeof org !== 'string' || typeof id !== 'string')
    throw new TypeError('leaf: org and id must be strings');
  if (typeof recordedAt !== 'string' || !RECORDED_AT_RE.test(recordedAt)) {
    throw new TypeError(
      `leaf: recordedAt must be RFC 3339 UTC with milliseconds and Z, got ${String(recordedAt)}`,
    );
  }
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
    throw new TypeError('leaf: fields must be an object of commitments');
  }
  for (const [name, c] of Object.entries(fields)) {
    if (typeof c !== 'string' || !COMMITMENT_RE.test(c)) {
      throw new TypeError(`leaf: fields[${JSON.stringify(name)}] must be 64 lower-case hex digits`);
    }
  }
  return Buffer.from(canonicalize({ v: 1, org, id, recordedAt, fields }), 'utf8');
}

/**
 * A field as stored and exported: its commitment, and, unless erased, its salt (standard base64)
 * and value. Erased = `salt: null` and no `value` member.
 */
export interface CommittedField {
  /** 64 lower-case hex digits, as in the leaf. */
  commitment: string;
  /** Standard base64 of the 16-byte salt, or null once erased. */
  salt: string | null;
  /** The field value; absent once erased. */
  value?: unknown;
}

/** Result of {@link verifyCommittedField}. */
export type CommittedFieldStatus = 'ok' | 'erased' | 'mismatch';

/**
 * Checks a stored field against its commitment: `'ok'` when salt and value reproduce it,
 * `'erased'` when both salt and value are gone (the commitment alone stays), and `'mismatch'`
 * otherwise, including a half-erased field, a malformed salt or a malformed commitment.
 * @throws TypeError if the value is present but is not JSON (see {@link canonicalize}).
 */
export function verifyCommittedField(f: CommittedField): CommittedFieldStatus {
  const hasValue = 'value' in f && f.value !== undefined;
  if (f.salt === null) return hasValue ? 'mismatch' : 'erased';
  if (!hasValue || typeof f.commitment !== 'string' || !COMMITMENT_RE.test(f.commitment)) return 'mismatch';
  const salt = decodeBase64Strict(f.salt);
  if (salt === null || salt.length !== SALT_SIZE) return 'mismatch';
  return commitField(salt, f.value) === f.commitment ? 'ok' : 'mismatch';
}
