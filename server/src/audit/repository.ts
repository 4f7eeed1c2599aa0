/** Queries of the self-audit: organizations with a ledger, stored nodes by id, alert records. */
import { and, desc, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { ledgerAlerts, ledgerHeads, ledgerNodes } from '../db/schema';
import type { NodeId } from '../ledger';
import { uuidv7 } from '../util/uuid';

/** Every organization that has a ledger head. */
export async function organizationsWithLedger(db: Db): Promise<string[]> {
  const rows = await db.select({ id: ledgerHeads.organizationId }).from(ledgerHeads).orderBy(ledgerHeads.organizationId);
  return rows.map((r) => r.id);
}

/** Stored hashes of `ids` (missing ones are absent from the map), keyed `level/index`. */
export async function storedNodes(db: Db, org: string, ids: NodeId[]): Promise<Map<string, Buffer>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .select({ level: ledgerNodes.level, index: ledgerNodes.index, hash: ledgerNodes.hash })
    .from(ledgerNodes)
    .where(
      and(
        eq(ledgerNodes.organizationId, org),
        sql`(${ledgerNodes.level}, ${ledgerNodes.index}) IN (SELECT * FROM unnest(${sql.param(ids.map((i) => i.level))}::smallint[], ${sql.param(ids.map((i) => i.index))}::bigint[]))`,
      ),
    );
  return new Map(rows.map((r) => [`${r.level}/${r.index}`, r.hash]));
}

/** An alert as stored. */
export type AlertRow = typeof ledgerAlerts.$inferSelect;

/** Records an alert. */
export async function insertAlert(db: Db, alert: Omit<AlertRow, 'id' | 'createdAt'>): Promise<void> {
  await db.insert(ledgerAlerts).values({ ...alert, id: uuidv7(Date.now()) });
}

/** The newest alerts of an organization, newest first. */
export async function recentAlerts(db: Db, org: string, limit: number): Promise<AlertRow[]> {
  return db.select().from(ledgerAlerts).where(eq(ledgerAlerts.organizationId, org)).orderBy(desc(ledgerAlerts.createdAt), desc(ledgerAlerts.id)).limit(limit);
}
