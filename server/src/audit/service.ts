/**
 * The self-audit's findings for the API: what the worker's re-verification recorded in
 * `ledger_alerts` (docs/verification.md §8).
 */
import type { Database } from '../db/client';
import type { ledgerAlerts } from '../db/schema';
import { recentAlerts } from './repository';

/** A self-audit finding as the API returns it. */
export interface AlertView {
  id: string;
  createdAt: string;
  kind: (typeof ledgerAlerts.$inferSelect)['kind'];
  leafIndex: number | null;
  treeSize: number | null;
  reason: string;
}

/** Reads self-audit findings. */
export class AuditService {
  constructor(private readonly database: Database) {}

  /** The newest self-audit findings of an organization, newest first. */
  async alerts(org: string, limit: number): Promise<AlertView[]> {
    const rows = await recentAlerts(this.database.db, org, limit);
    return rows.map((a) => ({
      id: a.id,
      createdAt: a.createdAt.toISOString(),
      kind: a.kind,
      leafIndex: a.leafIndex,
      treeSize: a.treeSize,
      reason: a.reason,
    }));
  }
}
