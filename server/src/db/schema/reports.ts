import { jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/**
 * Per-organization settings of the compliance reports (migration 0013): the disclosure rule of the
 * accounting of disclosures (server/src/reports/disclosure-rule.ts). No row = the default rule.
 */
export const reportSettings = pgTable('report_settings', {
  organizationId: uuid().primaryKey(),
  disclosureRule: jsonb().$type<Record<string, unknown>>().notNull(),
  updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  /** Who changed it last (the principal's subject). */
  updatedBy: text().notNull(),
});
