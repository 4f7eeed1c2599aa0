/**
 * Queries of the privacy tables (migration 0012) and the erasure UPDATE of events: the only module
 * of server/src/privacy that talks to the database. No value read or written here is ever logged.
 */
import { and, asc, desc, eq, gt, inArray, isNull, lt, or, sql, type SQL } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import {
  events,
  legalHolds,
  privacyErasures,
  privacyKeys,
  privacyPseudonyms,
  privacySettings,
} from '../db/schema';

type Conn = Db | Tx;

/** The rows a raw statement returned (node-postgres and PGlite both answer `{ rows }`). */
function rowsOf<R>(result: unknown): R[] {
  return (result as { rows: R[] }).rows;
}

// ---------------------------------------------------------------------------------------------
// Keys

/** A privacy key version of an organization. */
export interface PrivacyKeyRow {
  version: number;
  secret: Buffer;
  retiredAt: Date | null;
}

/** The active key, or null when the organization has none yet. */
export async function activeKey(db: Conn, org: string): Promise<PrivacyKeyRow | null> {
  const rows = await db
    .select({ version: privacyKeys.version, secret: privacyKeys.secret, retiredAt: privacyKeys.retiredAt })
    .from(privacyKeys)
    .where(and(eq(privacyKeys.organizationId, org), isNull(privacyKeys.retiredAt)))
    .limit(1);
  return rows[0] ?? null;
}

/** One key version, or null. */
export async function keyVersion(db: Conn, org: string, version: number): Promise<PrivacyKeyRow | null> {
  const rows = await db
    .select({ version: privacyKeys.version, secret: privacyKeys.secret, retiredAt: privacyKeys.retiredAt })
    .from(privacyKeys)
    .where(and(eq(privacyKeys.organizationId, org), eq(privacyKeys.version, version)))
    .limit(1);
  return rows[0] ?? null;
}

/** Creates version 1 unless the organization has a key (a concurrent creator wins harmlessly). */
export async function createFirstKey(db: Conn, org: string, secret: Buffer): Promise<void> {
  await db.insert(privacyKeys).values({ organizationId: org, version: 1, secret }).onConflictDoNothing();
}

/** Retires the active key and adds the next version, in one transaction; returns the new version. */
export async function rotateKey(db: Db, org: string, secret: Buffer): Promise<number> {
  return db.transaction(async (tx) => {
    const rows = rowsOf<{ v: number | string | null }>(
      await tx.execute(
        sql`SELECT version AS v FROM privacy_keys WHERE organization_id = ${org} ORDER BY version DESC LIMIT 1 FOR UPDATE`,
      ),
    );
    const next = Number(rows[0]?.v ?? 0) + 1;
    await tx
      .update(privacyKeys)
      .set({ retiredAt: new Date() })
      .where(and(eq(privacyKeys.organizationId, org), isNull(privacyKeys.retiredAt)));
    await tx.insert(privacyKeys).values({ organizationId: org, version: next, secret });
    return next;
  });
}

// ---------------------------------------------------------------------------------------------
// Settings

/** The organization's personal fields, or null for the default list. */
export async function personalFields(db: Conn, org: string): Promise<string[] | null> {
  const rows = await db
    .select({ f: privacySettings.personalFields })
    .from(privacySettings)
    .where(eq(privacySettings.organizationId, org));
  return rows[0]?.f ?? null;
}

/** Sets the organization's personal fields. */
export async function setPersonalFields(db: Conn, org: string, fields: string[], by: string): Promise<void> {
  await db
    .insert(privacySettings)
    .values({ organizationId: org, personalFields: fields, updatedBy: by })
    .onConflictDoUpdate({
      target: privacySettings.organizationId,
      set: { personalFields: fields, updatedBy: by, updatedAt: new Date() },
    });
}

// ---------------------------------------------------------------------------------------------
// Pseudonyms

/** Remembers pseudonym → value pairs (existing ones are kept). */
export async function rememberPseudonyms(
  db: Conn,
  org: string,
  version: number,
  pairs: Array<[string, string]>,
): Promise<void> {
  if (pairs.length === 0) return;
  await db
    .insert(privacyPseudonyms)
    .values(
      pairs.map(([pseudonym, value]) => ({ organizationId: org, pseudonym, keyVersion: version, value })),
    )
    .onConflictDoNothing();
}

/** The values of known pseudonyms. */
export async function valuesOfPseudonyms(
  db: Conn,
  org: string,
  pseudonyms: string[],
): Promise<Map<string, string>> {
  if (pseudonyms.length === 0) return new Map();
  const rows = await db
    .select({ p: privacyPseudonyms.pseudonym, v: privacyPseudonyms.value })
    .from(privacyPseudonyms)
    .where(and(eq(privacyPseudonyms.organizationId, org), inArray(privacyPseudonyms.pseudonym, pseudonyms)));
  return new Map(rows.map((r) => [r.p, r.v]));
}

/** Deletes every pseudonym of `value` (erasure); returns how many. */
export async function deletePseudonymsOf(db: Conn, org: string, value: string): Promise<number> {
  const rows = await db
    .delete(privacyPseudonyms)
    .where(and(eq(privacyPseudonyms.organizationId, org), eq(privacyPseudonyms.value, value)))
    .returning({ p: privacyPseudonyms.pseudonym });
  return rows.length;
}

// ---------------------------------------------------------------------------------------------
// Erasure requests

/** A stored erasure request. */
export type ErasureRow = typeof privacyErasures.$inferSelect;

/** Inserts a new running request. */
export async function insertErasure(db: Conn, row: typeof privacyErasures.$inferInsert): Promise<ErasureRow> {
  const rows = await db.insert(privacyErasures).values(row).returning();
  return rows[0]!;
}

/** One request. */
export async function findErasure(db: Conn, org: string, id: string): Promise<ErasureRow | null> {
  const rows = await db
    .select()
    .from(privacyErasures)
    .where(and(eq(privacyErasures.organizationId, org), eq(privacyErasures.id, id)));
  return rows[0] ?? null;
}

/** The organization's requests, newest first. */
export async function listErasures(db: Conn, org: string, limit: number): Promise<ErasureRow[]> {
  return db
    .select()
    .from(privacyErasures)
    .where(eq(privacyErasures.organizationId, org))
    .orderBy(desc(privacyErasures.requestedAt), desc(privacyErasures.id))
    .limit(limit);
}

/** Running requests whose lease is free (every organization), oldest first. */
export async function claimableErasures(
  db: Conn,
  limit: number,
): Promise<Array<{ organizationId: string; id: string }>> {
  return db
    .select({ organizationId: privacyErasures.organizationId, id: privacyErasures.id })
    .from(privacyErasures)
    .where(
      and(
        eq(privacyErasures.state, 'running'),
        or(isNull(privacyErasures.leaseUntil), lt(privacyErasures.leaseUntil, sql`now()`)),
      ),
    )
    .orderBy(privacyErasures.requestedAt)
    .limit(limit);
}

/**
 * Takes (or renews) the lease of a running request for `owner` for `leaseMs`; null when another
 * owner holds an unexpired lease or the request is not running.
 */
export async function claimErasure(
  db: Conn,
  org: string,
  id: string,
  owner: string,
  leaseMs: number,
): Promise<ErasureRow | null> {
  const rows = await db
    .update(privacyErasures)
    .set({ leaseOwner: owner, leaseUntil: sql`now() + ${`${leaseMs} milliseconds`}::interval` })
    .where(
      and(
        eq(privacyErasures.organizationId, org),
        eq(privacyErasures.id, id),
        eq(privacyErasures.state, 'running'),
        or(
          isNull(privacyErasures.leaseUntil),
          lt(privacyErasures.leaseUntil, sql`now()`),
          eq(privacyErasures.leaseOwner, owner),
        ),
      ),
    )
    .returning();
  return rows[0] ?? null;
}

/** Gives a lease back (the request stays running: a later pass resumes it). */
export async function releaseErasure(db: Conn, org: string, id: string, owner: string): Promise<void> {
  await db
    .update(privacyErasures)
    .set({ leaseOwner: null, leaseUntil: null })
    .where(
      and(
        eq(privacyErasures.organizationId, org),
        eq(privacyErasures.id, id),
        eq(privacyErasures.state, 'running'),
        eq(privacyErasures.leaseOwner, owner),
      ),
    );
}

/** Adds one batch's count to the request's progress. */
export async function recordBatch(db: Conn, org: string, id: string, erased: number): Promise<void> {
  await db
    .update(privacyErasures)
    .set({
      eventsErased: sql`${privacyErasures.eventsErased} + ${erased}`,
      batches: sql`${privacyErasures.batches} + 1`,
    })
    .where(
      and(
        eq(privacyErasures.organizationId, org),
        eq(privacyErasures.id, id),
        eq(privacyErasures.state, 'running'),
      ),
    );
}

/** Marks a request completed and forgets its subject value, in one statement; false if it was not running. */
export async function completeErasure(db: Conn, org: string, id: string): Promise<boolean> {
  const rows = await db
    .update(privacyErasures)
    .set({
      state: 'completed',
      subjectValue: null,
      completedAt: new Date(),
      leaseOwner: null,
      leaseUntil: null,
    })
    .where(
      and(
        eq(privacyErasures.organizationId, org),
        eq(privacyErasures.id, id),
        eq(privacyErasures.state, 'running'),
      ),
    )
    .returning({ id: privacyErasures.id });
  return rows.length > 0;
}

// ---------------------------------------------------------------------------------------------
// The erasure of events

/** Event fields that may be configured as personal, and their columns. */
export const ERASABLE_COLUMNS = {
  principalId: 'principal_id',
  principalType: 'principal_type',
  targetResourceType: 'target_resource_type',
  targetResourceId: 'target_resource_id',
  patientId: 'patient_id',
  outcomeDescription: 'outcome_description',
  correlationId: 'correlation_id',
  sessionContext: 'session_context',
  details: 'details',
} as const;
/** A field that can be erased. */
export type ErasableField = keyof typeof ERASABLE_COLUMNS;

/** Identifier fields: one equal to the subject names it, and is erased wherever it does. */
export const IDENTIFIER_FIELDS = [
  'patientId',
  'principalId',
  'targetResourceId',
  'correlationId',
] as const satisfies readonly ErasableField[];
/** A field that can name a subject. */
export type IdentifierField = (typeof IDENTIFIER_FIELDS)[number];

/** How one erasure pass finds the events still naming the subject. */
export type ErasurePass = { kind: 'identifier'; field: IdentifierField } | { kind: 'readInput' } | { kind: 'alertSubject' };

/**
 * The events a pass matches. Every pass matches only rows it then changes so that they stop
 * matching (the identifier becomes NULL; the details of a recorded read are erased), so repeating
 * a pass until it finds nothing is the whole progress bookkeeping: resumable and idempotent.
 */
function passPredicate(pass: ErasurePass, subject: string): SQL {
  if (pass.kind === 'identifier') return sql`${sql.raw(ERASABLE_COLUMNS[pass.field])} = ${subject}`;
  // Alert events written before their subjects were pseudonymized (docs/alerts.md) name the
  // subject in `details.subject` (`principal:<id>`, `ip:<addr>`) or as a string of the context.
  if (pass.kind === 'alertSubject')
    return sql`action LIKE 'alert.%' AND details IS NOT NULL AND (
    (strpos(details ->> 'subject', ':') > 0 AND substr(details ->> 'subject', strpos(details ->> 'subject', ':') + 1) = ${subject})
    OR strpos((details -> 'context')::text, to_jsonb(${subject}::text)::text) > 0)`;
  // The log's own read events record the filters they were given (api/accountability.ts).
  return sql`action IN ('audit.log.read', 'audit.log.export') AND details IS NOT NULL AND (
    (details -> 'input' -> 'patientIds') ? ${subject} OR (details -> 'input' -> 'principalIds') ? ${subject}
    OR details -> 'input' ->> 'patientId' = ${subject} OR details -> 'input' ->> 'principalId' = ${subject})`;
}

/**
 * Erases, in at most `limit` events of `org` that `pass` matches: every field of `fields`, every
 * identifier equal to the subject, and for a recorded read its details. Values become NULL and
 * their salts are removed; commitments, leaf hashes and tree nodes are untouched (migration 0002's
 * trigger allows exactly this). Returns the ids changed.
 */
export async function eraseBatch(
  db: Conn,
  org: string,
  pass: ErasurePass,
  subject: string,
  fields: readonly ErasableField[],
  limit: number,
): Promise<string[]> {
  const always = new Set<ErasableField>(fields);
  if (pass.kind === 'identifier') always.add(pass.field);
  else always.add('details');
  const sets: SQL[] = [];
  const removed: SQL[] = [sql`${sql.param([...always])}::text[]`];
  for (const [field, column] of Object.entries(ERASABLE_COLUMNS) as Array<[ErasableField, string]>) {
    const col = sql.raw(`e.${column}`);
    if (always.has(field)) sets.push(sql`${sql.raw(column)} = NULL`);
    else if ((IDENTIFIER_FIELDS as readonly string[]).includes(field)) {
      sets.push(sql`${sql.raw(column)} = CASE WHEN ${col} = ${subject} THEN NULL ELSE ${col} END`);
      removed.push(sql`CASE WHEN ${col} = ${subject} THEN ARRAY[${field}]::text[] ELSE ARRAY[]::text[] END`);
    }
  }
  const salts = sql.join([sql`e.salts`, ...removed], sql` - `);
  const result = await db.execute(sql`
    WITH victims AS (
      SELECT recorded_at, id FROM events WHERE organization_id = ${org} AND ${passPredicate(pass, subject)} LIMIT ${limit}
    )
    UPDATE events e SET ${sql.join(sets, sql`, `)}, salts = ${salts}, erased_at = coalesce(e.erased_at, now())
      FROM victims v
     WHERE e.organization_id = ${org} AND e.recorded_at = v.recorded_at AND e.id = v.id
    RETURNING e.id`);
  return rowsOf<{ id: string }>(result).map((r) => r.id);
}

/** Whether any event of `org` names `subject` in an identifier field within [from, to). */
export async function subjectHasEventsIn(
  db: Conn,
  org: string,
  subject: string,
  from: Date | null,
  to: Date | null,
): Promise<boolean> {
  const range: SQL[] = [];
  if (from) range.push(sql` AND recorded_at >= ${from.toISOString()}::timestamptz`);
  if (to) range.push(sql` AND recorded_at < ${to.toISOString()}::timestamptz`);
  const ors = sql.join(
    IDENTIFIER_FIELDS.map((f) => sql`${sql.raw(ERASABLE_COLUMNS[f])} = ${subject}`),
    sql` OR `,
  );
  const rows = rowsOf<{ found: boolean }>(
    await db.execute(
      sql`SELECT EXISTS (SELECT 1 FROM events WHERE organization_id = ${org} AND (${ors})${sql.join(range, sql``)}) AS found`,
    ),
  );
  return rows[0]?.found === true;
}

// ---------------------------------------------------------------------------------------------
// Legal holds

/** A stored hold. */
export type HoldRow = typeof legalHolds.$inferSelect;

/** Inserts a hold. */
export async function insertHold(db: Conn, row: typeof legalHolds.$inferInsert): Promise<HoldRow> {
  const rows = await db.insert(legalHolds).values(row).returning();
  return rows[0]!;
}

/** The organization's holds (active only, or all), newest first. */
export async function listHolds(
  db: Conn,
  org: string,
  activeOnly: boolean,
  limit = 1000,
): Promise<HoldRow[]> {
  const where = [eq(legalHolds.organizationId, org)];
  if (activeOnly) where.push(isNull(legalHolds.releasedAt));
  return db
    .select()
    .from(legalHolds)
    .where(and(...where))
    .orderBy(desc(legalHolds.placedAt), desc(legalHolds.id))
    .limit(limit);
}

/** Releases an active hold; null when there is no active hold with that id. */
export async function releaseHold(db: Conn, org: string, id: string, by: string): Promise<HoldRow | null> {
  const rows = await db
    .update(legalHolds)
    .set({ releasedAt: new Date(), releasedBy: by })
    .where(and(eq(legalHolds.organizationId, org), eq(legalHolds.id, id), isNull(legalHolds.releasedAt)))
    .returning();
  return rows[0] ?? null;
}

/** One hold. */
export async function findHold(db: Conn, org: string, id: string): Promise<HoldRow | null> {
  const rows = await db
    .select()
    .from(legalHolds)
    .where(and(eq(legalHolds.organizationId, org), eq(legalHolds.id, id)));
  return rows[0] ?? null;
}

// ---------------------------------------------------------------------------------------------
// Subject export

/**
 * The next page of events of `org` about `subject` (its identifier field, or a target resource
 * id equal to it) with leaf indexes in (after, size), in leaf order. The scan walks the
 * (organization_id, leaf_index) index forward from the cursor, so the whole export is one pass.
 */
export async function subjectEventPage(
  db: Conn,
  org: string,
  field: IdentifierField,
  subject: string,
  after: number,
  size: number,
  limit: number,
) {
  const column = sql.raw(ERASABLE_COLUMNS[field]);
  const about =
    field === 'targetResourceId'
      ? sql`${column} = ${subject}`
      : sql`(${column} = ${subject} OR target_resource_id = ${subject})`;
  return db
    .select()
    .from(events)
    .where(
      and(eq(events.organizationId, org), gt(events.leafIndex, after), lt(events.leafIndex, size), about),
    )
    .orderBy(asc(events.leafIndex))
    .limit(limit);
}

/**
 * Erases `fields` (values and salts) of the events of `org` with the given ids, and records the
 * erasure time (retention). Returns the ids changed.
 */
export async function eraseEventsById(db: Conn, org: string, ids: string[], fields: readonly ErasableField[]): Promise<string[]> {
  if (ids.length === 0 || fields.length === 0) return [];
  const sets = fields.map((f) => sql`${sql.raw(ERASABLE_COLUMNS[f])} = NULL`);
  const result = await db.execute(sql`
    UPDATE events e SET ${sql.join(sets, sql`, `)}, salts = e.salts - ${sql.param([...fields])}::text[], erased_at = coalesce(e.erased_at, now())
     WHERE e.organization_id = ${org} AND e.id = ANY(${sql.param(ids)}::uuid[])
    RETURNING e.id`);
  return rowsOf<{ id: string }>(result).map((r) => r.id);
}
