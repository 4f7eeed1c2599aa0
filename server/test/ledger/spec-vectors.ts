/**
 * Computes the test vectors of docs/ledger-spec.md §13 from their inputs with the ledger module,
 * so the test can compare them with what the page prints. Every function takes the inputs the page
 * states and returns every output the page states.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';

import {
  BUNDLE_FORMAT,
  appendLeaves,
  canonicalize,
  commitField,
  ed25519KeyId,
  formatRecordedAt,
  leafBytes,
  leafHash,
  nodeHash,
  parseSignerKey,
  planConsistency,
  planInclusion,
  proveConsistency,
  proveInclusion,
  producerKeyId,
  producerSigningMessage,
  signCheckpoint,
  signProducerEvent,
  type BundleRecord,
  type CommittedField,
  type NodeId,
} from '../../src/ledger';

/** RFC 9162 §2.1.1 roots, audit paths and consistency proofs of a list of leaf inputs (hex). */
export function treeVector(leafInputsHex: string[]): {
  root: (size: number) => string;
  inclusion: (index: number, size: number) => string[];
  consistency: (oldSize: number, newSize: number) => string[];
} {
  const leaves = leafInputsHex.map((h) => leafHash(Buffer.from(h, 'hex')));
  const nodes = new Map<string, Buffer>();
  const roots: Buffer[] = [appendLeaves(0, [], []).root];
  let frontier: Buffer[] = [];
  leaves.forEach((leaf, i) => {
    const r = appendLeaves(i, frontier, [leaf]);
    for (const n of r.nodes) nodes.set(`${n.level}/${n.index}`, n.hash);
    frontier = r.frontier;
    roots.push(r.root);
  });
  const read = (ids: NodeId[]) => ids.map((id) => nodes.get(`${id.level}/${id.index}`)!);
  const hex = (bs: Buffer[]) => bs.map((b) => b.toString('hex'));
  return {
    root: (size) => roots[size]!.toString('hex'),
    inclusion: (index, size) => hex(proveInclusion(index, size, read(planInclusion(index, size)))),
    consistency: (oldSize, newSize) => hex(proveConsistency(oldSize, newSize, read(planConsistency(oldSize, newSize)))),
  };
}

/** The hash primitives: empty root, two leaf hashes and the node above them. */
export function hashVector(): { emptyRoot: string; leafHashEmpty: string; leafHash00: string; nodeHash: string } {
  const a = leafHash(Buffer.alloc(0));
  const b = leafHash(Buffer.from([0x00]));
  return {
    emptyRoot: appendLeaves(0, [], []).root.toString('hex'),
    leafHashEmpty: a.toString('hex'),
    leafHash00: b.toString('hex'),
    nodeHash: nodeHash(a, b).toString('hex'),
  };
}

/** A field commitment: the JCS text and `SHA-256(salt || UTF-8(JCS(value)))`. */
export function commitmentVector(saltHex: string, value: unknown): { jcs: string; commitment: string } {
  return { jcs: canonicalize(value), commitment: commitField(Buffer.from(saltHex, 'hex'), value) };
}

/** The committed form of a `timestamp` / `recordedAt` given in any RFC 3339 form. */
export function recordedAtVector(input: string): string {
  return formatRecordedAt(new Date(input));
}

/** Leaf bytes and leaf hash. */
export function leafVector(org: string, id: string, recordedAt: string, fields: Record<string, string>): { bytes: string; hashHex: string; hashBase64: string } {
  const bytes = leafBytes({ org, id, recordedAt, fields });
  const h = leafHash(bytes);
  return { bytes: bytes.toString('utf8'), hashHex: h.toString('hex'), hashBase64: h.toString('base64') };
}

/** A checkpoint signing key: its public key, key id (spelled out) and verifier key. */
export function keyVector(signerKey: string): { name: string; publicKeyHex: string; keyIdPreimageHex: string; keyId: string; verifierKey: string } {
  const s = parseSignerKey(signerKey);
  return {
    name: s.name,
    publicKeyHex: s.publicKey.toString('hex'),
    keyIdPreimageHex: Buffer.concat([Buffer.from(s.name, 'utf8'), Buffer.from([0x0a, 0x01]), s.publicKey]).toString('hex'),
    keyId: ed25519KeyId(s.name, s.publicKey).toString('hex'),
    verifierKey: s.verifierKey,
  };
}

/** A signed checkpoint note. */
export function checkpointVector(signerKey: string, origin: string, size: number, rootBase64: string): { text: string; note: string } {
  const note = signCheckpoint({ origin, size, rootHash: Buffer.from(rootBase64, 'base64') }, [parseSignerKey(signerKey)]);
  return { text: note.slice(0, note.indexOf('\n\n') + 1), note };
}

/** The raw 32-byte Ed25519 public key of a seed. */
export function ed25519PublicKey(seed: Buffer): Buffer {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
  return spki.subarray(spki.length - 32);
}

/** A producer signature over an event as sent. */
export function producerVector(seedHex: string, event: Record<string, unknown>): { publicKey: string; keyId: string; message: string; signature: string } {
  const seed = Buffer.from(seedHex, 'hex');
  const pub = ed25519PublicKey(seed);
  const signed = signProducerEvent(event, seed, pub);
  return { publicKey: pub.toString('base64'), keyId: producerKeyId(pub), message: producerSigningMessage(event).toString('utf8'), signature: signed.signature };
}

/** What the bundle vector is built from: the log's events as stored, batch by batch. */
export interface BundleInputs {
  signerKey: string;
  producerSeedHex: string;
  producerName: string;
  producerCreatedAt: string;
  origin: string;
  organizationId: string;
  keyNotBefore: string;
  exportedAt: string;
  /** Batches in order; each becomes one checkpoint, stored at the batch's recordedAt. */
  batches: Array<{
    recordedAt: string;
    events: Array<{
      id: string;
      /** Field values and salts (hex); `erased` fields keep only their commitment. */
      fields: Record<string, { salt: string; value: unknown }>;
      erased?: string[];
      signed?: boolean;
    }>;
  }>;
}

/**
 * The whole-log export bundle of `inputs`, record by record, in the order and member order the
 * server's exporter writes them (docs/ledger-spec.md §11).
 */
export function bundleVector(inputs: BundleInputs): BundleRecord[] {
  const signer = parseSignerKey(inputs.signerKey);
  const seed = Buffer.from(inputs.producerSeedHex, 'hex');
  const producerPub = ed25519PublicKey(seed);
  const nodes = new Map<string, Buffer>();
  const read = (ids: NodeId[]) => ids.map((id) => nodes.get(`${id.level}/${id.index}`)!);
  let size = 0;
  let frontier: Buffer[] = [];
  const body: BundleRecord[] = [];
  let previous: number | null = null;
  let checkpoints = 0;
  let events = 0;
  for (const batch of inputs.batches) {
    const hashes: Buffer[] = [];
    for (const e of batch.events) {
      const fields: Record<string, CommittedField> = {};
      const commitments: Record<string, string> = {};
      const values: Record<string, unknown> = {};
      for (const [name, f] of Object.entries(e.fields)) {
        const commitment = commitField(Buffer.from(f.salt, 'hex'), f.value);
        commitments[name] = commitment;
        values[name] = f.value;
        fields[name] = e.erased?.includes(name) ? { commitment, salt: null } : { commitment, salt: Buffer.from(f.salt, 'hex').toString('base64'), value: f.value };
      }
      const h = leafHash(leafBytes({ org: inputs.organizationId, id: e.id, recordedAt: batch.recordedAt, fields: commitments }));
      hashes.push(h);
      const record: BundleRecord = { type: 'event', leafIndex: size + hashes.length - 1, id: e.id, recordedAt: batch.recordedAt, leafHash: h.toString('base64'), fields };
      if (e.signed) record.producerSignature = signProducerEvent(values, seed, producerPub);
      body.push(record);
      events++;
    }
    const r = appendLeaves(size, frontier, hashes);
    for (const n of r.nodes) nodes.set(`${n.level}/${n.index}`, n.hash);
    if (previous !== null) {
      body.push({ type: 'consistency', fromSize: previous, toSize: r.size, hashes: proveConsistency(previous, r.size, read(planConsistency(previous, r.size))).map((x) => x.toString('base64')) });
    }
    const note = signCheckpoint({ origin: inputs.origin, size: r.size, rootHash: r.root }, [signer]);
    body.push({ type: 'checkpoint', treeSize: r.size, note, createdAt: batch.recordedAt });
    checkpoints++;
    previous = r.size;
    size = r.size;
    frontier = r.frontier;
  }
  return [
    { type: 'header', format: BUNDLE_FORMAT, origin: inputs.origin, organizationId: inputs.organizationId, start: 0, end: size, headSize: size, exportedAt: inputs.exportedAt },
    { type: 'key', keyId: signer.keyId.toString('hex'), name: signer.name, verifierKey: signer.verifierKey, notBefore: inputs.keyNotBefore, notAfter: null },
    { type: 'producerKey', keyId: producerKeyId(producerPub), name: inputs.producerName, publicKey: producerPub.toString('base64'), createdAt: inputs.producerCreatedAt, revokedAt: null },
    ...body,
    { type: 'end', events, checkpoints },
  ];
}
