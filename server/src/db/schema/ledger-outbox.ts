import { bigint, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/**
 * Events waiting for a process that holds the signing key to append them (migration 0017,
 * docs/jobs.md "Ledger outbox"). Deleted in the transaction that appends them.
 */
export const ledgerOutbox = pgTable('ledger_outbox', {
  id: bigint({ mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  organizationId: uuid().notNull(),
  source: text().notNull(),
  event: jsonb().$type<Record<string, unknown>>(),
  dedupeKey: text(),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  claimedBy: uuid(),
  claimedUntil: timestamp({ withTimezone: true, mode: 'date' }),
  attempts: integer().notNull().default(0),
  failedAt: timestamp({ withTimezone: true, mode: 'date' }),
  errorCode: text(),
});
