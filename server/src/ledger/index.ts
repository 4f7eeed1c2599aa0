/**
 * The pure ledger core (docs/ledger-spec.md): hashing, RFC 8785 canonical JSON, field commitments,
 * RFC 9162 Merkle tree math and proofs, C2SP signed notes and checkpoints. It imports nothing but
 * `node:crypto`, so an auditor can read all of it in one sitting.
 */
export * from './commitment';
export * from './encoding';
export * from './errors';
export * from './hash';
export * from './jcs';
export * from './tree';
export * from './note';
export * from './bundle-format';
export * from './bundle-verifier';
export * from './compact-range';
export * from './fast-commitment';
export * from './producer';
