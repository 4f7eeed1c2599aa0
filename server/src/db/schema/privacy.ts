import { bigint, integer, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { bytea } from './types';

/** Per-organization secrets of keyed hashes and pseudonyms (migration 0012), one active version. */
export const privacyKeys = pgTable(
  'privacy_keys',
  {
    organizationId: uuid().notNull(),
    version: integer().notNull(),
    secret: bytea().notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    retiredAt: timestamp({ withTimezone: true, mode: 'date' }),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.version] })],
);

/** Which event fields are personal, per organization (absent: the default list). */
export const privacySettings = pgTable('privacy_settings', {
  organizationId: uuid().primaryKey(),
  personalFields: text().array().notNull(),
  updatedBy: text().notNull(),
  updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

/** Pseudonyms shown to callers without the right to see identifiers; deleted by erasure. */
export const privacyPseudonyms = pgTable(
  'privacy_pseudonyms',
  {
    organizationId: uuid().notNull(),
    pseudonym: text().notNull(),
    keyVersion: integer().notNull(),
    value: text().notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.pseudonym] })],
);

/** Erasure requests; `subjectValue` is held only while the request runs. */
export const privacyErasures = pgTable(
  'privacy_erasures',
  {
    organizationId: uuid().notNull(),
    id: uuid().notNull(),
    subjectField: text().notNull(),
    subjectHash: text().notNull(),
    keyVersion: integer().notNull(),
    subjectValue: text(),
    fields: text().array().notNull(),
    reason: text().notNull(),
    state: text().$type<'running' | 'completed'>().notNull(),
    requestedBy: text().notNull(),
    requestedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    completedAt: timestamp({ withTimezone: true, mode: 'date' }),
    eventsErased: bigint({ mode: 'number' }).notNull().default(0),
    batches: integer().notNull().default(0),
    leaseOwner: text(),
    leaseUntil: timestamp({ withTimezone: true, mode: 'date' }),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.id] })],
);

/** Legal holds by organization, subject (keyed hash) or recorded-at range; released once. */
export const legalHolds = pgTable(
  'legal_holds',
  {
    organizationId: uuid().notNull(),
    id: uuid().notNull(),
    scope: text().$type<'organization' | 'subject' | 'timeRange'>().notNull(),
    subjectField: text(),
    subjectHash: text(),
    keyVersion: integer(),
    rangeFrom: timestamp({ withTimezone: true, mode: 'date' }),
    rangeTo: timestamp({ withTimezone: true, mode: 'date' }),
    reason: text().notNull(),
    placedBy: text().notNull(),
    placedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    releasedBy: text(),
    releasedAt: timestamp({ withTimezone: true, mode: 'date' }),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.id] })],
);

/** Retention policy per organization and data classification (`*`: the fallback). */
export const retentionPolicies = pgTable(
  'retention_policies',
  {
    organizationId: uuid().notNull(),
    dataClassification: text().notNull(),
    archiveAfterDays: integer(),
    eraseAfterDays: integer(),
    updatedBy: text().notNull(),
    updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.dataClassification] })],
);

/** Archives written by retention runs: a verifiable bundle of leaves [startLeaf, endLeaf). */
export const retentionArchives = pgTable(
  'retention_archives',
  {
    organizationId: uuid().notNull(),
    id: uuid().notNull(),
    startLeaf: bigint({ mode: 'number' }).notNull(),
    endLeaf: bigint({ mode: 'number' }).notNull(),
    events: bigint({ mode: 'number' }).notNull(),
    destination: text().notNull(),
    objectName: text().notNull(),
    sha256: text().notNull(),
    bytes: bigint({ mode: 'number' }).notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.id] })],
);

/** Per organization: leaves below `archivedThrough` are archived, below `droppedThrough` may be gone. */
export const retentionState = pgTable('retention_state', {
  organizationId: uuid().primaryKey(),
  archivedThrough: bigint({ mode: 'number' }).notNull().default(0),
  droppedThrough: bigint({ mode: 'number' }).notNull().default(0),
  updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});
