/**
 * Producer signatures (docs/ledger-spec.md §9): a producer may sign its event
 * with its own Ed25519 key, so a verifier can tell that the event came from that producer and was
 * not made up by the server. The signed message is UTF-8(JCS(event)), RFC 8785, over the event
 * exactly as sent minus its `producerSignature` member. The server only accepts signed events
 * sent in committed form (`timestamp` in RFC 3339 UTC with milliseconds and `Z`, every defaulted
 * field explicit), so the message can be rebuilt from the committed field values alone.
 */
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';

import { decodeBase64Strict } from './encoding';
import { sha256 } from './hash';
import { canonicalize } from './jcs';

/** DER prefixes around raw Ed25519 keys: PKCS#8 private key (RFC 8410 §7), SPKI public key (§4). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** A producer key id: the first 8 bytes of SHA-256(raw public key), 16 lower-case hex digits. */
export function producerKeyId(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new RangeError('an Ed25519 public key is 32 bytes');
  return sha256(publicKey).subarray(0, 8).toString('hex');
}

/** The bytes a producer signs: UTF-8(JCS(event without `producerSignature`)). */
export function producerSigningMessage(event: Record<string, unknown>): Buffer {
  const { producerSignature: _omit, ...rest } = event;
  return Buffer.from(canonicalize(rest), 'utf8');
}

/** Signs an event with a 32-byte Ed25519 seed; returns the member to add as `producerSignature`. */
export function signProducerEvent(event: Record<string, unknown>, seed: Uint8Array, publicKey: Uint8Array): { keyId: string; signature: string } {
  if (seed.length !== 32) throw new RangeError('an Ed25519 seed is 32 bytes');
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return { keyId: producerKeyId(publicKey), signature: sign(null, producerSigningMessage(event), key).toString('base64') };
}

/** Whether `signature` (standard base64) is a valid Ed25519 signature of the event by `publicKey`. */
export function verifyProducerSignature(event: Record<string, unknown>, signature: string, publicKey: Uint8Array): boolean {
  const sig = decodeBase64Strict(signature);
  if (sig === null || sig.length !== 64 || publicKey.length !== 32) return false;
  let message: Buffer;
  try {
    message = producerSigningMessage(event);
  } catch {
    return false;
  }
  const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
  return verify(null, message, key, sig);
}
