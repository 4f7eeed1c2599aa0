/**
 * Queries of the delivery tables (migration 0014): the only module of server/src/delivery that
 * talks to the database. Sealed secrets pass through here; they are never logged.
 */
import { and, asc, desc, eq, inArray, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { deliveryDeadLetters, deliveryDestinations, deliveryOutbox, deliveryState } from '../db/schema';

type Conn = Db | Tx;

/** A destination row. */
export type DestinationRow = typeof deliveryDestinations.$inferSelect;
/** A delivery cursor. */
export type StateRow = typeof deliveryState.$inferSelect;
/** An outbox item. */
export type OutboxRow = typeof deliveryOutbox.$inferSelect;
/** A dead letter. */
export type DeadLetterRow = typeof deliveryDeadLetters.$inferSelect;

/** Inserts a destination and its cursor (starting at `nextLeaf`). */
export async function insertDestination(db: Db, row: typeof deliveryDestinations.$inferInsert, nextLeaf: number): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.insert(deliveryDestinations).values(row);
    await tx.insert(deliveryState).values({ organizationId: row.organizationId, destinationId: row.id, nextLeaf, deliveredBatches: 0 });
  });
}

/** One destination, or null. */
export async function destination(db: Conn, org: string, id: string): Promise<DestinationRow | null> {
  const rows = await db.select().from(deliveryDestinations).where(and(eq(deliveryDestinations.organizationId, org), eq(deliveryDestinations.id, id)));
  return rows[0] ?? null;
}

/** An organization's destinations, oldest first. */
export async function destinations(db: Conn, org: string): Promise<DestinationRow[]> {
  return db.select().from(deliveryDestinations).where(eq(deliveryDestinations.organizationId, org)).orderBy(asc(deliveryDestinations.createdAt), asc(deliveryDestinations.id));
}

/** Every enabled destination with its cursor (the sweep). */
export async function enabledWithState(db: Conn): Promise<Array<{ d: DestinationRow; s: StateRow }>> {
  const rows = await db
    .select({ d: deliveryDestinations, s: deliveryState })
    .from(deliveryDestinations)
    .innerJoin(deliveryState, and(eq(deliveryState.organizationId, deliveryDestinations.organizationId), eq(deliveryState.destinationId, deliveryDestinations.id)))
    .where(eq(deliveryDestinations.enabled, true));
  return rows;
}

/** Changes a destination; resolves with whether it exists. */
export async function updateDestination(db: Conn, org: string, id: string, set: Partial<typeof deliveryDestinations.$inferInsert>): Promise<boolean> {
  const rows = await db
    .update(deliveryDestinations)
    .set({ ...set, updatedAt: new Date() })
    .where(and(eq(deliveryDestinations.organizationId, org), eq(deliveryDestinations.id, id)))
    .returning({ id: deliveryDestinations.id });
  return rows.length > 0;
}

/** Deletes a destination with its cursor, outbox and dead letters. */
export async function deleteDestination(db: Conn, org: string, id: string): Promise<boolean> {
  const rows = await db.delete(deliveryDestinations).where(and(eq(deliveryDestinations.organizationId, org), eq(deliveryDestinations.id, id))).returning({ id: deliveryDestinations.id });
  return rows.length > 0;
}

/** A destination's cursor. */
export async function state(db: Conn, org: string, id: string): Promise<StateRow | null> {
  const rows = await db.select().from(deliveryState).where(and(eq(deliveryState.organizationId, org), eq(deliveryState.destinationId, id)));
  return rows[0] ?? null;
}

/** Moves a destination's cursor. */
export async function updateState(db: Conn, org: string, id: string, set: Partial<typeof deliveryState.$inferInsert>): Promise<void> {
  await db.update(deliveryState).set(set).where(and(eq(deliveryState.organizationId, org), eq(deliveryState.destinationId, id)));
}

/** The oldest outbox item of a destination, or null. */
export async function firstOutbox(db: Conn, org: string, id: string): Promise<OutboxRow | null> {
  const rows = await db
    .select()
    .from(deliveryOutbox)
    .where(and(eq(deliveryOutbox.organizationId, org), eq(deliveryOutbox.destinationId, id)))
    .orderBy(asc(deliveryOutbox.seq))
    .limit(1);
  return rows[0] ?? null;
}

/** Adds items to destinations' outboxes. */
export async function addOutbox(db: Conn, rows: Array<typeof deliveryOutbox.$inferInsert>): Promise<void> {
  if (rows.length > 0) await db.insert(deliveryOutbox).values(rows);
}

/** Removes one outbox item. */
export async function removeOutbox(db: Conn, org: string, id: string, seq: number): Promise<void> {
  await db.delete(deliveryOutbox).where(and(eq(deliveryOutbox.organizationId, org), eq(deliveryOutbox.destinationId, id), eq(deliveryOutbox.seq, seq)));
}

/** Outbox items per destination (the sweep's backlog check). */
export async function outboxCounts(db: Conn): Promise<Map<string, number>> {
  const rows = await db.select({ id: deliveryOutbox.destinationId, n: sql<number>`count(*)::int` }).from(deliveryOutbox).groupBy(deliveryOutbox.destinationId);
  return new Map(rows.map((r) => [r.id, Number(r.n)]));
}

/** Records a dead letter (a replayed batch that fails again replaces its former letter). */
export async function addDeadLetter(db: Conn, row: typeof deliveryDeadLetters.$inferInsert): Promise<void> {
  await db
    .insert(deliveryDeadLetters)
    .values(row)
    .onConflictDoUpdate({
      target: [deliveryDeadLetters.organizationId, deliveryDeadLetters.destinationId, deliveryDeadLetters.id],
      set: { error: row.error, attempts: row.attempts, failedAt: new Date() },
    });
}

/** A destination's dead letters, newest first. */
export async function deadLetters(db: Conn, org: string, id: string, limit: number): Promise<DeadLetterRow[]> {
  return db
    .select()
    .from(deliveryDeadLetters)
    .where(and(eq(deliveryDeadLetters.organizationId, org), eq(deliveryDeadLetters.destinationId, id)))
    .orderBy(desc(deliveryDeadLetters.failedAt), asc(deliveryDeadLetters.id))
    .limit(limit);
}

/**
 * Moves dead letters (the given ids, or all) back into the outbox, in their original order
 * (events by leaf, then alerts); resolves with how many.
 */
export async function replayDeadLetters(db: Db, org: string, id: string, ids: string[] | null): Promise<number> {
  return db.transaction(async (tx) => {
    const where = and(eq(deliveryDeadLetters.organizationId, org), eq(deliveryDeadLetters.destinationId, id), ...(ids ? [inArray(deliveryDeadLetters.id, ids)] : []));
    const letters = await tx.delete(deliveryDeadLetters).where(where).returning();
    letters.sort((a, b) => (a.firstLeaf ?? Infinity) - (b.firstLeaf ?? Infinity) || a.failedAt.getTime() - b.failedAt.getTime());
    await addOutbox(
      tx,
      letters.map((l) => ({ organizationId: org, destinationId: id, id: l.id, kind: l.kind, firstLeaf: l.firstLeaf, endLeaf: l.endLeaf, payload: l.payload })),
    );
    return letters.length;
  });
}
