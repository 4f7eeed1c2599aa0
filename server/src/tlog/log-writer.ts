/**
 * The write side of an organization's log: the only code that writes the ledger tables
 * (`ledger_heads`, `ledger_nodes`, `checkpoints`) during an append, always inside the caller's
 * append transaction.
 *
 * An append is three steps, all in one transaction:
 * 1. {@link LogWriter.lock} takes the organization's head row lock (SELECT … FOR UPDATE), so leaf
 *    indexes are assigned by one transaction at a time across every replica;
 * 2. the caller places its leaves at `head.size`, `head.size + 1`, … and builds the rows that
 *    reference them (events, idempotency keys);
 * 3. {@link LogWriter.append} extends the tree, signs the checkpoint and writes the new nodes, the
 *    checkpoint and the head together with the caller's rows in ONE statement (data-modifying CTEs):
 *    with BEGIN, the lock and COMMIT that is four round trips per batch.
 */
import { sql, type SQL } from 'drizzle-orm';
import type { Tx } from '../db/client';
import { appendLeaves, type NodeId } from '../ledger';
import * as repo from './repository';

/** Signs checkpoints of an organization's log (the {@link LedgerService} in the server). */
export interface CheckpointSigner {
  /** The signed-note checkpoint for (size, root) of the organization's log. */
  signCheckpoint(org: string, size: number, rootHash: Buffer): string;
  /** The signing key's id in hex, stored beside each checkpoint. */
  readonly keyId: string;
}

/** The locked head of a log, as {@link LogWriter.lock} read it. */
export type LockedHead = repo.Head;

/** What {@link LogWriter.append} wrote. */
export interface AppendedLog {
  /** The new tree size. */
  size: number;
  /** The new root hash. */
  root: Buffer;
  /** The signed checkpoint at the new size. */
  note: string;
  /** Every node the append completed (leaves and interior nodes). */
  nodes: Array<NodeId & { hash: Buffer }>;
  /** The head before the append (its frontier completes every new leaf's audit path). */
  before: LockedHead;
}

/** Appends leaves to organizations' logs inside append transactions. */
export class LogWriter {
  constructor(private readonly signer: CheckpointSigner) {}

  /** Locks and reads the organization's head (the append's serialization point). */
  lock(tx: Tx, org: string): Promise<LockedHead> {
    return repo.lockHead(tx, org);
  }

  /** The newest signed checkpoint note ('' for an empty log), for an append that added nothing. */
  async latestNote(tx: Tx, org: string): Promise<string> {
    return (await repo.latestCheckpoint(tx, org))?.note ?? '';
  }

  /**
   * Appends `leafHashes` at `head.size`…, signs the new checkpoint and writes nodes, checkpoint and
   * head, together with `rows` (the caller's INSERTs of the leaves' own rows), in one statement.
   * @param head the head returned by {@link lock} in this transaction.
   * @param rows INSERT statements (no RETURNING needed) that run as CTEs of the same statement.
   */
  async append(tx: Tx, org: string, head: LockedHead, leafHashes: Buffer[], rows: SQL[]): Promise<AppendedLog> {
    if (leafHashes.length === 0) throw new RangeError('append needs at least one leaf');
    const appended = appendLeaves(head.size, head.frontier, leafHashes);
    const note = this.signer.signCheckpoint(org, appended.size, appended.root);
    const writes = [
      ...rows,
      repo.insertNodesSql(org, appended.nodes),
      repo.insertCheckpointSql(org, { treeSize: appended.size, rootHash: appended.root, note, keyId: this.signer.keyId }),
    ];
    await tx.execute(
      sql`WITH ${sql.join(
        writes.map((w, i) => sql`${sql.raw(`w${i}`)} AS (${w})`),
        sql`, `,
      )} ${repo.updateHeadSql(org, { size: appended.size, rootHash: appended.root, frontier: appended.frontier })}`,
    );
    return { size: appended.size, root: appended.root, note, nodes: appended.nodes, before: head };
  }
}
