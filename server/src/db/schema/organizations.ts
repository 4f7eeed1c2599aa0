import { pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/** Tenants. Every other table leads with `organization_id` (ARCHITECTURE §6, Citus-ready). */
export const organizations = pgTable('organizations', {
  id: uuid().primaryKey(),
  name: text().notNull(),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});
