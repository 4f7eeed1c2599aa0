import { bigint, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { bytea } from './types';

/**
 * Audit events, one row per ledger leaf. Range-partitioned by month on `recorded_at`
 * (migration 0002 creates the partitioned table; Drizzle cannot express partitioning). Value
 * columns may be nulled by the erasure path only; commitments and the leaf hash never change.
 */
export const events = pgTable(
  'events',
  {
    organizationId: uuid().notNull(),
    id: uuid().notNull(),
    recordedAt: timestamp({ withTimezone: true, mode: 'date', precision: 3 }).notNull(),
    leafIndex: bigint({ mode: 'number' }).notNull(),
    leafHash: bytea().notNull(),
    /** Read as text: it may hold years below 100, which Date parsing gets wrong (db/timestamps.ts). */
    timestamp: timestamp({ withTimezone: true, mode: 'string', precision: 3 }),
    action: text(),
    status: text(),
    principalId: text(),
    principalType: text(),
    targetResourceType: text(),
    targetResourceId: text(),
    patientId: text(),
    outcomeDescription: text(),
    dataClassification: text(),
    correlationId: text(),
    sessionContext: jsonb(),
    retentionPolicy: text(),
    eventVersion: text(),
    details: jsonb(),
    idempotencyKey: text(),
    /** field name → lower-case hex commitment (docs/ledger-spec.md §4). */
    commitments: jsonb().$type<Record<string, string>>().notNull(),
    /** field name → base64 salt; an erased field has no entry. */
    salts: jsonb().$type<Record<string, string>>().notNull(),
    erasedAt: timestamp({ withTimezone: true, mode: 'date' }),
    /** Producer key that signed the event as sent (migration 0005), if any. */
    producerKeyId: text(),
    /** Standard base64 Ed25519 signature over the JCS of the event as sent; immutable. */
    producerSignature: text(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.recordedAt, t.id] })],
);
