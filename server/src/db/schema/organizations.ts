import { pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/** Tenants. Every other table leads with `organization_id` (docs/architecture.md §8, Citus-ready). */
export const organizations = pgTable('organizations', {
  id: uuid().primaryKey(),
  name: text().notNull(),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});
