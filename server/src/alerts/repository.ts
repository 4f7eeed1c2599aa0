/** Queries of the alerts: the deduplicating upsert, lifecycle updates, listing, counts, settings. */
import { and, count, desc, eq, inArray, lt, sql, type SQL } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { alertSettings, securityAlerts, type SecurityAlertSeverity, type SecurityAlertStatus } from '../db/schema';
import { replaceIdentifiers } from '../privacy/identifiers';
import { uuidv7 } from '../util/uuid';

/** An alert row. */
export type AlertRow = typeof securityAlerts.$inferSelect;

/** Most event ids an alert keeps (the first ones; `count` keeps counting). */
export const MAX_EVENT_IDS = 100;

/** What one raise adds. */
export interface RaiseRow {
  organizationId: string;
  detector: string;
  subject: string;
  severity: SecurityAlertSeverity;
  title: string;
  count: number;
  eventIds: string[];
  context: Record<string, unknown>;
  at: Date;
}

/**
 * Opens an alert, or adds to the open one (`active` or `acknowledged`) of the same detector and
 * subject, in one statement: the partial unique index settles races between replicas. Event ids
 * are merged without duplicates, first ones kept, at most {@link MAX_EVENT_IDS}; the context is
 * the newest raise's.
 */
export async function upsertOpenAlert(db: Db, r: RaiseRow): Promise<{ row: AlertRow; created: boolean }> {
  const ids = JSON.stringify(r.eventIds.slice(0, MAX_EVENT_IDS));
  const id = uuidv7(r.at.getTime());
  const [row] = await db
    .insert(securityAlerts)
    .values({
      organizationId: r.organizationId,
      id,
      detector: r.detector,
      subject: r.subject,
      severity: r.severity,
      status: 'active',
      title: r.title,
      count: r.count,
      eventIds: sql`${ids}::jsonb`,
      context: r.context,
      firstSeenAt: r.at,
      lastSeenAt: r.at,
      updatedAt: r.at,
    })
    .onConflictDoUpdate({
      target: [securityAlerts.organizationId, securityAlerts.detector, securityAlerts.subject],
      targetWhere: sql`status IN ('active', 'acknowledged')`,
      set: {
        count: sql`${securityAlerts.count} + excluded.count`,
        eventIds: sql`(SELECT coalesce(jsonb_agg(v ORDER BY n), '[]'::jsonb) FROM (
          SELECT v, min(n) AS n FROM jsonb_array_elements(${securityAlerts.eventIds} || excluded.event_ids) WITH ORDINALITY AS e(v, n)
          GROUP BY v ORDER BY min(n) LIMIT ${MAX_EVENT_IDS}) s)`,
        context: sql`excluded.context`,
        lastSeenAt: sql`greatest(${securityAlerts.lastSeenAt}, excluded.last_seen_at)`,
        updatedAt: sql`excluded.updated_at`,
      },
    })
    .returning();
  // The row carries the new id only when it was inserted (an update keeps the open alert's id).
  return { row: row!, created: row!.id === id };
}

/** One alert of an organization. */
export async function findAlert(db: Db, org: string, id: string): Promise<AlertRow | null> {
  const [row] = await db.select().from(securityAlerts).where(and(eq(securityAlerts.organizationId, org), eq(securityAlerts.id, id)));
  return row ?? null;
}

/** A lifecycle change, applied only from the allowed statuses; null when the alert is not in one of them. */
export async function transition(
  db: Db,
  org: string,
  id: string,
  from: SecurityAlertStatus[],
  set: Partial<Pick<AlertRow, 'status' | 'acknowledgedAt' | 'acknowledgedBy' | 'closedAt' | 'closedBy' | 'note' | 'updatedAt'>>,
): Promise<AlertRow | null> {
  const [row] = await db
    .update(securityAlerts)
    .set(set)
    .where(and(eq(securityAlerts.organizationId, org), eq(securityAlerts.id, id), inArray(securityAlerts.status, from)))
    .returning();
  return row ?? null;
}

/** A page of alerts, newest first (by id: UUIDv7 of the time the alert opened). */
export async function listAlerts(
  db: Db,
  org: string,
  q: { statuses?: SecurityAlertStatus[]; detector?: string; before?: string; limit: number },
): Promise<AlertRow[]> {
  const where: SQL[] = [eq(securityAlerts.organizationId, org)];
  if (q.statuses) where.push(inArray(securityAlerts.status, q.statuses));
  if (q.detector) where.push(eq(securityAlerts.detector, q.detector));
  if (q.before) where.push(lt(securityAlerts.id, q.before));
  return db
    .select()
    .from(securityAlerts)
    .where(and(...where))
    .orderBy(desc(securityAlerts.id))
    .limit(q.limit + 1);
}

/** Alert counts by status, detector and severity. */
export async function countAlerts(db: Db, org: string): Promise<Array<{ status: SecurityAlertStatus; detector: string; severity: SecurityAlertSeverity; n: number }>> {
  const rows = await db
    .select({ status: securityAlerts.status, detector: securityAlerts.detector, severity: securityAlerts.severity, n: count() })
    .from(securityAlerts)
    .where(eq(securityAlerts.organizationId, org))
    .groupBy(securityAlerts.status, securityAlerts.detector, securityAlerts.severity);
  return rows.map((r) => ({ ...r, n: Number(r.n) }));
}

/** An organization's stored settings, or null for the defaults. */
export async function readSettings(db: Db, org: string): Promise<{ timeZone: string; thresholds: Record<string, unknown> } | null> {
  const [row] = await db.select().from(alertSettings).where(eq(alertSettings.organizationId, org));
  return row ? { timeZone: row.timeZone, thresholds: row.thresholds } : null;
}

/** Stores an organization's settings. */
export async function writeSettings(db: Db, org: string, timeZone: string, thresholds: Record<string, unknown>): Promise<void> {
  const now = new Date();
  await db
    .insert(alertSettings)
    .values({ organizationId: org, timeZone, thresholds: thresholds as Record<string, Record<string, number>>, updatedAt: now })
    .onConflictDoUpdate({ target: alertSettings.organizationId, set: { timeZone, thresholds: thresholds as Record<string, Record<string, number>>, updatedAt: now } });
}

/**
 * Subject erasure (docs/privacy.md §2): every alert of `org` whose subject names `value`
 * (`<kind>:<value>`) gets `<kind>:<pseudonym>` instead, and every string equal to `value` (or a
 * FHIR reference to it) in its context, and an `acknowledgedBy`/`closedBy` equal to it, become the
 * pseudonym. Run in the erasure's transaction; a repeat finds nothing. Returns how many changed.
 */
export async function pseudonymizeAlertsOf(db: Db | Tx, org: string, value: string, pseudonym: string): Promise<number> {
  const needle = JSON.stringify(value);
  const rows = await db
    .select()
    .from(securityAlerts)
    .where(
      and(
        eq(securityAlerts.organizationId, org),
        sql`(
          (strpos(${securityAlerts.subject}, ':') > 0 AND substr(${securityAlerts.subject}, strpos(${securityAlerts.subject}, ':') + 1) = ${value})
          OR ${securityAlerts.acknowledgedBy} = ${value} OR ${securityAlerts.closedBy} = ${value}
          OR strpos(${securityAlerts.context}::text, ${needle}) > 0 OR strpos(${securityAlerts.context}::text, ${'/' + value + '"'}) > 0
        )`,
      ),
    );
  const replace = new Map([[value, pseudonym]]);
  let changed = 0;
  for (const r of rows) {
    const i = r.subject.indexOf(':');
    const subject = i > 0 && r.subject.slice(i + 1) === value ? `${r.subject.slice(0, i)}:${pseudonym}` : r.subject;
    const context = replaceIdentifiers(r.context, replace) as Record<string, unknown>;
    const acknowledgedBy = r.acknowledgedBy === value ? pseudonym : r.acknowledgedBy;
    const closedBy = r.closedBy === value ? pseudonym : r.closedBy;
    if (subject === r.subject && context === r.context && acknowledgedBy === r.acknowledgedBy && closedBy === r.closedBy) continue;
    const open = r.status === 'active' || r.status === 'acknowledged';
    // At most one open alert per detector and subject (security_alerts_one_open_idx): an open
    // alert already under the pseudonym (left by an earlier erasure of the same subject, the
    // person having triggered the detector again since) absorbs this one, which is closed as
    // merged — renaming it would break the index and retry the erasure forever.
    const [twin] = open && subject !== r.subject ? await db
      .select({ id: securityAlerts.id })
      .from(securityAlerts)
      .where(and(eq(securityAlerts.organizationId, org), eq(securityAlerts.detector, r.detector), eq(securityAlerts.subject, subject), inArray(securityAlerts.status, ['active', 'acknowledged'])))
      .for('update') : [];
    if (twin) {
      const ids = JSON.stringify(r.eventIds);
      await db
        .update(securityAlerts)
        .set({
          count: sql`${securityAlerts.count} + ${r.count}`,
          eventIds: sql`(SELECT coalesce(jsonb_agg(v ORDER BY n), '[]'::jsonb) FROM (
            SELECT v, min(n) AS n FROM jsonb_array_elements(${securityAlerts.eventIds} || ${ids}::jsonb) WITH ORDINALITY AS e(v, n)
            GROUP BY v ORDER BY min(n) LIMIT ${MAX_EVENT_IDS}) s)`,
          firstSeenAt: sql`least(${securityAlerts.firstSeenAt}, ${r.firstSeenAt.toISOString()}::timestamptz)`,
          lastSeenAt: sql`greatest(${securityAlerts.lastSeenAt}, ${r.lastSeenAt.toISOString()}::timestamptz)`,
          updatedAt: new Date(),
        })
        .where(and(eq(securityAlerts.organizationId, org), eq(securityAlerts.id, twin.id)));
    }
    await db
      .update(securityAlerts)
      .set({
        subject,
        context,
        acknowledgedBy,
        closedBy,
        ...(twin ? { status: 'dismissed' as const, closedAt: new Date(), closedBy: 'system:privacy', note: `merged into alert ${twin.id} when its subject was erased`, updatedAt: new Date() } : {}),
      })
      .where(and(eq(securityAlerts.organizationId, org), eq(securityAlerts.id, r.id)));
    changed++;
  }
  return changed;
}
