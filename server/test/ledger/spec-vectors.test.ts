/**
 * docs/ledger-spec.md §13 prints test vectors for third-party verifiers. This test reads the page,
 * recomputes every printed output from its printed inputs with the ledger module, and verifies the
 * printed bundle with the bundle verifier, so the specification cannot drift from the code. It
 * also fails when a vector block is added that it does not understand, or one disappears.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { BundleVerifier, parseVerifierKey, type BundleRecord } from '../../src/ledger';
import {
  bundleVector,
  checkpointVector,
  commitmentVector,
  hashVector,
  keyVector,
  leafVector,
  producerVector,
  recordedAtVector,
  treeVector,
  type BundleInputs,
} from './spec-vectors';

const page = readFileSync(path.resolve(__dirname, '../../../docs/ledger-spec.md'), 'utf8');
const section13 = page.slice(page.indexOf('\n## 13. Test vectors'));

/** Names whose value is exact canonical text even though it looks like JSON. */
const RAW = new Set(['jcs', 'leaf', 'message']);

type Vector = Record<string, unknown> & { vector: string };

/** Fenced blocks of §13: info string and content. */
const blocks = [...section13.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ info: m[1]!, body: m[2]! }));

function parseVector(body: string): Vector {
  const out: Record<string, unknown> = {};
  for (const line of body.split('\n')) {
    if (line === '') continue;
    const m = /^([\w-]+) = (.*)$/.exec(line);
    if (!m) throw new Error(`not a "name = value" line: ${line}`);
    const [, name, raw] = m as unknown as [string, string, string];
    out[name] = !RAW.has(name) && /^["[{]/.test(raw) ? JSON.parse(raw) : raw;
  }
  if (typeof out.vector !== 'string') throw new Error(`vector block without "vector =": ${body}`);
  return out as Vector;
}

const vectors = blocks.filter((b) => b.info === 'text').map((b) => parseVector(b.body));
const ofKind = (kind: string) => vectors.filter((v) => v.vector === kind);
const str = (v: Vector, name: string): string => {
  const x = v[name];
  if (typeof x !== 'string') throw new Error(`${v.vector}: ${name} is missing`);
  return x;
};

describe('docs/ledger-spec.md §13 test vectors', () => {
  it('holds the expected vector blocks, all of known kinds', () => {
    const known = ['hashes', 'tree', 'commitment', 'timestamp', 'leaf', 'key', 'checkpoint', 'producer-signature', 'erased-field'];
    expect(vectors.map((v) => v.vector).filter((k) => !known.includes(k))).toEqual([]);
    expect(known.filter((k) => ofKind(k).length === 0)).toEqual([]);
    expect(blocks.filter((b) => b.info === 'note')).toHaveLength(1);
    expect(blocks.filter((b) => b.info === 'ndjson')).toHaveLength(1);
  });

  it('hashes: empty root, leaf hashes and a node hash', () => {
    const [v] = ofKind('hashes');
    const h = hashVector();
    expect([str(v!, 'empty_root'), str(v!, 'leaf_hash_of_empty_leaf'), str(v!, 'leaf_hash_of_leaf_00'), str(v!, 'node_hash_of_both')]).toEqual([
      h.emptyRoot,
      h.leafHashEmpty,
      h.leafHash00,
      h.nodeHash,
    ]);
  });

  it('tree: every printed root, audit path and consistency proof', () => {
    const [v] = ofKind('tree');
    const t = treeVector(v!.leaves as string[]);
    let checked = 0;
    for (const [name, value] of Object.entries(v!)) {
      const root = /^root_(\d+)$/.exec(name);
      const incl = /^inclusion_(\d+)_(\d+)$/.exec(name);
      const cons = /^consistency_(\d+)_(\d+)$/.exec(name);
      if (root) expect([name, value]).toEqual([name, t.root(Number(root[1]))]);
      else if (incl) expect([name, value]).toEqual([name, t.inclusion(Number(incl[1]), Number(incl[2]))]);
      else if (cons) expect([name, value]).toEqual([name, t.consistency(Number(cons[1]), Number(cons[2]))]);
      else if (name !== 'vector' && name !== 'leaves') throw new Error(`unknown tree vector member ${name}`);
      checked++;
    }
    expect(checked).toBeGreaterThan(10);
  });

  it('field commitments: the JCS text and SHA-256(salt || UTF-8(JCS(value)))', () => {
    for (const v of [...ofKind('commitment'), ...ofKind('erased-field')]) {
      const c = commitmentVector(str(v, 'salt'), v.value);
      if (v.jcs !== undefined) expect(str(v, 'jcs')).toBe(c.jcs);
      expect(str(v, 'commitment')).toBe(c.commitment);
    }
  });

  it('timestamps: the committed millisecond form', () => {
    for (const v of ofKind('timestamp')) expect(str(v, 'committed')).toBe(recordedAtVector(str(v, 'input')));
  });

  it('leaves: the leaf bytes and the leaf hash', () => {
    for (const v of ofKind('leaf')) {
      const l = leafVector(str(v, 'org'), str(v, 'id'), str(v, 'recordedAt'), v.fields as Record<string, string>);
      expect({ leaf: str(v, 'leaf'), hash: str(v, 'leaf_hash'), base64: str(v, 'leaf_hash_base64') }).toEqual({
        leaf: l.bytes,
        hash: l.hashHex,
        base64: l.hashBase64,
      });
    }
  });

  it('keys: public key, key id and verifier key of the signer key', () => {
    const [v] = ofKind('key');
    const k = keyVector(str(v!, 'signer_key'));
    expect({
      name: str(v!, 'name'),
      publicKey: str(v!, 'public_key'),
      preimage: str(v!, 'key_id_preimage'),
      keyId: str(v!, 'key_id'),
      verifierKey: str(v!, 'verifier_key'),
    }).toEqual({ name: k.name, publicKey: k.publicKeyHex, preimage: k.keyIdPreimageHex, keyId: k.keyId, verifierKey: k.verifierKey });
  });

  it('checkpoint: the note text and the signed note, also as printed raw', () => {
    const [v] = ofKind('checkpoint');
    const c = checkpointVector(str(v!, 'signer_key'), str(v!, 'origin'), Number(str(v!, 'size')), str(v!, 'root_base64'));
    expect(str(v!, 'note_text')).toBe(c.text);
    expect(str(v!, 'note')).toBe(c.note);
    expect(blocks.find((b) => b.info === 'note')!.body).toBe(c.note);
  });

  it('producer signature: key id, signed message and signature', () => {
    const [v] = ofKind('producer-signature');
    const p = producerVector(str(v!, 'producer_seed'), v!.event as Record<string, unknown>);
    expect({
      publicKey: str(v!, 'public_key_base64'),
      keyId: str(v!, 'key_id'),
      message: str(v!, 'message'),
      signature: str(v!, 'signature_base64'),
    }).toEqual(p);
  });

  describe('the complete bundle', () => {
    const records = blocks
      .find((b) => b.info === 'ndjson')!
      .body.split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as BundleRecord);

    it('is exactly what the ledger module builds from its inputs', () => {
      const [key] = ofKind('key');
      const [producer] = ofKind('producer-signature');
      const [erased] = ofKind('erased-field');
      const header = records.find((r) => r.type === 'header')!;
      const keyRecord = records.find((r) => r.type === 'key')!;
      const producerKey = records.find((r) => r.type === 'producerKey')!;
      if (header.type !== 'header' || keyRecord.type !== 'key' || producerKey.type !== 'producerKey') throw new Error('records missing');
      // Inputs: the printed values and salts, the erased value, the keys; batches end at the checkpoints.
      const batches: BundleInputs['batches'] = [];
      let current: BundleInputs['batches'][number]['events'] = [];
      for (const r of records) {
        if (r.type === 'event') {
          const fields: Record<string, { salt: string; value: unknown }> = {};
          const erasedNames: string[] = [];
          for (const [name, f] of Object.entries(r.fields)) {
            if (f.salt === null) {
              expect(f.commitment).toBe(str(erased!, 'commitment'));
              fields[name] = { salt: str(erased!, 'salt'), value: erased!.value };
              erasedNames.push(name);
            } else {
              fields[name] = { salt: Buffer.from(f.salt, 'base64').toString('hex'), value: f.value };
            }
          }
          current.push({ id: r.id, fields, erased: erasedNames, signed: r.producerSignature !== undefined });
        } else if (r.type === 'checkpoint') {
          batches.push({ recordedAt: r.createdAt!, events: current });
          current = [];
        }
      }
      const inputs: BundleInputs = {
        signerKey: str(key!, 'signer_key'),
        producerSeedHex: str(producer!, 'producer_seed'),
        producerName: producerKey.name,
        producerCreatedAt: producerKey.createdAt,
        origin: header.origin,
        organizationId: header.organizationId,
        keyNotBefore: keyRecord.notBefore,
        exportedAt: header.exportedAt,
        batches,
      };
      expect(JSON.parse(JSON.stringify(bundleVector(inputs)))).toEqual(records);
    });

    it('verifies with nothing but the printed verifier key', () => {
      const [key] = ofKind('key');
      const verifier = new BundleVerifier({ verifiers: [parseVerifierKey(str(key!, 'verifier_key'))] });
      for (const r of records) verifier.push(r);
      const report = verifier.finish();
      expect(report.failures).toEqual([]);
      expect(report).toMatchObject({
        ok: true,
        events: 3,
        erasedFields: 1,
        checkpointsVerified: 2,
        consistencyProofsVerified: 1,
        producerSignaturesVerified: 1,
      });
    });

    it('fails when any value, salt or note byte changes', () => {
      const [key] = ofKind('key');
      const text = records.map((r) => JSON.stringify(r));
      const tamper = (line: number, from: string, to: string) => {
        const lines = [...text];
        expect(lines[line]).toContain(from);
        lines[line] = lines[line]!.replace(from, to);
        const verifier = new BundleVerifier({ verifiers: [parseVerifierKey(str(key!, 'verifier_key'))] });
        for (const l of lines) verifier.push(JSON.parse(l));
        return verifier.finish().ok;
      };
      const event0 = records.findIndex((r) => r.type === 'event');
      const checkpoint3 = records.findLastIndex((r) => r.type === 'checkpoint');
      expect(tamper(event0, '"dr-house"', '"dr-housf"')).toBe(false);
      expect(tamper(event0, '"auth.login"', '"auth.logon"')).toBe(false);
      expect(tamper(checkpoint3, '\\n3\\n', '\\n4\\n')).toBe(false);
    });
  });
});
