/**
 * Typed errors for verification failures: bad proofs, bad roots, bad notes, bad keys. They mean
 * "the input does not verify", as opposed to a `RangeError`/`TypeError`, which means the caller
 * broke a precondition (a negative size, an index past the end of the tree).
 */

/** Machine-readable reason carried by every {@link VerificationError}. */
export type VerificationErrorCode =
  | 'ROOT_MISMATCH'
  | 'PROOF_SHAPE'
  | 'NOTE_FORMAT'
  | 'NOTE_UNVERIFIED'
  | 'SIGNATURE_INVALID'
  | 'CHECKPOINT_FORMAT'
  | 'KEY_FORMAT';

/** Base class: the input (proof, note, checkpoint, key) does not verify or is malformed. */
export class VerificationError extends Error {
  /** Why verification failed, stable for programs to switch on. */
  readonly code: VerificationErrorCode;

  constructor(code: VerificationErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A proof was well-formed but led to a different root than the one claimed. */
export class RootMismatchError extends VerificationError {
  /** The root the caller claimed (e.g. from a signed checkpoint). */
  readonly expected: Buffer;
  /** The root recomputed from the proof. */
  readonly calculated: Buffer;

  constructor(expected: Buffer, calculated: Buffer, what = 'root') {
    super(
      'ROOT_MISMATCH',
      `${what} mismatch: expected ${expected.toString('base64')}, calculated ${calculated.toString('base64')}`,
    );
    this.expected = expected;
    this.calculated = calculated;
  }
}

/** A proof has the wrong number of elements for its sizes, or an element is not a 32-byte hash. */
export class ProofShapeError extends VerificationError {
  constructor(message: string) {
    super('PROOF_SHAPE', message);
  }
}

/** A signed note is not in the C2SP signed-note format. */
export class NoteFormatError extends VerificationError {
  constructor(message: string) {
    super('NOTE_FORMAT', message);
  }
}

/** A signed note carries no valid signature from any of the known keys. */
export class UnverifiedNoteError extends VerificationError {
  constructor(message = 'note has no verifiable signature from a known key') {
    super('NOTE_UNVERIFIED', message);
  }
}

/** A signature line names a known key (name and key id) but the signature does not verify. */
export class InvalidSignatureError extends VerificationError {
  /** The key name on the offending signature line. */
  readonly keyName: string;
  /** The key id (8 hex digits) on the offending signature line. */
  readonly keyId: string;

  constructor(keyName: string, keyId: string) {
    super('SIGNATURE_INVALID', `invalid signature for key ${keyName}+${keyId}`);
    this.keyName = keyName;
    this.keyId = keyId;
  }
}

/** A note body is not a C2SP tlog-checkpoint. */
export class CheckpointFormatError extends VerificationError {
  constructor(message: string) {
    super('CHECKPOINT_FORMAT', message);
  }
}

/** A signer or verifier key string is not in the signed-note key encoding. */
export class KeyFormatError extends VerificationError {
  constructor(message: string) {
    super('KEY_FORMAT', message);
  }
}
