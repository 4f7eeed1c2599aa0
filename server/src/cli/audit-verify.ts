#!/usr/bin/env node
/**
 * Offline verifier for auditors. Depends on nothing but the pure ledger (server/src/ledger) and
 * Node's built-ins, so it runs without the server, its database or the network:
 *
 *   audit-verify receipt <receipt.json> --key <vkey|file> [--key …] [--origin <origin>]
 *       Checks the receipt's signed checkpoint against the key(s) and the inclusion proof of its
 *       leaf hash against the checkpoint's root.
 *
 *   audit-verify consistency <old-checkpoint> <new-checkpoint> <proof.json> --key <vkey|file> [--key …]
 *       Checks both signed checkpoints (same origin) and that the new tree extends the old one.
 *
 *   audit-verify bundle <bundle.ndjson|dir> --key <vkey|file> [--key …] [--pin <checkpoint file>] [--threads N]
 *       Verifies an export bundle (docs/verification.md) line by line: every field value against
 *       its commitment, every leaf, the tree, every checkpoint signature and the consistency
 *       between consecutive checkpoints. Erased fields are listed as erased, not failures. On
 *       failure, names the first bad leaf index or checkpoint. With --pin, the log must contain
 *       the pinned checkpoint (not rolled back, same root), and the file is then updated to the
 *       bundle's latest checkpoint. Pass one --key per signing key of the log's key history.
 *       --threads N: N worker threads parse and hash the events while this thread reads the file
 *       and folds the tree (audit-verify-bundle.ts); 1 verifies in this thread alone. The report
 *       is the same either way. Default: one per available CPU (at most 8), or 1 for bundles
 *       under 8 MiB, where starting threads costs more than it saves.
 *
 * `--key` takes a verifier key (`<name>+<hex id>+<base64>`) or a file holding one per line
 * (blank lines and lines starting with `#` are skipped). Exit status 0 only when everything
 * verifies; otherwise 1, with the reason on stderr.
 *
 * Receipt JSON: { id, leafIndex, leafHash (base64), checkpoint (signed note text),
 *                 inclusionProof: { leafIndex, treeSize, hashes: base64[] } }
 * Proof JSON:   { fromSize, toSize, hashes: base64[] } as the server returns it ({ oldSize, newSize } also accepted)
 */
import { existsSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import {
  BundleVerifier,
  HASH_SIZE,
  decodeBase64Strict,
  openCheckpoint,
  parseVerifierKey,
  verifyConsistency,
  verifyInclusion,
} from '../ledger';
import type { BundleFailure, Checkpoint, NoteSignature, Verifier } from '../ledger';
import { VerifyPool, verifyBundleFile } from './audit-verify-bundle';

export { readLinesSync } from './audit-verify-bundle';

/** Bundles at least this big are verified with worker threads unless --threads says otherwise. */
const PARALLEL_MIN_BYTES = 8 << 20;
const MAX_DEFAULT_THREADS = 8;

const USAGE = `usage:
  audit-verify receipt <receipt.json> --key <vkey|file> [--key …] [--origin <origin>]
  audit-verify consistency <old-checkpoint> <new-checkpoint> <proof.json> --key <vkey|file> [--key …]
  audit-verify bundle <bundle.ndjson|dir> --key <vkey|file> [--key …] [--pin <checkpoint file>] [--threads N]
      --threads N  worker threads that parse and hash events (1: none, all in one thread);
                   default one per CPU (at most ${MAX_DEFAULT_THREADS}), 1 for bundles under ${PARALLEL_MIN_BYTES >> 20} MiB`;

/** Where the CLI writes; injectable for tests. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

/** A failure to report: the message goes to stderr as is. */
class Failure extends Error {}

/** Runs the verifier with command-line arguments (without `node` and the script) and resolves with the exit status. */
export async function main(argv: string[], io: Output = defaultOutput): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        key: { type: 'string', multiple: true },
        origin: { type: 'string' },
        pin: { type: 'string' },
        threads: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const [command, ...files] = positionals;
    switch (command) {
      case 'receipt':
        if (files.length !== 1) throw new Failure(`receipt takes one file\n${USAGE}`);
        io.out(verifyReceipt(files[0]!, loadVerifiers(values.key ?? []), values.origin));
        return 0;
      case 'consistency':
        if (files.length !== 3) throw new Failure(`consistency takes three files\n${USAGE}`);
        io.out(
          verifyConsistencyFiles(
            files[0]!,
            files[1]!,
            files[2]!,
            loadVerifiers(values.key ?? []),
            values.origin,
          ),
        );
        return 0;
      case 'bundle':
        if (files.length !== 1) throw new Failure(`bundle takes one file or directory\n${USAGE}`);
        await verifyBundlePath(files[0]!, loadVerifiers(values.key ?? []), values.pin, values.threads, io);
        return 0;
      case undefined:
        throw new Failure(`no command given\n${USAGE}`);
      default:
        throw new Failure(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
    }
  } catch (e) {
    io.err(`audit-verify: FAILED: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

/**
 * `audit-verify bundle <dir|file> --key … [--pin <file>] [--threads N]`: streams each bundle (NDJSON)
 * through the pure {@link BundleVerifier} in order, so memory stays flat for any size; with worker
 * threads, they parse and hash batches of events meanwhile (audit-verify-bundle.ts). A directory
 * means every `*.ndjson` file in it, in name order. With `--pin`, the log must contain the
 * checkpoint pinned in that file (same root at its size, not rolled back); after a clean run the
 * file is updated to the bundle's latest checkpoint (trust on first use, then consistency).
 */
async function verifyBundlePath(
  target: string,
  verifiers: Verifier[],
  pinFile: string | undefined,
  threadsOption: string | undefined,
  io: Output,
): Promise<void> {
  let files: string[];
  try {
    files = statSync(target).isDirectory()
      ? readdirSync(target)
          .filter((f) => f.endsWith('.ndjson'))
          .sort()
          .map((f) => path.join(target, f))
      : [target];
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Failure(`cannot read ${target}${code ? ` (${code})` : ''}`);
  }
  if (files.length === 0) throw new Failure(`${target}: no *.ndjson bundle in the directory`);
  let pinned: Checkpoint | undefined;
  if (pinFile !== undefined && existsSync(pinFile))
    pinned = openCheckpointFile(pinFile, verifiers).checkpoint;

  const threads = threadsOption === undefined ? defaultThreads(files) : parseThreads(threadsOption);
  const pool = threads > 1 ? new VerifyPool(threads) : null;
  const failed: string[] = [];
  let latest: { treeSize: number; note: string } | null = null;
  try {
    for (const file of files) {
      const verifier = new BundleVerifier({ verifiers, ...(pinned ? { pinned } : {}) });
      try {
        await verifyBundleFile(file, verifier, pool);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.syscall === 'open')
          throw new Failure(`cannot read ${file}${err.code ? ` (${err.code})` : ''}`);
        throw e;
      }
      const report = verifier.finish();
      for (const w of report.warnings) io.out(`warning: ${file}: ${w}`);
      if (report.ok) {
        const erased = report.erased.map((e) => `${e.leafIndex}.${e.field}`).join(', ');
        io.out(
          `OK: ${file}: ${report.origin} leaves [${report.start}, ${report.end}): ${report.events} events, ` +
            `${report.fieldsVerified} field values re-hashed, ${report.erasedFields} erased` +
            (report.erasedFields > 0
              ? ` (${erased}${report.erasedFields > report.erased.length ? ', …' : ''})`
              : '') +
            `; ${report.checkpointsVerified} checkpoints and ${report.consistencyProofsVerified} consistency proofs verified; ` +
            `latest tree size ${report.latest?.treeSize ?? 0}, root ${report.latest?.rootHash ?? '(none)'}`,
        );
        if (report.latest && (latest === null || report.latest.treeSize > latest.treeSize))
          latest = report.latest;
      } else {
        const more = report.failures.slice(1, 5).map((f) => `  then ${describeFailure(f)}`);
        failed.push(
          [
            `${file}: ${describeFailure(report.failures[0]!)} (${report.failureCount} failure${report.failureCount === 1 ? '' : 's'})`,
            ...more,
          ].join('\n'),
        );
      }
    }
  } finally {
    await pool?.close();
  }
  if (failed.length > 0) throw new Failure(failed.join('\n'));
  if (pinFile !== undefined && latest !== null) {
    // Written next to the pin and renamed over it, so a crash never leaves half a checkpoint.
    const tmp = `${pinFile}.tmp-${process.pid}`;
    writeFileSync(tmp, latest.note);
    renameSync(tmp, pinFile);
    io.out(`pinned: ${pinFile} now holds the checkpoint at tree size ${latest.treeSize}`);
  }
}

function describeFailure(f: BundleFailure): string {
  const where =
    f.kind === 'leaf'
      ? `leaf ${f.leafIndex}`
      : f.kind === 'checkpoint'
        ? `checkpoint ${f.treeSize}`
        : `line ${f.line}`;
  const reason = f.reason.startsWith(`${where}: `) ? f.reason.slice(where.length + 2) : f.reason;
  return `${where}: ${reason}`;
}

/** One worker per CPU (at most 8) for bundles of 8 MiB or more; smaller ones in this thread. */
function defaultThreads(files: string[]): number {
  const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
  return bytes < PARALLEL_MIN_BYTES ? 1 : Math.min(availableParallelism(), MAX_DEFAULT_THREADS);
}

function parseThreads(s: string): number {
  const n = Number(s);
  if (!/^[0-9]+$/.test(s) || !Number.isSafeInteger(n) || n < 1 || n > 256) {
    throw new Failure(`--threads takes a number of threads from 1 to 256, got ${JSON.stringify(s)}`);
  }
  return n;
}

function verifyReceipt(file: string, verifiers: Verifier[], origin: string | undefined): string {
  const receipt = readJson(file);
  const id = field(receipt, 'id', 'string', file);
  const leafIndex = field(receipt, 'leafIndex', 'size', file);
  const leafHash = hashField(receipt, 'leafHash', file);
  const { checkpoint, signatures } = openCheckpoint(field(receipt, 'checkpoint', 'string', file), verifiers);
  checkOrigin(checkpoint, origin);
  const proof = objectField(receipt, 'inclusionProof', file);
  const proofIndex = field(proof, 'leafIndex', 'size', `${file} inclusionProof`);
  const treeSize = field(proof, 'treeSize', 'size', `${file} inclusionProof`);
  const hashes = hashList(proof, `${file} inclusionProof`);
  if (proofIndex !== leafIndex) {
    throw new Failure(`inclusion proof is for leaf ${proofIndex}, the receipt is for leaf ${leafIndex}`);
  }
  if (treeSize !== checkpoint.size) {
    throw new Failure(
      `inclusion proof is for tree size ${treeSize}, the checkpoint is for size ${checkpoint.size}`,
    );
  }
  if (leafIndex >= checkpoint.size) {
    throw new Failure(`leaf ${leafIndex} is not in a tree of size ${checkpoint.size}`);
  }
  verifyInclusion(leafHash, leafIndex, checkpoint.size, hashes, checkpoint.rootHash);
  return (
    `OK: event ${id} is leaf ${leafIndex} of ${checkpoint.origin} at tree size ${checkpoint.size} ` +
    `(root ${checkpoint.rootHash.toString('base64')}), checkpoint signed by ${signedBy(signatures)}`
  );
}

function verifyConsistencyFiles(
  oldFile: string,
  newFile: string,
  proofFile: string,
  verifiers: Verifier[],
  origin: string | undefined,
): string {
  const older = openCheckpointFile(oldFile, verifiers);
  const newer = openCheckpointFile(newFile, verifiers);
  checkOrigin(older.checkpoint, origin);
  if (older.checkpoint.origin !== newer.checkpoint.origin) {
    throw new Failure(
      `checkpoints are from different logs: ${older.checkpoint.origin} and ${newer.checkpoint.origin}`,
    );
  }
  const proof = readJson(proofFile);
  // The server's ledger.consistencyProof answers { fromSize, toSize, hashes }; both spellings are accepted.
  const oldSize = field(proof, 'fromSize' in proof ? 'fromSize' : 'oldSize', 'size', proofFile);
  const newSize = field(proof, 'toSize' in proof ? 'toSize' : 'newSize', 'size', proofFile);
  const hashes = hashList(proof, proofFile);
  if (oldSize !== older.checkpoint.size || newSize !== newer.checkpoint.size) {
    throw new Failure(
      `proof is for sizes ${oldSize} → ${newSize}, the checkpoints are for ${older.checkpoint.size} → ${newer.checkpoint.size}`,
    );
  }
  if (oldSize > newSize)
    throw new Failure(`the old checkpoint (size ${oldSize}) is larger than the new one (${newSize})`);
  verifyConsistency(oldSize, newSize, hashes, older.checkpoint.rootHash, newer.checkpoint.rootHash);
  return (
    `OK: ${newer.checkpoint.origin} at tree size ${newSize} extends tree size ${oldSize} ` +
    `(checkpoints signed by ${signedBy(older.signatures)} and ${signedBy(newer.signatures)})`
  );
}

function openCheckpointFile(
  file: string,
  verifiers: Verifier[],
): { checkpoint: Checkpoint; signatures: NoteSignature[] } {
  try {
    return openCheckpoint(readFile(file), verifiers);
  } catch (e) {
    if (e instanceof Failure) throw e;
    throw new Failure(`${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function checkOrigin(checkpoint: Checkpoint, origin: string | undefined): void {
  if (origin !== undefined && checkpoint.origin !== origin) {
    throw new Failure(`checkpoint origin is ${checkpoint.origin}, expected ${origin}`);
  }
}

function signedBy(signatures: NoteSignature[]): string {
  return signatures
    .filter((s) => s.verified)
    .map((s) => `${s.name}+${s.keyId}`)
    .join(', ');
}

/** Each `--key` is a verifier key, or a file of them (one per line, `#` comments). */
function loadVerifiers(keys: string[]): Verifier[] {
  if (keys.length === 0) throw new Failure(`at least one --key is required\n${USAGE}`);
  const verifiers: Verifier[] = [];
  for (const key of keys) {
    if (/^[^\s+]+\+[0-9a-fA-F]{8}\+\S+$/.test(key)) {
      verifiers.push(parseKey(key, 'the --key argument'));
      continue;
    }
    const lines = readFile(key)
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    if (lines.length === 0) throw new Failure(`${key}: no verifier key in the file`);
    lines.forEach((line, i) => verifiers.push(parseKey(line, `${key} line ${i + 1}`)));
  }
  return verifiers;
}

function parseKey(s: string, where: string): Verifier {
  try {
    return parseVerifierKey(s);
  } catch (e) {
    throw new Failure(`${where}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function readFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Failure(`cannot read ${file}${code ? ` (${code})` : ''}`);
  }
}

function readJson(file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFile(file));
  } catch (e) {
    if (e instanceof Failure) throw e;
    throw new Failure(`${file} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Failure(`${file} is not a JSON object`);
  return value as Record<string, unknown>;
}

function objectField(o: Record<string, unknown>, name: string, where: string): Record<string, unknown> {
  const v = o[name];
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new Failure(`${where}: "${name}" must be an object`);
  return v as Record<string, unknown>;
}

function field(o: Record<string, unknown>, name: string, kind: 'string', where: string): string;
function field(o: Record<string, unknown>, name: string, kind: 'size', where: string): number;
function field(
  o: Record<string, unknown>,
  name: string,
  kind: 'string' | 'size',
  where: string,
): string | number {
  const v = o[name];
  if (kind === 'string') {
    if (typeof v !== 'string') throw new Failure(`${where}: "${name}" must be a string`);
    return v;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new Failure(`${where}: "${name}" must be a non-negative integer below 2^53`);
  }
  return v;
}

function hashField(o: Record<string, unknown>, name: string, where: string): Buffer {
  const h = decodeHash(o[name]);
  if (!h) throw new Failure(`${where}: "${name}" must be the standard base64 of a ${HASH_SIZE}-byte hash`);
  return h;
}

function hashList(o: Record<string, unknown>, where: string): Buffer[] {
  const list = o.hashes;
  if (!Array.isArray(list)) throw new Failure(`${where}: "hashes" must be an array of base64 hashes`);
  return list.map((item: unknown, i) => {
    const h = decodeHash(item);
    if (!h)
      throw new Failure(`${where}: hashes[${i}] must be the standard base64 of a ${HASH_SIZE}-byte hash`);
    return h;
  });
}

function decodeHash(v: unknown): Buffer | null {
  if (typeof v !== 'string') return null;
  const b = decodeBase64Strict(v);
  return b && b.length === HASH_SIZE ? b : null;
}

const defaultOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

if (require.main === module) {
  process.exitCode = 1; // until main has finished: a run that stops early never passes
  void main(process.argv.slice(2)).then((status) => (process.exitCode = status));
}
