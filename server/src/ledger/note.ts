/**
 * C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys in the encodings of Go's
 * golang.org/x/mod/sumdb/note, and tlog checkpoints (c2sp.org/tlog-checkpoint).
 *
 * A signed note is a text ending in a newline, a blank line, then one line per signature:
 *
 *     <text, ending in \n>
 *     \n
 *     — <key name> <base64(4-byte key id || signature)>\n
 *
 * The signature is Ed25519 (RFC 8032) over the UTF-8 bytes of the text (with its final newline,
 * without the blank line). Key id = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4].
 *
 * Key strings (Go note encodings):
 *   verifier key  `<name>+<8 hex key id>+<base64(0x01 || 32-byte public key)>`
 *   signer key    `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || 32-byte seed)>`
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

import { decodeBase64Strict } from './encoding';
import {
  CheckpointFormatError,
  InvalidSignatureError,
  KeyFormatError,
  NoteFormatError,
  UnverifiedNoteError,
} from './errors';
import { HASH_SIZE, sha256 } from './hash';

/** Signature type byte of Ed25519 in signed notes (c2sp.org/signed-note, "Signature types"). */
export const ALG_ED25519 = 0x01;

/** Most signatures {@link openNote} reads before rejecting a note (the spec asks for at least 16; Go reads 100). */
export const MAX_NOTE_SIGNATURES = 100;

/** A parsed signer key: signs note texts. Keep it secret. */
export interface Signer {
  /** Key name, as on signature lines. */
  name: string;
  /** 4-byte key id. */
  keyId: Buffer;
  /** Ed25519 signature (64 bytes) of `msg`. */
  sign(msg: Uint8Array): Buffer;
  /** The matching verifier key string, to publish. */
  verifierKey: string;
  /** The 32-byte Ed25519 public key. */
  publicKey: Buffer;
}

/** A parsed verifier key: checks signatures from one named key. */
export interface Verifier {
  /** Key name, as on signature lines. */
  name: string;
  /** 4-byte key id. */
  keyId: Buffer;
  /** Whether `sig` is a valid Ed25519 signature of `msg` by this key. */
  verify(msg: Uint8Array, sig: Uint8Array): boolean;
  /** The verifier key string this was parsed from (canonical form). */
  verifierKey: string;
  /** The 32-byte Ed25519 public key. */
  publicKey: Buffer;
}

/** One signature line of an opened note. */
export interface NoteSignature {
  /** Key name on the line. */
  name: string;
  /** Key id on the line, 8 lower-case hex digits. */
  keyId: string;
  /** True when the key is one of the known verifiers and the signature verified. */
  verified: boolean;
}

/** Result of {@link openNote}: the verified text and every (distinct) signature line. */
export interface OpenedNote {
  /** The note text, ending in a newline. */
  text: string;
  /** Signatures in note order; unknown keys have `verified: false`. */
  signatures: NoteSignature[];
}

/** The body of a tlog checkpoint (c2sp.org/tlog-checkpoint). */
export interface Checkpoint {
  /** Log identity: `<AUDIT_LOG_ORIGIN>/<organizationId>` for our logs. */
  origin: string;
  /** Tree size (number of leaves). */
  size: number;
  /** RFC 9162 root hash of the tree at `size` (32 bytes). */
  rootHash: Buffer;
  /** Opaque extension lines after the root hash, if any (we emit none). */
  extensions?: string[];
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/** DER prefixes wrapping a raw Ed25519 key: PKCS#8 private key (RFC 8410 §7) and SPKI public key (§4). */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_KEY_SIZE = 32;
const ED25519_SIGNATURE_SIZE = 64;

/**
 * Whether `name` may be a key name: non-empty, no Unicode white space, no `+`
 * (c2sp.org/signed-note "Format"; Go's isValidName uses unicode.IsSpace, i.e. White_Space).
 */
export function isValidKeyName(name: string): boolean {
  return typeof name === 'string' && name !== '' && !/[\p{White_Space}+]|\p{Cs}/u.test(name);
}

/** Key id = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4] (c2sp.org/signed-note "Ed25519 signatures"). */
export function ed25519KeyId(name: string, publicKey: Uint8Array): Buffer {
  return sha256(Buffer.from(name, 'utf8'), Uint8Array.of(0x0a, ALG_ED25519), publicKey).subarray(0, 4);
}

/** The verifier key string `<name>+<hex key id>+<base64(0x01 || public key)>` for a 32-byte Ed25519 public key. */
export function ed25519VerifierKey(name: string, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) throw new RangeError(`invalid key name ${JSON.stringify(name)}`);
  if (publicKey.length !== ED25519_KEY_SIZE) throw new RangeError(`Ed25519 public key must be 32 bytes`);
  const encoded = Buffer.concat([Uint8Array.of(ALG_ED25519), publicKey]).toString('base64');
  return `${name}+${ed25519KeyId(name, publicKey).toString('hex')}+${encoded}`;
}

/** Generates a fresh Ed25519 key pair for `name`, in the Go note encodings. */
export function generateSignerKey(name: string): { signerKey: string; verifierKey: string } {
  if (!isValidKeyName(name)) throw new RangeError(`invalid key name ${JSON.stringify(name)}`);
  const seed = randomBytes(ED25519_KEY_SIZE);
  const { publicKey } = keysFromSeed(seed);
  const keyId = ed25519KeyId(name, publicKey).toString('hex');
  const encodedSeed = Buffer.concat([Uint8Array.of(ALG_ED25519), seed]).toString('base64');
  return {
    signerKey: `PRIVATE+KEY+${name}+${keyId}+${encodedSeed}`,
    verifierKey: ed25519VerifierKey(name, publicKey),
  };
}

/**
 * Parses a signer key `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`, checking that the
 * key id matches the derived public key.
 * @throws KeyFormatError if it is malformed, not Ed25519 or its key id does not match.
 */
export function parseSignerKey(s: string): Signer {
  const [priv, key, ...fields] = chopKey(s, 5);
  if (priv !== 'PRIVATE' || key !== 'KEY')
    throw new KeyFormatError('signer key must start with PRIVATE+KEY+');
  const { name, id, material: seed } = decodeKeyFields(fields, 'signer');
  const { privateKey, publicKey } = keysFromSeed(seed);
  const keyId = checkKeyId(name, id, publicKey);
  const verifierKey = ed25519VerifierKey(name, publicKey);
  return {
    name,
    keyId,
    verifierKey,
    publicKey,
    sign: (msg) => sign(null, msg, privateKey),
  };
}

/**
 * Parses a verifier key `<name>+<hex key id>+<base64(0x01 || public key)>`.
 * @throws KeyFormatError if it is malformed, not Ed25519 or its key id does not match.
 */
export function parseVerifierKey(s: string): Verifier {
  const { name, id, material: publicKey } = decodeKeyFields(chopKey(s, 3), 'verifier');
  const keyId = checkKeyId(name, id, publicKey);
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({
      key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]),
      format: 'der',
      type: 'spki',
    });
  } catch {
    throw new KeyFormatError('verifier key holds no valid Ed25519 public key');
  }
  return {
    name,
    keyId,
    verifierKey: ed25519VerifierKey(name, publicKey),
    publicKey,
    verify: (msg, sig) => sig.length === ED25519_SIGNATURE_SIZE && verify(null, msg, keyObject, sig),
  };
}

/** Splits at the first `count − 1` plus signs (base64 may itself contain `+`), as Go's note.chop does. */
function chopKey(s: string, count: number): string[] {
  if (typeof s !== 'string') throw new KeyFormatError('key must be a string');
  const parts: string[] = [];
  let rest = s;
  for (let i = 0; i < count - 1; i++) {
    const at = rest.indexOf('+');
    if (at < 0) throw new KeyFormatError(`key has ${i + 1} of ${count} '+'-separated fields`);
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  parts.push(rest);
  return parts;
}

/** Validates `[name, hex key id, base64(0x01 || 32 bytes)]` and decodes the 32 bytes of key material. */
function decodeKeyFields(fields: string[], kind: string): { name: string; id: string; material: Buffer } {
  const [name, id, encoded] = fields;
  if (name === undefined || !isValidKeyName(name))
    throw new KeyFormatError(`${kind} key has an invalid key name`);
  if (id === undefined || !/^[0-9a-fA-F]{8}$/.test(id))
    throw new KeyFormatError(`${kind} key id must be 8 hex digits`);
  const raw = encoded === undefined ? null : decodeBase64Strict(encoded);
  if (raw === null || raw.length === 0) throw new KeyFormatError(`${kind} key material is not base64`);
  if (raw[0] !== ALG_ED25519)
    throw new KeyFormatError(`${kind} key has unknown signature type 0x${raw[0]!.toString(16)}`);
  if (raw.length !== 1 + ED25519_KEY_SIZE)
    throw new KeyFormatError(`${kind} key must hold 32 bytes of Ed25519 key`);
  return { name, id, material: raw.subarray(1) };
}

function checkKeyId(name: string, id: string, publicKey: Buffer): Buffer {
  const keyId = ed25519KeyId(name, publicKey);
  if (keyId.toString('hex') !== id.toLowerCase()) {
    throw new KeyFormatError(`key id ${id} does not match the key (expected ${keyId.toString('hex')})`);
  }
  return keyId;
}

function keysFromSeed(seed: Buffer): { privateKey: KeyObject; publicKey: Buffer } {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: spki.subarray(SPKI_ED25519_PREFIX.length) };
}

// ---------------------------------------------------------------------------------------------
// Notes
// ---------------------------------------------------------------------------------------------

/** Whether `s` holds an ASCII control character (below U+0020), other than newline if `newlineAllowed`. */
function hasControl(s: string, newlineAllowed: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && !(newlineAllowed && c === 0x0a)) return true;
  }
  return false;
}

/** Rejects what c2sp.org/signed-note forbids anywhere in a note: ASCII controls other than newline, lone surrogates. */
function checkNoteCharacters(s: string): void {
  if (hasControl(s, true))
    throw new NoteFormatError('note contains an ASCII control character other than newline');
  if (/\p{Cs}/u.test(s)) throw new NoteFormatError('note is not valid Unicode (lone surrogate)');
}

/**
 * Signs a note text: returns `text + "\n" + "— <name> <base64(key id || signature)>\n"` for each
 * signer, in order (c2sp.org/signed-note "Format").
 * @throws NoteFormatError if the text does not end in a newline or holds forbidden characters.
 */
export function signNote(text: string, signers: Signer[]): string {
  if (typeof text !== 'string' || !text.endsWith('\n'))
    throw new NoteFormatError('note text must end with a newline');
  checkNoteCharacters(text);
  if (signers.length === 0) throw new RangeError('signNote needs at least one signer');
  const msg = Buffer.from(text, 'utf8');
  const lines = signers.map((s) => {
    if (!isValidKeyName(s.name) || s.keyId.length !== 4) throw new RangeError(`invalid signer ${s.name}`);
    return `— ${s.name} ${Buffer.concat([s.keyId, s.sign(msg)]).toString('base64')}\n`;
  });
  return `${text}\n${lines.join('')}`;
}

/**
 * Opens a signed note: parses it strictly, verifies every signature from a known key and returns
 * the text. Unknown keys are ignored (listed with `verified: false`), as the spec requires;
 * repeated lines are listed once.
 * @param note the note as a string, or as bytes (then they must be valid UTF-8).
 * @throws NoteFormatError if malformed; InvalidSignatureError if a signature from a known key
 *   (same name and key id) fails; UnverifiedNoteError if no known key signed it.
 */
export function openNote(note: string | Uint8Array, verifiers: Verifier[]): OpenedNote {
  const s = typeof note === 'string' ? note : decodeUtf8(note);
  checkNoteCharacters(s);

  // The text is separated from the signatures by the last empty line; the text keeps its final newline.
  const split = s.lastIndexOf('\n\n');
  if (split < 0) throw new NoteFormatError('note has no blank line before its signatures');
  const text = s.slice(0, split + 1);
  const block = s.slice(split + 2);
  if (block === '' || !block.endsWith('\n'))
    throw new NoteFormatError('note signature block must end with a newline');

  const known = new Map<string, Verifier>();
  for (const v of verifiers) {
    const k = `${v.name}+${v.keyId.toString('hex')}`;
    const other = known.get(k);
    if (other !== undefined && !other.publicKey.equals(v.publicKey))
      throw new RangeError(`ambiguous key ${k}`);
    known.set(k, v);
  }

  const msg = Buffer.from(text, 'utf8');
  const signatures: NoteSignature[] = [];
  const seen = new Set<string>();
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES)
    throw new NoteFormatError(`note has more than ${MAX_NOTE_SIGNATURES} signatures`);
  for (const line of lines) {
    if (!line.startsWith('— '))
      throw new NoteFormatError('signature line must start with an em dash and a space');
    const rest = line.slice(2);
    const space = rest.indexOf(' ');
    const name = space < 0 ? rest : rest.slice(0, space);
    const encoded = space < 0 ? '' : rest.slice(space + 1);
    const raw = decodeBase64Strict(encoded);
    if (!isValidKeyName(name) || encoded === '' || raw === null || raw.length < 5) {
      throw new NoteFormatError(`malformed signature line for ${JSON.stringify(name)}`);
    }
    const keyId = raw.subarray(0, 4).toString('hex');
    const key = `${name}+${keyId}`;
    const verifier = known.get(key);
    if (verifier === undefined) {
      if (seen.has(line)) continue; // drop repeated identical unknown signatures
      seen.add(line);
      signatures.push({ name, keyId, verified: false });
      continue;
    }
    if (seen.has(key)) continue; // one verdict per known key
    seen.add(key);
    if (!verifier.verify(msg, raw.subarray(4))) throw new InvalidSignatureError(name, keyId);
    signatures.push({ name, keyId, verified: true });
  }
  if (!signatures.some((sig) => sig.verified)) {
    throw new UnverifiedNoteError(
      `note has no verifiable signature from a known key (signed by: ${signatures.map((x) => `${x.name}+${x.keyId}`).join(', ')})`,
    );
  }
  return { text, signatures };
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new NoteFormatError('note is not valid UTF-8');
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------

/**
 * The checkpoint note text `<origin>\n<size>\n<base64 root hash>\n` (c2sp.org/tlog-checkpoint "Note text").
 * @throws RangeError for an empty or multi-line origin, a bad size or a root hash that is not 32 bytes.
 */
export function formatCheckpoint({ origin, size, rootHash }: Checkpoint): string {
  if (typeof origin !== 'string' || origin === '' || hasControl(origin, false) || /\p{Cs}/u.test(origin)) {
    throw new RangeError('checkpoint origin must be a non-empty single line');
  }
  if (!Number.isSafeInteger(size) || size < 0)
    throw new RangeError(`checkpoint size must be a safe non-negative integer, got ${size}`);
  if (!(rootHash instanceof Uint8Array) || rootHash.length !== HASH_SIZE) {
    throw new RangeError(`checkpoint root hash must be ${HASH_SIZE} bytes`);
  }
  return `${origin}\n${size}\n${Buffer.from(rootHash).toString('base64')}\n`;
}

/**
 * Parses a checkpoint note text strictly: non-empty origin, decimal size without leading zeros
 * (at most 2^53 − 1), standard base64 of a 32-byte root hash, then optional non-empty extension lines.
 * @throws CheckpointFormatError if it is not a checkpoint.
 */
export function parseCheckpoint(body: string): Checkpoint {
  if (typeof body !== 'string' || !body.endsWith('\n'))
    throw new CheckpointFormatError('checkpoint must end with a newline');
  if (hasControl(body, true) || /\p{Cs}/u.test(body))
    throw new CheckpointFormatError('checkpoint contains a control character');
  const [origin, sizeLine, rootLine, ...extensions] = body.slice(0, -1).split('\n');
  if (origin === undefined || origin === '')
    throw new CheckpointFormatError('checkpoint origin line is empty');
  if (sizeLine === undefined || !/^(0|[1-9][0-9]*)$/.test(sizeLine)) {
    throw new CheckpointFormatError('checkpoint size must be decimal without leading zeros');
  }
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size))
    throw new CheckpointFormatError(`checkpoint size ${sizeLine} exceeds 2^53 - 1`);
  const rootHash = rootLine === undefined ? null : decodeBase64Strict(rootLine);
  if (rootHash === null || rootHash.length !== HASH_SIZE) {
    throw new CheckpointFormatError('checkpoint root hash must be standard base64 of 32 bytes');
  }
  if (extensions.some((line) => line === ''))
    throw new CheckpointFormatError('checkpoint extension lines must be non-empty');
  return { origin, size, rootHash, extensions };
}

/** Formats and signs a checkpoint: a signed note ready to hand out. */
export function signCheckpoint(checkpoint: Checkpoint, signers: Signer[]): string {
  return signNote(formatCheckpoint(checkpoint), signers);
}

/**
 * Opens a signed checkpoint note ({@link openNote}) and parses its text ({@link parseCheckpoint}).
 * @throws the errors of both.
 */
export function openCheckpoint(
  note: string | Uint8Array,
  verifiers: Verifier[],
): { checkpoint: Checkpoint; signatures: NoteSignature[] } {
  const opened = openNote(note, verifiers);
  return { checkpoint: parseCheckpoint(opened.text), signatures: opened.signatures };
}
