import { bigint, boolean, integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { bytea } from './types';

/** A SIEM or webhook destination of an organization (migration 0014); its secret is sealed. */
export const deliveryDestinations = pgTable(
  'delivery_destinations',
  {
    organizationId: uuid().notNull(),
    id: uuid().notNull(),
    name: text().notNull(),
    kind: text().notNull().$type<'webhook' | 'syslog' | 'splunk_hec'>(),
    url: text().notNull(),
    carries: text().notNull().$type<'all' | 'events' | 'alerts'>(),
    options: jsonb().notNull().$type<Record<string, unknown>>(),
    secretSealed: bytea(),
    secretVersion: integer().notNull(),
    previousSecretSealed: bytea(),
    previousSecretUntil: timestamp({ withTimezone: true, mode: 'date' }),
    enabled: boolean().notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.id] })],
);

/** Where each destination's delivery of the log stands. */
export const deliveryState = pgTable(
  'delivery_state',
  {
    organizationId: uuid().notNull(),
    destinationId: uuid().notNull(),
    nextLeaf: bigint({ mode: 'number' }).notNull(),
    inflightEnd: bigint({ mode: 'number' }),
    deliveredBatches: bigint({ mode: 'number' }).notNull(),
    lastDeliveredAt: timestamp({ withTimezone: true, mode: 'date' }),
    lastError: text(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.destinationId] })],
);

/** Alerts and replayed batches waiting for a destination, in order. */
export const deliveryOutbox = pgTable(
  'delivery_outbox',
  {
    organizationId: uuid().notNull(),
    destinationId: uuid().notNull(),
    seq: bigint({ mode: 'number' }).generatedAlwaysAsIdentity(),
    id: text().notNull(),
    kind: text().notNull().$type<'events' | 'alert'>(),
    firstLeaf: bigint({ mode: 'number' }),
    endLeaf: bigint({ mode: 'number' }),
    payload: jsonb(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.destinationId, t.seq] })],
);

/** Batches that used up their attempts: listed and replayed through the API. */
export const deliveryDeadLetters = pgTable(
  'delivery_dead_letters',
  {
    organizationId: uuid().notNull(),
    destinationId: uuid().notNull(),
    id: text().notNull(),
    kind: text().notNull().$type<'events' | 'alert'>(),
    firstLeaf: bigint({ mode: 'number' }),
    endLeaf: bigint({ mode: 'number' }),
    payload: jsonb(),
    error: text().notNull(),
    attempts: integer().notNull(),
    failedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.destinationId, t.id] })],
);
