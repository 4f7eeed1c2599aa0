/** Queries of the self-audit: organizations with a ledger, stored nodes by id, alert records. */
import { and, desc, eq, gte, lte } from 'drizzle-orm';
import type { Db } from '../db/client';
import { ledgerAlerts, ledgerHeads, ledgerNodes } from '../db/schema';
import type { NodeId } from '../ledger';
import { uuidv7 } from '../util/uuid';

/** Every organization that has a ledger head. */
export async function organizationsWithLedger(db: Db): Promise<string[]> {
  const rows = await db.select({ id: ledgerHeads.organizationId }).from(ledgerHeads).orderBy(ledgerHeads.organizationId);
  return rows.map((r) => r.id);
}

/**
 * Stored hashes of `ids` (missing ones are absent from the map), keyed `level/index`. The ids of a
 * self-audit batch are contiguous per level, so one index range scan per level reads them.
 */
export async function storedNodes(db: Db, org: string, ids: NodeId[]): Promise<Map<string, Buffer>> {
  const ranges = new Map<number, { lo: number; hi: number }>();
  for (const { level, index } of ids) {
    const r = ranges.get(level);
    if (!r) ranges.set(level, { lo: index, hi: index });
    else {
      r.lo = Math.min(r.lo, index);
      r.hi = Math.max(r.hi, index);
    }
  }
  const out = new Map<string, Buffer>();
  for (const [level, { lo, hi }] of ranges) {
    const rows = await db
      .select({ index: ledgerNodes.index, hash: ledgerNodes.hash })
      .from(ledgerNodes)
      .where(and(eq(ledgerNodes.organizationId, org), eq(ledgerNodes.level, level), gte(ledgerNodes.index, lo), lte(ledgerNodes.index, hi)));
    for (const r of rows) out.set(`${level}/${r.index}`, r.hash);
  }
  return out;
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
