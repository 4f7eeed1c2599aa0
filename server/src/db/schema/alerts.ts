import { bigint, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/**
 * Findings of the continuous self-audit and the witness check (migration 0004): one row per
 * distinct finding, append-only. `kind` says where (leaf, checkpoint, node, head, witness, bundle).
 */
export const ledgerAlerts = pgTable(
  'ledger_alerts',
  {
    organizationId: uuid().notNull(),
    id: uuid().notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    kind: text().$type<'leaf' | 'checkpoint' | 'bundle' | 'node' | 'head' | 'witness'>().notNull(),
    leafIndex: bigint({ mode: 'number' }),
    treeSize: bigint({ mode: 'number' }),
    reason: text().notNull(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.id] })],
);
