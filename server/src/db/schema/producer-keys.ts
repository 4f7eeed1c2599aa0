import { pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { bytea } from './types';

/**
 * Ed25519 public keys producers sign their events with (migration 0005), per organization.
 * Revoked once at most, never deleted, so old signatures stay checkable.
 */
export const producerKeys = pgTable(
  'producer_keys',
  {
    organizationId: uuid().notNull(),
    keyId: text().notNull(),
    name: text().notNull(),
    /** The raw 32-byte Ed25519 public key. */
    publicKey: bytea().notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    revokedAt: timestamp({ withTimezone: true, mode: 'date' }),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.keyId] })],
);
