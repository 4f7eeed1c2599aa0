/**
 * Read side of the transparency log: checkpoints, inclusion and consistency proofs, leaves with
 * their committed form, and the published keys. Proofs read O(log n) stored nodes in one query.
 */
import type { Database } from '../db/client';
import { AppError } from '../errors';
import {
  formatCheckpoint,
  planConsistency,
  planInclusion,
  planRoot,
  proveConsistency,
  proveInclusion,
  rootAt,
  signNote,
  type Signer,
} from '../ledger';
import * as repo from './repository';

/** A checkpoint as the API returns it. */
export interface CheckpointView {
  origin: string;
  treeSize: number;
  rootHash: string;
  note: string;
}

/** Ledger reads for one deployment. */
export class LedgerService {
  constructor(
    private readonly database: Database,
    /** Null in a process that only verifies (a `worker`): it signs nothing. */
    private readonly signer: Signer | null,
    private readonly origin: string,
  ) {}

  /** The checkpoint origin line of an organization's log (docs/ledger-spec.md §7). */
  originOf(org: string): string {
    return `${this.origin}/${org}`;
  }

  /** Signs a checkpoint note for (size, root). */
  signCheckpoint(org: string, size: number, rootHash: Buffer): string {
    if (!this.signer) throw new AppError('UNAVAILABLE', 'this process has no signing key (AUDIT_ROLE=worker); the api role signs checkpoints');
    return signNote(formatCheckpoint({ origin: this.originOf(org), size, rootHash }), [this.signer]);
  }

  /** The signer's key id in hex ('' without a signer). */
  get keyId(): string {
    return this.signer ? this.signer.keyId.toString('hex') : '';
  }

  /** Current tree size (0 for an empty log). */
  async size(org: string): Promise<number> {
    const head = await repo.readHead(this.database.db, org);
    return head?.size ?? 0;
  }

  /**
   * The latest checkpoint, or one at `size`: the stored one when an append ended there, else a
   * freshly signed note over the root recomputed from stored nodes (a true statement about that
   * prefix of the log).
   */
  async checkpoint(org: string, size?: number): Promise<CheckpointView> {
    const db = this.database.db;
    const current = await this.size(org);
    if (size === undefined) {
      const latest = await repo.latestCheckpoint(db, org);
      return latest ? this.view(org, latest) : this.freshCheckpoint(org, 0);
    }
    if (size > current) throw new AppError('NOT_FOUND', `treeSize ${size} is larger than the log (${current})`);
    const stored = await repo.checkpointAt(db, org, size);
    return stored ? this.view(org, stored) : this.freshCheckpoint(org, size);
  }

  /** The latest checkpoint stored for `org` (signed at commit time), or null: never signs anything. */
  async publishedCheckpoint(org: string): Promise<CheckpointView | null> {
    const latest = await repo.latestCheckpoint(this.database.db, org);
    return latest ? this.view(org, latest) : null;
  }

  private async freshCheckpoint(org: string, size: number): Promise<CheckpointView> {
    const root = await this.rootAt(org, size);
    return { origin: this.originOf(org), treeSize: size, rootHash: root.toString('base64'), note: this.signCheckpoint(org, size, root) };
  }

  private view(org: string, c: repo.CheckpointRow): CheckpointView {
    return { origin: this.originOf(org), treeSize: c.treeSize, rootHash: c.rootHash.toString('base64'), note: c.note };
  }

  /** MTH of the first `size` leaves, from stored nodes. */
  async rootAt(org: string, size: number): Promise<Buffer> {
    return rootAt(size, await repo.readNodes(this.database.db, org, planRoot(size)));
  }

  /** The last head size a proof saw per organization: the guess that makes a proof one query. */
  private readonly lastSize = new Map<string, number>();

  /**
   * Audit path of leaf `index` in the tree of `treeSize` (default: current size). One query reads
   * the head size and the nodes planned for the requested size (or, without one, for the size the
   * last proof saw); only when the log grew in between is the plan read again for the new size.
   */
  async inclusionProof(org: string, index: number, treeSize?: number) {
    let guess = treeSize ?? this.lastSize.get(org) ?? 0;
    for (;;) {
      const plan = index < guess ? [{ level: 0, index }, ...planInclusion(index, guess)] : [];
      const read = await repo.readNodesAndSize(this.database.db, org, plan);
      const current = read.size ?? 0;
      if (this.lastSize.size > 10_000) this.lastSize.clear();
      this.lastSize.set(org, current);
      const size = treeSize ?? current;
      if (size > current) throw new AppError('NOT_FOUND', `treeSize ${size} is larger than the log (${current})`);
      if (index >= size) throw new AppError('NOT_FOUND', `leafIndex ${index} is not in a tree of size ${size}`);
      if (size !== guess) {
        guess = size; // the log grew since the last proof: plan for its size now
        continue;
      }
      const hashes = read.hashes.map((h, i) => {
        if (!h) throw new Error(`ledger node ${plan[i]!.level}/${plan[i]!.index} of ${org} is missing`);
        return h;
      });
      const [leaf, ...path] = hashes;
      return {
        leafIndex: index,
        treeSize: size,
        leafHash: leaf!.toString('base64'),
        hashes: proveInclusion(index, size, path).map((h) => h.toString('base64')),
      };
    }
  }

  /** Consistency proof between two sizes (RFC 9162 §2.1.4). */
  async consistencyProof(org: string, fromSize: number, toSize: number) {
    const current = await this.size(org);
    if (fromSize > toSize) throw new AppError('BAD_REQUEST', 'fromSize must not exceed toSize', [{ path: 'fromSize', message: 'must be <= toSize' }]);
    if (toSize > current) throw new AppError('NOT_FOUND', `toSize ${toSize} is larger than the log (${current})`);
    const hashes = await repo.readNodes(this.database.db, org, planConsistency(fromSize, toSize));
    return {
      fromSize,
      toSize,
      hashes: proveConsistency(fromSize, toSize, hashes).map((h) => h.toString('base64')),
    };
  }

  /** Published verifier keys with validity windows. */
  async keys() {
    const rows = await repo.listSigningKeys(this.database.db);
    return rows.map((k) => ({
      keyId: k.keyId,
      name: k.name,
      verifierKey: k.verifierKey,
      algorithm: 'ed25519' as const,
      notBefore: k.notBefore.toISOString(),
      notAfter: k.notAfter ? k.notAfter.toISOString() : null,
      active: k.keyId === this.keyId,
    }));
  }
}
