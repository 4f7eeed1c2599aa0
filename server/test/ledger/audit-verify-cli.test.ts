/**
 * The offline verifier CLI (server/src/cli/audit-verify.ts), fed files made with the ledger
 * functions: as a spawned process (exit status, stdout, stderr) for the main paths, and through
 * its `main` for every failure reason.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { main } from '../../src/cli/audit-verify';
import {
  appendLeaves,
  generateSignerKey,
  leafHash,
  parseSignerKey,
  planConsistency,
  planInclusion,
  proveConsistency,
  proveInclusion,
  signCheckpoint,
} from '../../src/ledger';
import type { NodeId } from '../../src/ledger';

const ROOT = path.resolve(__dirname, '../../..');
const CLI = path.join(ROOT, 'server/src/cli/audit-verify.ts');
const ORIGIN = 'smedrec.audit/org-1';

const dir = mkdtempSync(path.join(tmpdir(), 'audit-verify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A log of 13 events, with checkpoints at sizes 5 and 13.
const log = generateSignerKey('smedrec.audit');
const signer = parseSignerKey(log.signerKey);
const otherKey = generateSignerKey('smedrec.audit').verifierKey; // same name, different key
const store = new Map<string, Buffer>();
const roots = new Map<number, Buffer>();
const leafHashes = Array.from({ length: 13 }, (_, i) => leafHash(Buffer.from(`event ${i}`)));
{
  let size = 0;
  let frontier: Buffer[] = [];
  for (const batch of [5, 8]) {
    const r = appendLeaves(size, frontier, leafHashes.slice(size, size + batch));
    for (const n of r.nodes) store.set(`${n.level}/${n.index}`, n.hash);
    roots.set(r.size, r.root);
    ({ size, frontier } = r);
  }
}
const read = (ids: NodeId[]): Buffer[] => ids.map((id) => store.get(`${id.level}/${id.index}`)!);
const b64 = (bs: Buffer[]): string[] => bs.map((b) => b.toString('base64'));
const checkpoint = (size: number, origin = ORIGIN): string =>
  signCheckpoint({ origin, size, rootHash: roots.get(size)! }, [signer]);

function receipt(index: number, size: number): Record<string, unknown> {
  return {
    id: `evt-${index}`,
    leafIndex: index,
    leafHash: leafHashes[index]!.toString('base64'),
    checkpoint: checkpoint(size),
    inclusionProof: {
      leafIndex: index,
      treeSize: size,
      hashes: b64(proveInclusion(index, size, read(planInclusion(index, size)))),
    },
  };
}

function write(name: string, content: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
}

const consistencyProof = {
  oldSize: 5,
  newSize: 13,
  hashes: b64(proveConsistency(5, 13, read(planConsistency(5, 13)))),
};
const files = {
  receipt: write('receipt.json', receipt(3, 13)),
  keys: write(
    'keys.txt',
    `# published keys\n${generateSignerKey('someone.else').verifierKey}\n\n${log.verifierKey}\n`,
  ),
  old: write('old.note', checkpoint(5)),
  new: write('new.note', checkpoint(13)),
  proof: write('proof.json', consistencyProof),
};

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { cwd: ROOT, timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

/** Runs `main` in-process, capturing its output. */
async function runMain(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (l) => (out += `${l}\n`), err: (l) => (err += `${l}\n`) });
  return { code, out, err };
}

describe('audit-verify (spawned)', () => {
  jest.setTimeout(120_000);

  it('verifies a receipt with a key given inline or in a file, and exits 0', async () => {
    const [inline, fromFile] = await Promise.all([
      run(['receipt', files.receipt, '--key', log.verifierKey]),
      run(['receipt', files.receipt, '--key', files.keys, '--origin', ORIGIN]),
    ]);
    for (const r of [inline, fromFile]) {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^OK: event evt-3 is leaf 3 of smedrec\.audit\/org-1 at tree size 13 /);
    }
  });

  it('verifies consistency between two checkpoints and exits 0', async () => {
    const r = await run(['consistency', files.old, files.new, files.proof, '--key', log.verifierKey]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^OK: smedrec\.audit\/org-1 at tree size 13 extends tree size 5/);
  });

  it('exits 1 with the reason on stderr when a receipt does not verify', async () => {
    const tampered = write('tampered.json', {
      ...receipt(3, 13),
      leafHash: leafHashes[4]!.toString('base64'),
    });
    const [wrongKey, wrongLeaf] = await Promise.all([
      run(['receipt', files.receipt, '--key', otherKey]),
      run(['receipt', tampered, '--key', log.verifierKey]),
    ]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stdout).toBe('');
    expect(wrongKey.stderr).toMatch(/^audit-verify: FAILED: note has no verifiable signature/);
    expect(wrongLeaf.code).toBe(1);
    expect(wrongLeaf.stderr).toMatch(/^audit-verify: FAILED: root mismatch/);
  });

  it('exits 1 when the new checkpoint does not extend the old one', async () => {
    const r = await run(['consistency', files.new, files.old, files.proof, '--key', log.verifierKey]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/proof is for sizes 5 → 13, the checkpoints are for 13 → 5/);
  });
});

describe('audit-verify failure reasons', () => {
  const key = ['--key', log.verifierKey];
  const good = receipt(3, 13);

  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      'a flipped bit in the proof',
      { ...good, inclusionProof: { ...(good.inclusionProof as object), hashes: flipFirst(good) } },
      /root mismatch/,
    ],
    [
      'a missing proof element',
      {
        ...good,
        inclusionProof: {
          ...(good.inclusionProof as object),
          hashes: (good.inclusionProof as { hashes: string[] }).hashes.slice(1),
        },
      },
      /too short/,
    ],
    [
      'a proof for another tree size',
      { ...good, inclusionProof: { ...(good.inclusionProof as object), treeSize: 5 } },
      /tree size 5, the checkpoint is for size 13/,
    ],
    ['a proof for another leaf', { ...good, leafIndex: 4 }, /proof is for leaf 3, the receipt is for leaf 4/],
    [
      'an edited checkpoint',
      { ...good, checkpoint: (good.checkpoint as string).replace('\n13\n', '\n12\n') },
      /invalid signature for key smedrec\.audit\+/,
    ],
    ['a checkpoint that is not a signed note', { ...good, checkpoint: 'hello\n' }, /no blank line/],
    [
      'a leaf hash that is not 32 bytes',
      { ...good, leafHash: 'AAAA' },
      /"leafHash" must be the standard base64 of a 32-byte hash/,
    ],
    ['a missing proof', { ...good, inclusionProof: undefined }, /"inclusionProof" must be an object/],
    ['a fractional leaf index', { ...good, leafIndex: 1.5 }, /"leafIndex" must be a non-negative integer/],
    [
      'a leaf past the end of the tree',
      { ...good, leafIndex: 13, inclusionProof: { ...(good.inclusionProof as object), leafIndex: 13 } },
      /leaf 13 is not in a tree of size 13/,
    ],
  ])('rejects a receipt with %s', async (name, content, reason) => {
    const file = write(`receipt-${name.replace(/\W+/g, '-')}.json`, content);
    const r = await runMain(['receipt', file, ...key]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(reason);
  });

  it('rejects a receipt from another log when --origin is given', async () => {
    expect(
      (await runMain(['receipt', files.receipt, ...key, '--origin', 'smedrec.audit/org-2'])).err,
    ).toMatch(/checkpoint origin is smedrec\.audit\/org-1, expected smedrec\.audit\/org-2/);
  });

  it('rejects a consistency proof with a flipped bit, or checkpoints of different logs', async () => {
    const hashes = [...consistencyProof.hashes];
    const first = Buffer.from(hashes[0]!, 'base64');
    first[0]! ^= 1;
    hashes[0] = first.toString('base64');
    const bad = write('proof-bad.json', { ...consistencyProof, hashes });
    expect((await runMain(['consistency', files.old, files.new, bad, ...key])).err).toMatch(/root mismatch/);
    const otherLog = write('other-log.note', checkpoint(13, 'smedrec.audit/org-2'));
    expect((await runMain(['consistency', files.old, otherLog, files.proof, ...key])).err).toMatch(
      /different logs/,
    );
    const edited = write('edited.note', checkpoint(5).replace('\n5\n', '\n6\n'));
    expect((await runMain(['consistency', edited, files.new, files.proof, ...key])).err).toMatch(
      /edited\.note: invalid signature/,
    );
  });

  it.each<[string, string[], RegExp]>([
    ['no command', [], /no command given/],
    ['an unknown command', ['verify', files.receipt, '--key', log.verifierKey], /unknown command "verify"/],
    ['no key', ['receipt', files.receipt], /at least one --key is required/],
    [
      'a key file that does not exist',
      ['receipt', files.receipt, '--key', path.join(dir, 'nope')],
      /cannot read .*nope \(ENOENT\)/,
    ],
    [
      'a malformed key',
      ['receipt', files.receipt, '--key', log.verifierKey.replace(/\+[0-9a-f]{8}\+/, '+00000000+')],
      /--key argument: key id 00000000 does not match/,
    ],
    [
      'a receipt that is not JSON',
      ['receipt', write('not.json', '{'), '--key', log.verifierKey],
      /not\.json is not JSON/,
    ],
    [
      'too many files',
      ['receipt', files.receipt, files.receipt, '--key', log.verifierKey],
      /receipt takes one file/,
    ],
    ['an unknown option', ['receipt', files.receipt, '--kee', log.verifierKey], /Unknown option '--kee'/],
  ])('exits 1 for %s', async (_name, args, reason) => {
    const r = await runMain(args);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(reason);
  });
});

function flipFirst(r: Record<string, unknown>): string[] {
  const hashes = [...(r.inclusionProof as { hashes: string[] }).hashes];
  const first = Buffer.from(hashes[0]!, 'base64');
  first[5]! ^= 0x10;
  hashes[0] = first.toString('base64');
  return hashes;
}
