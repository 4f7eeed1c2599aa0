/**
 * Published RFC 6962 / RFC 9162 test vectors, pinning interoperability with Certificate
 * Transparency implementations.
 *
 * Source: github.com/transparency-dev/merkle (Apache-2.0), which carries them over from Google's
 * certificate-transparency test data:
 *   - testonly/constants.go: LeafInputs(), NodeHashes(), RootHashes() (the 8-leaf tree);
 *   - proof/verify_test.go: inclusionProofs and consistencyProofs. Their `leaf` field is 1-based
 *     (the Go test verifies leaf `leaf - 1`), so {leaf: 1, size: 8} is index 0 here.
 */
import {
  EMPTY_ROOT,
  VerificationError,
  appendLeaves,
  frontierNodes,
  leafHash,
  planConsistency,
  planInclusion,
  planRoot,
  proveConsistency,
  proveInclusion,
  rootAt,
  verifyConsistency,
  verifyInclusion,
} from '../../src/ledger';
import type { NodeId } from '../../src/ledger';

const h = (s: string): Buffer => Buffer.from(s, 'hex');

const LEAF_INPUTS = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map(h);

/** NodeHashes()[level][index]: every complete subtree of the 8-leaf tree. */
const NODE_HASHES = [
  [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
    '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
    'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
    '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
  ],
  [
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
  ],
  [
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
  ],
  ['5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'],
].map((level) => level.map(h));

/** RootHashes()[size] for sizes 0..8. */
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
].map(h);

/** verify_test.go inclusionProofs (the non-trivial ones), as 0-based index. */
const INCLUSION_PROOFS: Array<{ index: number; size: number; proof: string[] }> = [
  { index: 0, size: 1, proof: [] },
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];

/** verify_test.go consistencyProofs. */
const CONSISTENCY_PROOFS: Array<{ oldSize: number; newSize: number; proof: string[] }> = [
  { oldSize: 1, newSize: 1, proof: [] },
  {
    oldSize: 1,
    newSize: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    oldSize: 6,
    newSize: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    oldSize: 2,
    newSize: 5,
    proof: [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
  {
    oldSize: 6,
    newSize: 7,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];

/** Storage read from the published node hashes only. */
const readPublished = (ids: NodeId[]): Buffer[] =>
  ids.map((id) => {
    const hash = NODE_HASHES[id.level]?.[id.index];
    if (!hash) throw new Error(`no published hash for node ${id.level}/${id.index}`);
    return hash;
  });

const hex = (bs: Buffer[]): string[] => bs.map((b) => b.toString('hex'));

describe('RFC 6962 published vectors (transparency-dev/merkle)', () => {
  it('hashes the eight published leaves to the published level-0 hashes', () => {
    expect(hex(LEAF_INPUTS.map((l) => leafHash(l)))).toEqual(hex(NODE_HASHES[0]!));
  });

  it('appendLeaves reproduces the published roots for sizes 1..8 and every published node', () => {
    let size = 0;
    let frontier: Buffer[] = [];
    const stored = new Map<string, string>();
    for (const leaf of LEAF_INPUTS) {
      const r = appendLeaves(size, frontier, [leafHash(leaf)]);
      expect(r.root.toString('hex')).toBe(ROOTS[r.size]!.toString('hex'));
      for (const n of r.nodes) stored.set(`${n.level}/${n.index}`, n.hash.toString('hex'));
      ({ size, frontier } = r);
    }
    NODE_HASHES.forEach((level, l) =>
      level.forEach((hash, i) => expect(stored.get(`${l}/${i}`)).toBe(hash.toString('hex'))),
    );
    expect(stored.size).toBe(15);
  });

  it('the published compact ranges are the frontiers', () => {
    // testonly/constants.go CompactTrees(): size 7 = {nh[2][0], nh[1][2], nh[0][6]}.
    expect(frontierNodes(7)).toEqual([
      { level: 2, index: 0 },
      { level: 1, index: 2 },
      { level: 0, index: 6 },
    ]);
  });

  it('rootAt reproduces every published root from published nodes only', () => {
    expect(rootAt(0, [])).toEqual(EMPTY_ROOT);
    for (let size = 0; size <= 8; size++) {
      expect(rootAt(size, readPublished(planRoot(size))).toString('hex')).toBe(ROOTS[size]!.toString('hex'));
    }
  });

  it.each(INCLUSION_PROOFS)('inclusion proof of leaf $index in size $size', ({ index, size, proof }) => {
    const built = proveInclusion(index, size, readPublished(planInclusion(index, size)));
    expect(hex(built)).toEqual(proof);
    verifyInclusion(leafHash(LEAF_INPUTS[index]!), index, size, proof.map(h), ROOTS[size]!);
    // The same proof does not prove a neighbouring leaf.
    const neighbour = index + 1 < size ? index + 1 : index - 1;
    if (neighbour >= 0 && neighbour !== index) {
      expect(() =>
        verifyInclusion(leafHash(LEAF_INPUTS[neighbour]!), neighbour, size, proof.map(h), ROOTS[size]!),
      ).toThrow(VerificationError);
    }
  });

  it.each(CONSISTENCY_PROOFS)('consistency proof $oldSize → $newSize', ({ oldSize, newSize, proof }) => {
    const built = proveConsistency(oldSize, newSize, readPublished(planConsistency(oldSize, newSize)));
    expect(hex(built)).toEqual(proof);
    verifyConsistency(oldSize, newSize, proof.map(h), ROOTS[oldSize]!, ROOTS[newSize]!);
    if (proof.length > 0) {
      expect(() =>
        verifyConsistency(oldSize, newSize, proof.map(h), ROOTS[newSize]!, ROOTS[oldSize]!),
      ).toThrow(VerificationError);
    }
  });

  it('every inclusion and consistency proof within the 8-leaf tree verifies against the published roots', () => {
    for (let size = 1; size <= 8; size++) {
      for (let index = 0; index < size; index++) {
        const proof = proveInclusion(index, size, readPublished(planInclusion(index, size)));
        verifyInclusion(leafHash(LEAF_INPUTS[index]!), index, size, proof, ROOTS[size]!);
      }
      for (let old = 0; old <= size; old++) {
        const proof = proveConsistency(old, size, readPublished(planConsistency(old, size)));
        verifyConsistency(old, size, proof, ROOTS[old]!, ROOTS[size]!);
      }
    }
  });
});
