import { index, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { organizations } from './organizations';
import { bytea } from './types';

/**
 * API keys, each with one role (auth/permissions.ts). Only SHA-256 of the key is stored; `lookupId` (the first
 * 16 hex digits of that hash) finds the row, then the full hash is compared in constant time.
 */
export const apiKeys = pgTable(
  'api_keys',
  {
    organizationId: uuid().notNull().references(() => organizations.id),
    id: uuid().notNull(),
    name: text().notNull(),
    role: text({ enum: ['owner', 'admin', 'auditor', 'compliance_officer', 'developer', 'member', 'producer'] }).notNull(),
    lookupId: text().notNull(),
    keyHash: bytea().notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    revokedAt: timestamp({ withTimezone: true, mode: 'date' }),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.id] }), index('api_keys_lookup_idx').on(t.lookupId)],
);
