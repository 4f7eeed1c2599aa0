/**
 * One event as the log commits it, for bundles built in memory: every value under its own salt
 * and commitment (SHA-256 of salt and RFC 8785 value), and the leaf hash rebuilt from the
 * commitments (docs/ledger-spec.md §4–§5). The verifier tests build their bundles from this.
 */
import { commitField, leafBytes, leafHash, newSalt, type CommittedField } from '../../src/ledger';

export function committedEvent(
  org: string,
  id: string,
  recordedAt: string,
  values: Record<string, unknown>,
): { fields: Record<string, CommittedField>; leafHash: Buffer } {
  const fields: Record<string, CommittedField> = {};
  const commitments: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) {
    const salt = newSalt();
    commitments[k] = commitField(salt, v);
    fields[k] = { commitment: commitments[k], salt: salt.toString('base64'), value: v };
  }
  return { fields, leafHash: leafHash(leafBytes({ org, id, recordedAt, fields: commitments })) };
}
