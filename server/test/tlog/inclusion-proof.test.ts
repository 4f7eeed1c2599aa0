/**
 * Inclusion proofs read the head size and the planned nodes in one query, planned for the size the
 * previous proof saw. Whatever that guess, a proof must be of the requested size (default: the
 * current one, even when another replica appended meanwhile), verify against that checkpoint's
 * root, and refuse an index or size outside the log with the same 404s.
 */
import { parseVerifierKey, openCheckpoint, verifyInclusion } from '../../src/ledger';
import { LedgerService } from '../../src/tlog/service';
import { AppError } from '../../src/errors';
import { backends } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

const b = (s: string) => Buffer.from(s, 'base64');

describe.each(backends())('inclusion proofs on %s', (backend) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(backend);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  async function append(n: number) {
    const inputs = Array.from({ length: n }, (_, i) => ({ action: 'data.read', status: 'success' as const, dataClassification: 'INTERNAL' as const, principalId: `p-${i}` }));
    return Promise.all(srv.runtime.ingest.append(srv.organizationId, inputs));
  }

  async function checkProof(ledger: LedgerService, index: number, treeSize: number | undefined, expectedSize: number) {
    const org = srv.organizationId;
    const proof = await ledger.inclusionProof(org, index, treeSize);
    expect(proof.treeSize).toBe(expectedSize);
    const cp = await srv.runtime.services.ledger.checkpoint(org, expectedSize);
    const opened = openCheckpoint(cp.note, [parseVerifierKey(srv.verifierKey)]);
    expect(opened.checkpoint.size).toBe(expectedSize);
    verifyInclusion(b(proof.leafHash), index, expectedSize, proof.hashes.map(b), opened.checkpoint.rootHash);
  }

  it('proves at the current size whatever size the previous proof saw, and at any requested size', async () => {
    const org = srv.organizationId;
    // A second reader, as another replica would be: its last seen size goes stale as the log grows.
    const other = new LedgerService(srv.runtime.database, null, 'test.audit');
    const first = await append(3);
    const base = first[0]!.leafIndex;
    let size = first.at(-1)!.treeSize;
    await checkProof(other, base + 1, undefined, size); // nothing seen yet
    await checkProof(other, base + 2, undefined, size); // the guess is right: one query
    const more = await append(5);
    size = more.at(-1)!.treeSize;
    await checkProof(other, base + 1, undefined, size); // stale guess, index inside it
    await append(2);
    size += 2;
    await checkProof(other, size - 1, undefined, size); // stale guess, index past it
    for (const t of [base + 1, base + 2, base + 6, size]) await checkProof(other, base, t, t);
    await expect(other.inclusionProof(org, size)).rejects.toThrow(new AppError('NOT_FOUND', `leafIndex ${size} is not in a tree of size ${size}`));
    await expect(other.inclusionProof(org, 0, size + 1)).rejects.toThrow(new AppError('NOT_FOUND', `treeSize ${size + 1} is larger than the log (${size})`));
    await expect(other.inclusionProof(org, 5, 5)).rejects.toThrow(new AppError('NOT_FOUND', 'leafIndex 5 is not in a tree of size 5'));
    // An organization without a log: the same 404 as an empty one.
    await expect(other.inclusionProof('00000000-0000-4000-8000-000000000000', 0)).rejects.toThrow(new AppError('NOT_FOUND', 'leafIndex 0 is not in a tree of size 0'));
  });
  it('reads one statement per proof while the log does not grow, two when it grew since the last proof', async () => {
    // Counts the statements a LedgerService sends: every query starts at db.select/execute.
    let statements = 0;
    const real = srv.runtime.database;
    const db = new Proxy(real.db, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if ((prop === 'select' || prop === 'execute') && typeof v === 'function') {
          return (...args: unknown[]) => {
            statements++;
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return v;
      },
    });
    const counted = new LedgerService({ ...real, db }, null, 'test.audit');
    const first = await append(4);
    const base = first[0]!.leafIndex;
    const size = first.at(-1)!.treeSize;
    await counted.inclusionProof(srv.organizationId, base); // learns the size
    const count = async (index: number, treeSize?: number) => {
      statements = 0;
      const proof = await counted.inclusionProof(srv.organizationId, index, treeSize);
      return { statements, treeSize: proof.treeSize };
    };
    expect(await count(base + 1)).toEqual({ statements: 1, treeSize: size });
    expect(await count(base + 2, size)).toEqual({ statements: 1, treeSize: size });
    expect(await count(base, size - 1)).toEqual({ statements: 1, treeSize: size - 1 });
    await append(1);
    expect(await count(base + 3)).toEqual({ statements: 2, treeSize: size + 1 }); // grew: planned again
    expect(await count(base + 3)).toEqual({ statements: 1, treeSize: size + 1 });
  });
});
