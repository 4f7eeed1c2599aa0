/**
 * Storage of the per-organization Merkle trees: heads, complete-subtree nodes, signed checkpoints
 * and signing keys. The only module that reads or writes those tables.
 */
import { and, asc, desc, eq, gte, isNull, lte, ne, sql, type SQL } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { checkpoints, ledgerHeads, ledgerNodes, signingKeys } from '../db/schema';
import { EMPTY_ROOT, HASH_SIZE, type NodeId } from '../ledger';

type Conn = Db | Tx;

/** The current head of one organization's tree. */
export interface Head {
  size: number;
  rootHash: Buffer;
  frontier: Buffer[];
}

/** A node to store. */
export type StoredNode = NodeId & { hash: Buffer };

/** A stored checkpoint. */
export interface CheckpointRow {
  treeSize: number;
  rootHash: Buffer;
  note: string;
  keyId: string;
  createdAt: Date;
}

function splitFrontier(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += HASH_SIZE) out.push(buf.subarray(i, i + HASH_SIZE));
  return out;
}

/** Creates the empty tree of a new organization. */
export async function createHead(tx: Conn, org: string): Promise<void> {
  await tx
    .insert(ledgerHeads)
    .values({ organizationId: org, size: 0, rootHash: EMPTY_ROOT, frontier: Buffer.alloc(0) })
    .onConflictDoNothing();
}

/**
 * Locks and reads the head (SELECT … FOR UPDATE): every append in every replica goes through this
 * row lock, so leaf indexes are assigned by exactly one transaction at a time per organization.
 */
export async function lockHead(tx: Tx, org: string): Promise<Head> {
  const rows = await tx
    .select({ size: ledgerHeads.size, rootHash: ledgerHeads.rootHash, frontier: ledgerHeads.frontier })
    .from(ledgerHeads)
    .where(eq(ledgerHeads.organizationId, org))
    .for('update');
  const row = rows[0];
  if (!row) throw new Error(`organization ${org} has no ledger head`);
  return { size: row.size, rootHash: row.rootHash, frontier: splitFrontier(row.frontier) };
}

/** Reads the head without locking. */
export async function readHead(db: Conn, org: string): Promise<Head | null> {
  const rows = await db
    .select({ size: ledgerHeads.size, rootHash: ledgerHeads.rootHash, frontier: ledgerHeads.frontier })
    .from(ledgerHeads)
    .where(eq(ledgerHeads.organizationId, org));
  const row = rows[0];
  return row ? { size: row.size, rootHash: row.rootHash, frontier: splitFrontier(row.frontier) } : null;
}

/** The UPDATE that moves the head forward (a trigger rejects any move backwards). */
export function updateHeadSql(org: string, head: Head): SQL {
  return sql`
    UPDATE ledger_heads SET size = ${head.size}, root_hash = decode(${head.rootHash.toString('hex')}, 'hex'),
      frontier = decode(${Buffer.concat(head.frontier).toString('hex')}, 'hex'), updated_at = now()
    WHERE organization_id = ${org}::uuid`;
}

/** The INSERT of newly completed subtree hashes: one statement of array parameters, any batch size. */
export function insertNodesSql(org: string, nodes: StoredNode[]): SQL {
  return sql`
    INSERT INTO ledger_nodes (organization_id, level, idx, hash)
    SELECT ${org}::uuid, l, i, decode(h, 'hex')
    FROM unnest(${sql.param(nodes.map((n) => n.level))}::smallint[], ${sql.param(nodes.map((n) => n.index))}::int8[],
                ${sql.param(nodes.map((n) => n.hash.toString('hex')))}::text[]) AS t(l, i, h)`;
}

/** Reads the hashes of `ids` in one query, in the same order; throws if any is missing. */
export async function readNodes(db: Conn, org: string, ids: NodeId[]): Promise<Buffer[]> {
  if (ids.length === 0) return [];
  const levels = ids.map((i) => i.level);
  const indexes = ids.map((i) => i.index);
  const rows = await db
    .select({ level: ledgerNodes.level, index: ledgerNodes.index, hash: ledgerNodes.hash })
    .from(ledgerNodes)
    .where(
      and(
        eq(ledgerNodes.organizationId, org),
        sql`(${ledgerNodes.level}, ${ledgerNodes.index}) IN (SELECT * FROM unnest(${sql.param(levels)}::smallint[], ${sql.param(indexes)}::bigint[]))`,
      ),
    );
  const byKey = new Map(rows.map((r) => [`${r.level}/${r.index}`, r.hash]));
  return ids.map((id) => {
    const h = byKey.get(`${id.level}/${id.index}`);
    if (!h) throw new Error(`ledger node ${id.level}/${id.index} of ${org} is missing`);
    return h;
  });
}

/**
 * The head's size and the hashes of `ids` in ONE query (a proof's single round trip); the hashes
 * in the order of `ids`, undefined where no node is stored. `size` is null without a head.
 */
export async function readNodesAndSize(db: Conn, org: string, ids: NodeId[]): Promise<{ size: number | null; hashes: Array<Buffer | undefined> }> {
  const rows = await db
    .select({ size: ledgerHeads.size, level: ledgerNodes.level, index: ledgerNodes.index, hash: ledgerNodes.hash })
    .from(ledgerHeads)
    .leftJoin(
      ledgerNodes,
      and(
        eq(ledgerNodes.organizationId, org),
        sql`(${ledgerNodes.level}, ${ledgerNodes.index}) IN (SELECT * FROM unnest(${sql.param(ids.map((i) => i.level))}::smallint[], ${sql.param(ids.map((i) => i.index))}::bigint[]))`,
      ),
    )
    .where(eq(ledgerHeads.organizationId, org));
  if (rows.length === 0) return { size: null, hashes: ids.map(() => undefined) };
  const byKey = new Map<string, Buffer>();
  for (const r of rows) if (r.hash !== null && r.level !== null && r.index !== null) byKey.set(`${r.level}/${r.index}`, r.hash);
  return { size: rows[0]!.size, hashes: ids.map((id) => byKey.get(`${id.level}/${id.index}`)) };
}

/** The INSERT of a signed checkpoint. */
export function insertCheckpointSql(org: string, c: Omit<CheckpointRow, 'createdAt'>): SQL {
  return sql`
    INSERT INTO checkpoints (organization_id, tree_size, root_hash, note, key_id)
    VALUES (${org}::uuid, ${c.treeSize}, decode(${c.rootHash.toString('hex')}, 'hex'), ${c.note}, ${c.keyId})`;
}

const checkpointColumns = {
  treeSize: checkpoints.treeSize,
  rootHash: checkpoints.rootHash,
  note: checkpoints.note,
  keyId: checkpoints.keyId,
  createdAt: checkpoints.createdAt,
};

/** The newest checkpoint, or null for an empty log. */
export async function latestCheckpoint(db: Conn, org: string): Promise<CheckpointRow | null> {
  const rows = await db
    .select(checkpointColumns)
    .from(checkpoints)
    .where(eq(checkpoints.organizationId, org))
    .orderBy(desc(checkpoints.treeSize))
    .limit(1);
  return rows[0] ?? null;
}

/** The checkpoint stored at exactly `size`, if any. */
export async function checkpointAt(db: Conn, org: string, size: number): Promise<CheckpointRow | null> {
  const rows = await db
    .select(checkpointColumns)
    .from(checkpoints)
    .where(and(eq(checkpoints.organizationId, org), eq(checkpoints.treeSize, size)));
  return rows[0] ?? null;
}

/** Checkpoints with sizes in [from, to], oldest first, at most `limit`. */
export async function listCheckpoints(
  db: Conn,
  org: string,
  from: number,
  to: number,
  limit: number,
): Promise<CheckpointRow[]> {
  return db
    .select(checkpointColumns)
    .from(checkpoints)
    .where(and(eq(checkpoints.organizationId, org), gte(checkpoints.treeSize, from), lte(checkpoints.treeSize, to)))
    .orderBy(asc(checkpoints.treeSize))
    .limit(limit);
}

/** A published verifier key with its validity window. */
export interface SigningKeyRow {
  keyId: string;
  name: string;
  verifierKey: string;
  notBefore: Date;
  notAfter: Date | null;
}

/** Publishes a signing key's verifier key (idempotent). */
export async function registerSigningKey(db: Conn, key: Omit<SigningKeyRow, 'notAfter' | 'notBefore'>): Promise<void> {
  await db
    .insert(signingKeys)
    .values({ ...key, notBefore: new Date(), notAfter: null })
    .onConflictDoNothing();
}

/** Closes the validity window of every key other than `activeKeyId` (rotation). */
export async function retireOtherKeys(db: Conn, activeKeyId: string): Promise<number> {
  const rows = await db
    .update(signingKeys)
    .set({ notAfter: new Date() })
    .where(and(ne(signingKeys.keyId, activeKeyId), isNull(signingKeys.notAfter)))
    .returning({ keyId: signingKeys.keyId });
  return rows.length;
}

/** Every key that ever signed, oldest first. */
export async function listSigningKeys(db: Conn): Promise<SigningKeyRow[]> {
  return db.select().from(signingKeys).orderBy(asc(signingKeys.notBefore));
}
