/**
 * Queries of the compliance reports: keyset pages of one patient's or one principal's events in
 * (recorded_at, id) order, bounded by a signed checkpoint's tree size, and the per-organization
 * report settings. Each page is one bounded query on the (organization_id, patient_id|principal_id,
 * recorded_at, id) index, so a report's cost grows with the rows it lists, not with the log.
 */
import { and, asc, eq, gte, lt, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client';
import { parseTimestamptz } from '../db/timestamps';
import { events, organizations, reportSettings } from '../db/schema';
import { formatRecordedAt } from '../ledger';

/** The columns a report reads (never commitments or salts). */
export interface ReportEventRow {
  id: string;
  recordedAt: Date;
  leafIndex: number;
  timestamp: string | null;
  action: string | null;
  status: string | null;
  principalId: string | null;
  principalType: string | null;
  targetResourceType: string | null;
  targetResourceId: string | null;
  patientId: string | null;
  outcomeDescription: string | null;
  dataClassification: string | null;
  correlationId: string | null;
  details: unknown;
}

/** Whom a report's events belong to. */
export type ReportSubject = { patientId: string } | { principalId: string };

/** One page of the scan: bounded by the checkpoint size, the time range, and the keyset cursor. */
export interface ReportPageQuery {
  org: string;
  subject: ReportSubject;
  /** Only leaves below this size (the checkpoint's tree size). */
  treeSize: number;
  from: Date | null;
  to: Date | null;
  after: { recordedAt: Date; id: string } | null;
  limit: number;
  /** Read `details` too (disclosures need it). */
  withDetails: boolean;
}

/** Reads one page of a report's events, oldest first. */
export async function reportPage(db: Db, q: ReportPageQuery): Promise<ReportEventRow[]> {
  const where: SQL[] = [eq(events.organizationId, q.org), lt(events.leafIndex, q.treeSize)];
  where.push('patientId' in q.subject ? eq(events.patientId, q.subject.patientId) : eq(events.principalId, q.subject.principalId));
  if (q.from) where.push(gte(events.recordedAt, q.from));
  if (q.to) where.push(lt(events.recordedAt, q.to));
  // Row-value comparison keeps the scan on the index order (…, recorded_at, id).
  if (q.after) where.push(sql`(${events.recordedAt}, ${events.id}) > (${q.after.recordedAt.toISOString()}::timestamptz, ${q.after.id}::uuid)`);
  const rows = await db
    .select({
      id: events.id,
      recordedAt: events.recordedAt,
      leafIndex: events.leafIndex,
      timestamp: events.timestamp,
      action: events.action,
      status: events.status,
      principalId: events.principalId,
      principalType: events.principalType,
      targetResourceType: events.targetResourceType,
      targetResourceId: events.targetResourceId,
      patientId: events.patientId,
      outcomeDescription: events.outcomeDescription,
      dataClassification: events.dataClassification,
      correlationId: events.correlationId,
      details: q.withDetails ? events.details : sql<null>`NULL`,
    })
    .from(events)
    .where(and(...where))
    .orderBy(asc(events.recordedAt), asc(events.id))
    .limit(q.limit);
  return rows;
}

/**
 * Every row of a report, page by page. The next page's query is sent as soon as a page arrives, so
 * the database reads it while the caller renders this one: at most two pages are held.
 */
export async function* scanReportEvents(db: Db, q: Omit<ReportPageQuery, 'after'>): AsyncGenerator<ReportEventRow, void, undefined> {
  let page = reportPage(db, { ...q, after: null });
  for (;;) {
    const rows = await page;
    let next: Promise<ReportEventRow[]> | null = null;
    if (rows.length >= q.limit) {
      const last = rows[rows.length - 1]!;
      next = reportPage(db, { ...q, after: { recordedAt: last.recordedAt, id: last.id } });
      // Awaited on the next turn; when the caller stops before (a client gone), its failure must not go unhandled.
      next.catch(() => undefined);
    }
    yield* rows;
    if (next === null) return;
    page = next;
  }
}

/** An event's own timestamp as RFC 3339 UTC with milliseconds ('' when absent or erased). */
export function formatEventTimestamp(text: string | null): string {
  return text === null ? '' : formatRecordedAt(parseTimestamptz(text));
}

/** The organization's name. */
export async function organizationName(db: Db, org: string): Promise<string> {
  const rows = await db.select({ name: organizations.name }).from(organizations).where(eq(organizations.id, org)).limit(1);
  return rows[0]?.name ?? '';
}

/** The stored disclosure rule of an organization (null: never set). */
export async function readDisclosureRule(db: Db, org: string): Promise<{ rule: Record<string, unknown>; updatedAt: Date; updatedBy: string } | null> {
  const rows = await db
    .select({ rule: reportSettings.disclosureRule, updatedAt: reportSettings.updatedAt, updatedBy: reportSettings.updatedBy })
    .from(reportSettings)
    .where(eq(reportSettings.organizationId, org))
    .limit(1);
  return rows[0] ?? null;
}

/** Stores an organization's disclosure rule (insert or replace). */
export async function writeDisclosureRule(db: Db, org: string, rule: Record<string, unknown>, by: string): Promise<Date> {
  const now = new Date();
  await db
    .insert(reportSettings)
    .values({ organizationId: org, disclosureRule: rule, updatedAt: now, updatedBy: by })
    .onConflictDoUpdate({ target: reportSettings.organizationId, set: { disclosureRule: rule, updatedAt: now, updatedBy: by } });
  return now;
}
