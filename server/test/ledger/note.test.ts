/**
 * C2SP signed notes and checkpoints, checked against published material:
 *   - golang.org/x/mod/sumdb/note note_test.go (BSD-3-Clause): the PeterNeumann / EnochRoot keys,
 *     text and signatures, and its malformed-note cases;
 *   - the go.sum database key (cmd/go/internal/modfetch/key.go) and a checkpoint it signed,
 *     retrieved from sum.golang.org/latest on 2024-09-23 (as quoted in public Go test code);
 *   - the examples in c2sp.org/signed-note and c2sp.org/tlog-checkpoint.
 */
import { createHash } from 'node:crypto';

import {
  CheckpointFormatError,
  InvalidSignatureError,
  KeyFormatError,
  NoteFormatError,
  UnverifiedNoteError,
  VerificationError,
  ed25519KeyId,
  ed25519VerifierKey,
  formatCheckpoint,
  generateSignerKey,
  isValidKeyName,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  signNote,
} from '../../src/ledger';

const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT =
  "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG =
  '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG =
  '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';

const SUMDB_VKEY = 'sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8';
const SUMDB_CHECKPOINT =
  'go.sum database tree\n30055305\nmXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n\n' +
  '— sum.golang.org Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n';

const peter = parseVerifierKey(PETER_VKEY);
const enoch = parseVerifierKey(ENOCH_VKEY);

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

describe('keys (Go note encodings)', () => {
  it('parses the published verifier and signer keys, which agree', () => {
    const signer = parseSignerKey(PETER_SKEY);
    expect(peter.name).toBe('PeterNeumann');
    expect(peter.keyId.toString('hex')).toBe('c74f20a3');
    expect(signer.name).toBe('PeterNeumann');
    expect(signer.keyId.toString('hex')).toBe('c74f20a3');
    expect(signer.verifierKey).toBe(PETER_VKEY);
    expect(signer.publicKey.equals(peter.publicKey)).toBe(true);
    expect(peter.verifierKey).toBe(PETER_VKEY);
  });

  it('computes key id = SHA-256(name || 0x0A || 0x01 || public key)[:4]', () => {
    const manual = createHash('sha256')
      .update(Buffer.concat([Buffer.from('PeterNeumann\n'), Buffer.of(1), peter.publicKey]))
      .digest()
      .subarray(0, 4);
    expect(manual.toString('hex')).toBe('c74f20a3');
    expect(ed25519KeyId('PeterNeumann', peter.publicKey).toString('hex')).toBe('c74f20a3');
    expect(ed25519VerifierKey('PeterNeumann', peter.publicKey)).toBe(PETER_VKEY);
    expect(parseVerifierKey(SUMDB_VKEY).keyId.toString('hex')).toBe('033de0ae');
    expect(parseVerifierKey(ENOCH_VKEY).keyId.toString('hex')).toBe('af0cfe78');
  });

  it('rejects every substring and every one-byte change of the published verifier key (as Go does)', () => {
    const b = Buffer.from(PETER_VKEY);
    for (let i = 0; i <= b.length; i++) {
      for (let j = i + 1; j <= b.length; j++) {
        if (i === 0 && j === b.length) continue;
        expect(() => parseVerifierKey(b.subarray(i, j).toString())).toThrow(KeyFormatError);
      }
    }
    for (let i = 0; i < b.length; i++) {
      const c = Buffer.from(b);
      c[i]!++;
      expect(() => parseVerifierKey(c.toString('latin1'))).toThrow(KeyFormatError);
    }
    // Wrong key length, and unknown algorithm, each with an adjusted key hash (note_test.go).
    expect(() =>
      parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='),
    ).toThrow(KeyFormatError);
    expect(() =>
      parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    ).toThrow(KeyFormatError);
  });

  it('rejects every substring and every one-byte change of the published signer key (as Go does)', () => {
    const b = Buffer.from(PETER_SKEY);
    for (let i = 0; i <= b.length; i++) {
      for (let j = i + 1; j <= b.length; j++) {
        if (i === 0 && j === b.length) continue;
        expect(() => parseSignerKey(b.subarray(i, j).toString())).toThrow(KeyFormatError);
      }
    }
    for (let i = 0; i < b.length; i++) {
      const c = Buffer.from(b);
      c[i]!++;
      expect(() => parseSignerKey(c.toString('latin1'))).toThrow(KeyFormatError);
    }
  });

  it('generates key pairs in the Go encodings that sign and verify', () => {
    const { signerKey, verifierKey } = generateSignerKey('smedrec.audit/test');
    expect(signerKey).toMatch(/^PRIVATE\+KEY\+smedrec\.audit\/test\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
    expect(verifierKey).toMatch(/^smedrec\.audit\/test\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
    const s = parseSignerKey(signerKey);
    const v = parseVerifierKey(verifierKey);
    expect(s.verifierKey).toBe(verifierKey);
    expect(v.keyId.equals(s.keyId)).toBe(true);
    const msg = Buffer.from('hi');
    const sig = s.sign(msg);
    expect(sig).toHaveLength(64);
    expect(v.verify(msg, sig)).toBe(true);
    sig[0]! ^= 1;
    expect(v.verify(msg, sig)).toBe(false);
    expect(v.verify(Buffer.from('hj'), s.sign(msg))).toBe(false);
    expect(v.verify(msg, sig.subarray(0, 63))).toBe(false);
    expect(generateSignerKey('smedrec.audit/test').signerKey).not.toBe(signerKey);
  });

  it.each(['', 'a b', 'a+b', 'tab\there', 'nbsp\u00a0', 'nel\u0085', 'ideographic\u3000space'])(
    'refuses the key name %j',
    (name) => {
      expect(() => generateSignerKey(name)).toThrow(RangeError);
    },
  );

  it('accepts only strings as key names', () => {
    expect(isValidKeyName('PeterNeumann')).toBe(true);
    expect(isValidKeyName(5 as never)).toBe(false);
    expect(isValidKeyName(undefined as never)).toBe(false);
  });

  it.each<[string, () => unknown, string]>([
    ['a verifier key for an invalid name', () => ed25519VerifierKey('Peter Neumann', peter.publicKey), 'invalid key name "Peter Neumann"'],
    ['a verifier key for a short public key', () => ed25519VerifierKey('PeterNeumann', peter.publicKey.subarray(1)), 'Ed25519 public key must be 32 bytes'],
    ['a key pair for an invalid name', () => generateSignerKey('Peter Neumann'), 'invalid key name "Peter Neumann"'],
    ['a key pair for a name that is not a string', () => generateSignerKey(5 as never), 'invalid key name 5'],
  ])('refuses to make %s', (_name, fn, message) => {
    const e = errorOf(fn);
    expect(e).toBeInstanceOf(RangeError);
    expect((e as Error).message).toBe(message);
  });

  const material = (bytes: number[]) => Buffer.from(bytes).toString('base64');
  const seed = PETER_SKEY.split('+')[4]!;
  const pub = PETER_VKEY.split('+')[2]!;
  it.each<[string, () => unknown, string]>([
    ['a signer key that is not a string', () => parseSignerKey(5 as never), 'key must be a string'],
    ['a verifier key that is not a string', () => parseVerifierKey(null as never), 'key must be a string'],
    ['a verifier key without a plus', () => parseVerifierKey('PeterNeumann'), "key has 1 of 3 '+'-separated fields"],
    ['a verifier key with one plus', () => parseVerifierKey('PeterNeumann+c74f20a3'), "key has 2 of 3 '+'-separated fields"],
    ['a signer key with two pluses', () => parseSignerKey('PRIVATE+KEY+PeterNeumann'), "key has 3 of 5 '+'-separated fields"],
    ['a signer key that is not PRIVATE+KEY', () => parseSignerKey(PETER_SKEY.replace('PRIVATE', 'PUBLIC')), 'signer key must start with PRIVATE+KEY+'],
    ['a signer key that is PRIVATE+KEYS', () => parseSignerKey(PETER_SKEY.replace('KEY', 'KEYS')), 'signer key must start with PRIVATE+KEY+'],
    ['a signer key with an invalid name', () => parseSignerKey(`PRIVATE+KEY+Peter Neumann+c74f20a3+${seed}`), 'signer key has an invalid key name'],
    ['a verifier key with an empty name', () => parseVerifierKey(`+c74f20a3+${pub}`), 'verifier key has an invalid key name'],
    ['a signer key id of 7 digits', () => parseSignerKey(`PRIVATE+KEY+PeterNeumann+c74f20a+${seed}`), 'signer key id must be 8 hex digits'],
    ['a verifier key id with a leading junk digit', () => parseVerifierKey(`PeterNeumann+zc74f20a3+${pub}`), 'verifier key id must be 8 hex digits'],
    ['a verifier key id with a trailing junk digit', () => parseVerifierKey(`PeterNeumann+c74f20a3z+${pub}`), 'verifier key id must be 8 hex digits'],
    ['signer key material that is not base64', () => parseSignerKey('PRIVATE+KEY+PeterNeumann+c74f20a3+A!=='), 'signer key material is not base64'],
    ['empty verifier key material', () => parseVerifierKey('PeterNeumann+c74f20a3+'), 'verifier key material is not base64'],
    ['a signer key of another algorithm', () => parseSignerKey(`PRIVATE+KEY+PeterNeumann+c74f20a3+${material([2, ...Buffer.alloc(32)])}`), 'signer key has unknown signature type 0x2'],
    ['a verifier key of another algorithm', () => parseVerifierKey(`PeterNeumann+c74f20a3+${material([0x1f, ...Buffer.alloc(32)])}`), 'verifier key has unknown signature type 0x1f'],
    ['a signer key of 31 bytes', () => parseSignerKey(`PRIVATE+KEY+PeterNeumann+c74f20a3+${material([1, ...Buffer.alloc(31)])}`), 'signer key must hold 32 bytes of Ed25519 key'],
    ['a verifier key of 33 bytes', () => parseVerifierKey(`PeterNeumann+c74f20a3+${material([1, ...Buffer.alloc(33)])}`), 'verifier key must hold 32 bytes of Ed25519 key'],
    ['a verifier key id of another key', () => parseVerifierKey(`PeterNeumann+C74F20A4+${pub}`), 'key id C74F20A4 does not match the key (expected c74f20a3)'],
  ])('names the problem with %s', (_name, fn, message) => {
    const e = errorOf(fn);
    expect(e).toBeInstanceOf(KeyFormatError);
    expect((e as Error).message).toBe(message);
  });

  it('accepts a key id in upper case', () => {
    expect(parseVerifierKey(PETER_VKEY.replace('c74f20a3', 'C74F20A3')).keyId.toString('hex')).toBe('c74f20a3');
  });

  it('names the problem in key errors', () => {
    const e = errorOf(() =>
      parseVerifierKey('PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    );
    expect(e).toBeInstanceOf(KeyFormatError);
    expect((e as KeyFormatError).code).toBe('KEY_FORMAT');
    expect((e as Error).message).toMatch(/key id c74f20a4 does not match/);
  });
});

describe('signNote / openNote', () => {
  it('reproduces the published Go signature byte for byte (Ed25519 is deterministic)', () => {
    expect(signNote(TEXT, [parseSignerKey(PETER_SKEY)])).toBe(`${TEXT}\n${PETER_SIG}`);
  });

  it('verifies the published note and reports the unknown second signer as unverified', () => {
    const opened = openNote(TEXT + '\n' + PETER_SIG + ENOCH_SIG, [peter]);
    expect(opened.text).toBe(TEXT);
    expect(opened.signatures).toEqual([
      { name: 'PeterNeumann', keyId: 'c74f20a3', verified: true },
      { name: 'EnochRoot', keyId: 'af0cfe78', verified: false },
    ]);
  });

  it('verifies both published signatures when both keys are known', () => {
    const opened = openNote(TEXT + '\n' + PETER_SIG + ENOCH_SIG, [peter, enoch]);
    expect(opened.signatures.map((s) => s.verified)).toEqual([true, true]);
  });

  it('verifies a checkpoint signed by the go.sum database with its published key', () => {
    const { checkpoint, signatures } = openCheckpoint(SUMDB_CHECKPOINT, [parseVerifierKey(SUMDB_VKEY)]);
    expect(checkpoint.origin).toBe('go.sum database tree');
    expect(checkpoint.size).toBe(30055305);
    expect(checkpoint.rootHash.toString('base64')).toBe('mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=');
    expect(signatures).toEqual([{ name: 'sum.golang.org', keyId: '033de0ae', verified: true }]);
    // One changed digit in the tree size breaks the signature.
    expect(() =>
      openCheckpoint(SUMDB_CHECKPOINT.replace('30055305', '30055306'), [parseVerifierKey(SUMDB_VKEY)]),
    ).toThrow(InvalidSignatureError);
  });

  it('rejects a note no known key signed, saying who did sign it', () => {
    const e = errorOf(() => openNote(TEXT + '\n' + PETER_SIG + ENOCH_SIG, []));
    expect(e).toBeInstanceOf(UnverifiedNoteError);
    expect((e as VerificationError).code).toBe('NOTE_UNVERIFIED');
    expect((e as Error).message).toContain('PeterNeumann+c74f20a3');
  });

  it('UnverifiedNoteError has a default reason for callers that have no signer names to report', () => {
    const e = new UnverifiedNoteError();
    expect(e.code).toBe('NOTE_UNVERIFIED');
    expect(e.message).toBe('note has no verifiable signature from a known key');
  });

  it('ignores a signature whose name or key id matches a known key but not both', () => {
    const otherName = PETER_SIG.replace('PeterNeumann', 'PeterNeumann2');
    expect(() => openNote(TEXT + '\n' + otherName, [peter])).toThrow(UnverifiedNoteError);
    const otherId = PETER_SIG.replace('x08g', 'xxxx'); // changes the key id bytes
    expect(() => openNote(TEXT + '\n' + otherId, [peter])).toThrow(UnverifiedNoteError);
  });

  it('rejects the whole note when a known key signature fails (note_test.go "invalid signature")', () => {
    const bad = PETER_SIG.slice(0, 60) + 'ABCD' + PETER_SIG.slice(60);
    const e = errorOf(() => openNote(TEXT + '\n' + bad, [peter]));
    expect(e).toBeInstanceOf(InvalidSignatureError);
    expect((e as Error).message).toBe('invalid signature for key PeterNeumann+c74f20a3');
    // Even when another known key did sign correctly.
    expect(() => openNote(TEXT + '\n' + ENOCH_SIG + bad, [peter, enoch])).toThrow(InvalidSignatureError);
  });

  it('drops repeated signatures (note_test.go "duplicated verified and unverified signatures")', () => {
    const enochABCD = ENOCH_SIG.slice(0, 60) + 'ABCD' + ENOCH_SIG.slice(60);
    const opened = openNote(TEXT + '\n' + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enochABCD, [peter]);
    expect(opened.signatures).toEqual([
      { name: 'PeterNeumann', keyId: 'c74f20a3', verified: true },
      { name: 'EnochRoot', keyId: 'af0cfe78', verified: false },
      { name: 'EnochRoot', keyId: 'af0cfe78', verified: false },
    ]);
  });

  it('rejects more than 100 signatures', () => {
    expect(() => openNote(TEXT + '\n' + PETER_SIG.repeat(101), [peter])).toThrow(NoteFormatError);
    expect(openNote(TEXT + '\n' + PETER_SIG.repeat(100), [peter]).signatures).toHaveLength(1);
  });

  it.each([
    ['no signature block', TEXT, 'note has no blank line before its signatures'],
    ['a blank line but no signatures', TEXT + '\n', 'note signature block must end with a newline'],
    ['a signature line without its newline', TEXT + '\n' + PETER_SIG.slice(0, -1), 'note signature block must end with a newline'],
    ['a control character', '\x01' + TEXT + '\n' + PETER_SIG, 'note contains an ASCII control character other than newline'],
    ['a carriage return', TEXT.replace('\n', '\r\n') + '\n' + PETER_SIG, 'note contains an ASCII control character other than newline'],
    [
      'a name with a space',
      TEXT +
        '\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n',
      'malformed signature line for "Bad"',
    ],
    ['a line that is not a signature', TEXT + '\n' + PETER_SIG + 'Unexpected line.\n', 'signature line must start with an em dash and a space'],
    ['a hyphen instead of an em dash', TEXT + '\n' + PETER_SIG.replace('—', '-'), 'signature line must start with an em dash and a space'],
    ['a signature too short for a key id', TEXT + '\n— PeterNeumann AAAA\n', 'malformed signature line for "PeterNeumann"'],
    ['a signature that is not base64', TEXT + '\n— PeterNeumann x08go/ZJkuBS9UG!\n', 'malformed signature line for "PeterNeumann"'],
    ['a name and no signature', TEXT + '\n— PeterNeumann\n', 'malformed signature line for "PeterNeumann"'],
    [
      'a signature without a name',
      TEXT +
        '\n—  x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n',
      'malformed signature line for ""',
    ],
    ['a lone surrogate', TEXT.replace('If', 'I\ud800f') + '\n' + PETER_SIG, 'note is not valid Unicode (lone surrogate)'],
    ['more than 100 signatures', TEXT + '\n' + PETER_SIG.repeat(101), 'note has more than 100 signatures'],
  ])('rejects a note with %s (malformed)', (_name, note, message) => {
    const e = errorOf(() => openNote(note, [peter]));
    expect(e).toBeInstanceOf(NoteFormatError);
    expect((e as Error).message).toBe(message);
  });

  it('reads a signature of one byte after the key id, which then does not verify', () => {
    const line = `— PeterNeumann ${Buffer.concat([peter.keyId, Buffer.of(0)]).toString('base64')}\n`;
    expect(() => openNote(TEXT + '\n' + line, [peter])).toThrow(new InvalidSignatureError('PeterNeumann', 'c74f20a3'));
    expect(() => openNote(TEXT + '\n' + line, [peter])).toThrow(InvalidSignatureError);
  });

  it('names every signer of a note no known key signed', () => {
    expect(() => openNote(TEXT + '\n' + PETER_SIG + ENOCH_SIG, [])).toThrow(
      'note has no verifiable signature from a known key (signed by: PeterNeumann+c74f20a3, EnochRoot+af0cfe78)',
    );
  });

  it('refuses two different verifier keys with the same name and key id, not the same key twice', () => {
    const impostor = { ...peter, publicKey: enoch.publicKey };
    const e = errorOf(() => openNote(TEXT + '\n' + PETER_SIG, [peter, impostor]));
    expect(e).toBeInstanceOf(RangeError);
    expect((e as Error).message).toBe('ambiguous key PeterNeumann+c74f20a3');
    expect(openNote(TEXT + '\n' + PETER_SIG, [peter, parseVerifierKey(PETER_VKEY)]).signatures).toEqual([
      { name: 'PeterNeumann', keyId: 'c74f20a3', verified: true },
    ]);
  });

  it('rejects bytes that are not UTF-8, and accepts the same note as bytes', () => {
    const bytes = Buffer.from(TEXT + '\n' + PETER_SIG);
    expect(openNote(bytes, [peter]).text).toBe(TEXT);
    expect(() => openNote(Buffer.concat([Buffer.of(0xff), bytes]), [peter])).toThrow(new NoteFormatError('note is not valid UTF-8'));
    expect(() => openNote(Buffer.concat([Buffer.of(0xff), bytes]), [peter])).toThrow(NoteFormatError);
  });

  it('keeps a byte order mark at the start of a note given as bytes (it is part of the signed text)', () => {
    const s = parseSignerKey(generateSignerKey('bom.example').signerKey);
    const text = '\ufeffhello\n';
    const note = Buffer.from(signNote(text, [s]), 'utf8');
    expect(note.subarray(0, 3)).toEqual(Buffer.of(0xef, 0xbb, 0xbf));
    expect(openNote(note, [parseVerifierKey(s.verifierKey)]).text).toBe(text);
  });

  it('round-trips any text, including blank lines inside it, and rejects any change to it', () => {
    const { signerKey, verifierKey } = generateSignerKey('example.org/log');
    const s = parseSignerKey(signerKey);
    const v = parseVerifierKey(verifierKey);
    for (const text of ['\n', 'a\n', 'a\n\nb\n', 'a\n\n\n', 'héllo 😀\n', TEXT]) {
      const note = signNote(text, [s]);
      expect(openNote(note, [v])).toEqual({
        text,
        signatures: [{ name: 'example.org/log', keyId: s.keyId.toString('hex'), verified: true }],
      });
      const tampered = note.replace(
        text,
        text.replace(/.\n$/s, (m) => (m === '\n' ? 'x\n' : 'Z\n')),
      );
      if (tampered !== note) expect(() => openNote(tampered, [v])).toThrow(VerificationError);
    }
  });

  it('signs with several keys, in order, and each verifies', () => {
    const a = parseSignerKey(generateSignerKey('a.example').signerKey);
    const b = parseSignerKey(generateSignerKey('b.example').signerKey);
    const note = signNote('text\n', [a, b]);
    expect(
      note
        .split('\n')
        .filter((l) => l.startsWith('— '))
        .map((l) => l.split(' ')[1]),
    ).toEqual(['a.example', 'b.example']);
    const va = parseVerifierKey(a.verifierKey);
    const vb = parseVerifierKey(b.verifierKey);
    expect(openNote(note, [vb]).signatures.map((x) => x.verified)).toEqual([false, true]);
    expect(openNote(note, [va, vb]).signatures.map((x) => x.verified)).toEqual([true, true]);
  });

  it('refuses to sign a text without a final newline or with control characters', () => {
    const s = parseSignerKey(PETER_SKEY);
    expect(() => signNote('abc', [s])).toThrow(NoteFormatError);
    expect(() => signNote('a\tb\n', [s])).toThrow(NoteFormatError);
    expect(() => signNote('abc\n', [])).toThrow(RangeError);
  });

  it.each<[string, () => unknown, new (...args: never[]) => Error, string]>([
    ['a text without a final newline', () => signNote('abc', [parseSignerKey(PETER_SKEY)]), NoteFormatError, 'note text must end with a newline'],
    ['a text that is not a string', () => signNote(5 as never, [parseSignerKey(PETER_SKEY)]), NoteFormatError, 'note text must end with a newline'],
    ['a control character', () => signNote('a\tb\n', [parseSignerKey(PETER_SKEY)]), NoteFormatError, 'note contains an ASCII control character other than newline'],
    ['a lone surrogate', () => signNote('a\udc00b\n', [parseSignerKey(PETER_SKEY)]), NoteFormatError, 'note is not valid Unicode (lone surrogate)'],
    ['no signer', () => signNote('abc\n', []), RangeError, 'signNote needs at least one signer'],
    ['a signer with an invalid name', () => signNote('abc\n', [{ ...parseSignerKey(PETER_SKEY), name: 'Peter Neumann' }]), RangeError, 'invalid signer Peter Neumann'],
    [
      'a signer with a short key id',
      () => {
        const s = parseSignerKey(PETER_SKEY);
        return signNote('abc\n', [{ ...s, keyId: s.keyId.subarray(0, 3) }]);
      },
      RangeError,
      'invalid signer PeterNeumann',
    ],
  ])('refuses to sign with %s, saying why', (_name, fn, type, message) => {
    const e = errorOf(fn);
    expect(e).toBeInstanceOf(type);
    expect((e as Error).message).toBe(message);
  });

  it('parses the c2sp.org/signed-note example (its key is not published, so it stays unverified)', () => {
    const example =
      'Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n' +
      '— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n';
    const e = errorOf(() => openNote(example, [peter]));
    expect(e).toBeInstanceOf(UnverifiedNoteError);
    expect((e as Error).message).toContain('quasimodo.example/salvatore+');
  });
});

describe('checkpoints (c2sp.org/tlog-checkpoint)', () => {
  const root = Buffer.from('CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=', 'base64');

  it('formats <origin>\\n<size>\\n<base64 root>\\n', () => {
    expect(formatCheckpoint({ origin: 'example.com/behind-the-sofa', size: 20852163, rootHash: root })).toBe(
      'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n',
    );
  });

  it('parses the spec example and round-trips', () => {
    const body = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
    const cp = parseCheckpoint(body);
    expect(cp).toEqual({
      origin: 'example.com/behind-the-sofa',
      size: 20852163,
      rootHash: root,
      extensions: [],
    });
    expect(formatCheckpoint(cp)).toBe(body);
  });

  it('accepts extension lines and the empty tree', () => {
    expect(parseCheckpoint(`o\n5\n${root.toString('base64')}\next one\next two\n`).extensions).toEqual([
      'ext one',
      'ext two',
    ]);
    const empty = parseCheckpoint('o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n');
    expect(empty.size).toBe(0);
    expect(empty.rootHash.toString('hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it.each<[string, unknown, string]>([
    ['no final newline', `o\n5\n${root.toString('base64')}`, 'checkpoint must end with a newline'],
    ['no text at all', 5, 'checkpoint must end with a newline'],
    ['an empty origin', `\n5\n${root.toString('base64')}\n`, 'checkpoint origin line is empty'],
    ['a leading zero', `o\n05\n${root.toString('base64')}\n`, 'checkpoint size must be decimal without leading zeros'],
    ['a signed size', `o\n+5\n${root.toString('base64')}\n`, 'checkpoint size must be decimal without leading zeros'],
    ['a size past 2^53 - 1', `o\n9007199254740992\n${root.toString('base64')}\n`, 'checkpoint size 9007199254740992 exceeds 2^53 - 1'],
    ['a hex size', `o\n0x5\n${root.toString('base64')}\n`, 'checkpoint size must be decimal without leading zeros'],
    ['no size line', 'o\n', 'checkpoint size must be decimal without leading zeros'],
    ['a short root hash', `o\n5\n${root.subarray(1).toString('base64')}\n`, 'checkpoint root hash must be standard base64 of 32 bytes'],
    ['an unpadded root hash', `o\n5\n${root.toString('base64').replace('=', '')}\n`, 'checkpoint root hash must be standard base64 of 32 bytes'],
    ['a base64url root hash', `o\n5\n${root.toString('base64url')}=\n`, 'checkpoint root hash must be standard base64 of 32 bytes'],
    ['a missing root line', 'o\n5\n', 'checkpoint root hash must be standard base64 of 32 bytes'],
    ['an empty extension line', `o\n5\n${root.toString('base64')}\n\n`, 'checkpoint extension lines must be non-empty'],
    ['a carriage return', `o\r\n5\n${root.toString('base64')}\n`, 'checkpoint contains a control character'],
    ['a lone surrogate', `o\udfff\n5\n${root.toString('base64')}\n`, 'checkpoint contains a control character'],
  ])('rejects a checkpoint with %s', (_name, body, message) => {
    const e = errorOf(() => parseCheckpoint(body as string));
    expect(e).toBeInstanceOf(CheckpointFormatError);
    expect((e as Error).message).toBe(message);
  });

  it('formats the empty tree', () => {
    expect(formatCheckpoint({ origin: 'o', size: 0, rootHash: root })).toBe(`o\n0\n${root.toString('base64')}\n`);
  });

  it.each<[string, Parameters<typeof formatCheckpoint>[0], string]>([
    ['an empty origin', { origin: '', size: 1, rootHash: root }, 'checkpoint origin must be a non-empty single line'],
    ['an origin that is not a string', { origin: 5 as never, size: 1, rootHash: root }, 'checkpoint origin must be a non-empty single line'],
    ['a two-line origin', { origin: 'a\nb', size: 1, rootHash: root }, 'checkpoint origin must be a non-empty single line'],
    ['an origin with a lone surrogate', { origin: 'a\ud800', size: 1, rootHash: root }, 'checkpoint origin must be a non-empty single line'],
    ['a negative size', { origin: 'o', size: -1, rootHash: root }, 'checkpoint size must be a safe non-negative integer, got -1'],
    ['a size past 2^53 - 1', { origin: 'o', size: 2 ** 53, rootHash: root }, 'checkpoint size must be a safe non-negative integer, got 9007199254740992'],
    ['a short root hash', { origin: 'o', size: 1, rootHash: root.subarray(1) }, 'checkpoint root hash must be 32 bytes'],
  ])('refuses to format a checkpoint with %s, saying why', (_name, checkpoint, message) => {
    const e = errorOf(() => formatCheckpoint(checkpoint));
    expect(e).toBeInstanceOf(RangeError);
    expect((e as Error).message).toBe(message);
  });

  it('refuses to format impossible checkpoints', () => {
    expect(() => formatCheckpoint({ origin: '', size: 1, rootHash: root })).toThrow(RangeError);
    expect(() => formatCheckpoint({ origin: 'a\nb', size: 1, rootHash: root })).toThrow(RangeError);
    expect(() => formatCheckpoint({ origin: 'o', size: -1, rootHash: root })).toThrow(RangeError);
    expect(() => formatCheckpoint({ origin: 'o', size: 2 ** 53, rootHash: root })).toThrow(RangeError);
    expect(() => formatCheckpoint({ origin: 'o', size: 1, rootHash: root.subarray(1) })).toThrow(RangeError);
  });

  it('signs and opens a checkpoint; a note that is not a checkpoint is rejected after verification', () => {
    const { signerKey, verifierKey } = generateSignerKey('smedrec.audit');
    const s = parseSignerKey(signerKey);
    const v = parseVerifierKey(verifierKey);
    const note = signCheckpoint({ origin: 'smedrec.audit/org-1', size: 42, rootHash: root }, [s]);
    const { checkpoint } = openCheckpoint(note, [v]);
    expect(checkpoint).toEqual({ origin: 'smedrec.audit/org-1', size: 42, rootHash: root, extensions: [] });
    expect(() => openCheckpoint(signNote('just text\n', [s]), [v])).toThrow(CheckpointFormatError);
    expect(() => openCheckpoint(note.replace('\n42\n', '\n43\n'), [v])).toThrow(InvalidSignatureError);
  });
});
