import { bigint, pgTable, primaryKey, smallint, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { bytea } from './types';

/**
 * One row per organization: the current tree size, root and frontier (the hashes of the complete
 * subtrees that make up [0, size)), locked with SELECT … FOR UPDATE by every append so the tree
 * can never fork across replicas (docs/architecture.md §3).
 */
export const ledgerHeads = pgTable('ledger_heads', {
  organizationId: uuid().primaryKey(),
  size: bigint({ mode: 'number' }).notNull(),
  rootHash: bytea().notNull(),
  /** Concatenated 32-byte frontier hashes, largest subtree first. */
  frontier: bytea().notNull(),
  updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

/**
 * Hashes of every complete aligned subtree: (level L, index i) covers leaves [i·2^L, (i+1)·2^L).
 * Level 0 holds the leaf hashes. Any inclusion or consistency proof reads O(log n) of these rows.
 */
export const ledgerNodes = pgTable(
  'ledger_nodes',
  {
    organizationId: uuid().notNull(),
    level: smallint().notNull(),
    index: bigint('idx', { mode: 'number' }).notNull(),
    hash: bytea().notNull(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.level, t.index] })],
);

/** Every signed checkpoint, one per committed append (C2SP tlog-checkpoint signed notes). */
export const checkpoints = pgTable(
  'checkpoints',
  {
    organizationId: uuid().notNull(),
    treeSize: bigint({ mode: 'number' }).notNull(),
    rootHash: bytea().notNull(),
    note: text().notNull(),
    keyId: text().notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.treeSize] })],
);

/** Public keys that have signed checkpoints, with validity windows (rotation never invalidates). */
export const signingKeys = pgTable('signing_keys', {
  keyId: text().primaryKey(),
  name: text().notNull(),
  verifierKey: text().notNull(),
  notBefore: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
  notAfter: timestamp({ withTimezone: true, mode: 'date' }),
});

/** Idempotency keys: unique per organization, pointing at the event they first created. */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    organizationId: uuid().notNull(),
    key: text().notNull(),
    eventId: uuid().notNull(),
    recordedAt: timestamp({ withTimezone: true, mode: 'date', precision: 3 }).notNull(),
    leafIndex: bigint({ mode: 'number' }).notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.key] })],
);

