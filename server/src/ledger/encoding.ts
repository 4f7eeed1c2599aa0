/** Strict decoding helpers shared by the ledger's parsers. */

/**
 * Decodes standard, padded base64 (RFC 4648 §4), returning null unless `s` is the canonical
 * encoding of its bytes (Node's decoder silently skips junk, so the round trip is checked).
 */
export function decodeBase64Strict(s: string): Buffer | null {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : null;
}
