import { integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/** Lifecycle of a security alert: `active → acknowledged → resolved | dismissed` (docs/alerts.md). */
export type SecurityAlertStatus = 'active' | 'acknowledged' | 'resolved' | 'dismissed';
/** How urgent an alert is. */
export type SecurityAlertSeverity = 'low' | 'medium' | 'high' | 'critical';

/**
 * Security alerts (migration 0015): one open (`active` or `acknowledged`) alert per organization,
 * detector and subject, with a count and the ids of the events that triggered it.
 */
export const securityAlerts = pgTable(
  'security_alerts',
  {
    organizationId: uuid().notNull(),
    id: uuid().notNull(),
    detector: text().notNull(),
    subject: text().notNull(),
    severity: text().$type<SecurityAlertSeverity>().notNull(),
    status: text().$type<SecurityAlertStatus>().notNull(),
    title: text().notNull(),
    count: integer().notNull(),
    eventIds: jsonb().$type<string[]>().notNull(),
    context: jsonb().$type<Record<string, unknown>>().notNull(),
    firstSeenAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
    lastSeenAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
    updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
    acknowledgedAt: timestamp({ withTimezone: true, mode: 'date' }),
    acknowledgedBy: text(),
    closedAt: timestamp({ withTimezone: true, mode: 'date' }),
    closedBy: text(),
    note: text(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.id] })],
);

/** Per-organization detector settings (migration 0015): time zone and threshold overrides. */
export const alertSettings = pgTable('alert_settings', {
  organizationId: uuid().primaryKey(),
  timeZone: text().notNull(),
  thresholds: jsonb().$type<Record<string, Record<string, number>>>().notNull(),
  updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});
