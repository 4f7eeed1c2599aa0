/**
 * Security alerts (docs/alerts.md): raising with deduplication, the lifecycle
 * `active → acknowledged → resolved | dismissed`, listing and counts, and the per-organization
 * detector settings. Every raise and every change is also appended to the organization's log
 * (`alert.raised`, `alert.updated`, `alert.acknowledged`, `alert.resolved`, `alert.dismissed`,
 * `alert.settings.update`) through the normal ingest path, so the log — not this table — is the
 * tamper-evident record of who was told what and what they did about it.
 *
 * Other components raise through {@link AlertService.raise}: the detectors on ingest, the ledger
 * self-audit, and anything else that finds something (`raise(orgId, { detector, subject,
 * eventIds, context })`).
 */
import { z } from 'zod';
import type { Database } from '../db/client';
import type { SecurityAlertSeverity, SecurityAlertStatus } from '../db/schema';
import { AppError } from '../errors';
import { DEFAULT_EVENT_LIMITS } from '../events/limits';
import { eventInputSchemaFor, type EventInput } from '../events/schema';
import { BUILT_IN_DETECTORS, DETECTOR_DESCRIPTIONS, detectorNameSchema, effectiveThresholds, isTimeZone, thresholdsSchema, type BuiltInDetector, type ThresholdOverrides, type Thresholds } from './detectors';
import { replaceIdentifiers } from '../privacy/identifiers';
import * as repo from './repository';

/**
 * The identifier an alert's subject names: `principal:dr-house` → `dr-house`, `ip:10.0.0.7` →
 * `10.0.0.7`; null for a subject that names nobody (`ledger`, `principal:(unknown)`).
 */
export function subjectIdentifier(subject: string): { kind: string; id: string } | null {
  const i = subject.indexOf(':');
  if (i <= 0 || i === subject.length - 1) return null;
  const id = subject.slice(i + 1);
  if (id === '(unknown)' || id === 'unknown' || /^pseu_[A-Za-z0-9_-]{22}$/.test(id)) return null;
  return { kind: subject.slice(0, i), id };
}

/** Alert statuses, in lifecycle order. */
export const ALERT_STATUSES = ['active', 'acknowledged', 'resolved', 'dismissed'] as const satisfies readonly SecurityAlertStatus[];
/** Severities, least urgent first. */
export const ALERT_SEVERITIES = ['low', 'medium', 'high', 'critical'] as const satisfies readonly SecurityAlertSeverity[];

/** What a raise says. `subject` is who or what the alert is about (`principal:dr-house`, `ip:10.0.0.7`, `ledger`). */
export const raiseInputSchema = z.strictObject({
  detector: detectorNameSchema,
  subject: z.string().min(1).max(512),
  eventIds: z.array(z.string().max(64)).max(1000).default([]),
  context: z.record(z.string(), z.unknown()).default({}),
  /** Default: the built-in detector's, else `medium`. */
  severity: z.enum(ALERT_SEVERITIES).optional(),
  /** Default: the built-in detector's, else the detector name. */
  title: z.string().min(1).max(200).optional(),
  /** How many occurrences this raise stands for (default: the number of event ids, at least 1). */
  count: z.number().int().min(1).max(1_000_000).optional(),
});
/** Input of {@link AlertService.raise}. */
export type RaiseInput = z.input<typeof raiseInputSchema>;

/** An alert as the API returns it. */
export interface AlertView {
  id: string;
  detector: string;
  subject: string;
  severity: SecurityAlertSeverity;
  status: SecurityAlertStatus;
  title: string;
  count: number;
  eventIds: string[];
  context: Record<string, unknown>;
  firstSeenAt: string;
  lastSeenAt: string;
  updatedAt: string;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  closedAt: string | null;
  closedBy: string | null;
  note: string | null;
}

/** What happened to an alert (the action appended to the log is `alert.<change>`). */
export type AlertChange = 'raised' | 'updated' | 'acknowledged' | 'resolved' | 'dismissed';

/** Who changes an alert (the principal fields of the appended event). */
export interface AlertActor {
  principalId: string;
  principalType: string;
}

/** The alerts' settings of an organization. */
export interface AlertSettingsView {
  timeZone: string;
  /** Stored overrides. */
  overrides: ThresholdOverrides;
  /** Defaults with the overrides applied: what the detectors use. */
  thresholds: Thresholds;
}

/** What the service needs from the rest of the server. */
export interface AlertServiceDeps {
  /** Appends an event to the organization's log (the ingest path); resolves after COMMIT. */
  append(org: string, event: EventInput): Promise<unknown>;
  /** Told of every raise and change, after it is stored and logged (live streams, delivery). */
  onChange?(org: string, alert: AlertView, change: AlertChange): void;
  /**
   * The organization's pseudonym of an identifier, remembered so that holders of
   * `privacy.pseudonyms:resolve` can resolve it (the privacy service's `pseudonymFor`). The log's
   * alert events carry `details.subject` and `details.context` with the subject's identifier
   * replaced by it (docs/alerts.md); without it they carry the subject as stored.
   */
  pseudonymize?(org: string, value: string): Promise<string>;
  /** The clock (tests inject one). */
  now?: () => number;
  /** How long settings read from the database are reused in this process (default 10 s). */
  settingsTtlMs?: number;
}

const SYSTEM: AlertActor = { principalId: 'system:alerts', principalType: 'system' };
const eventSchema = eventInputSchemaFor(DEFAULT_EVENT_LIMITS);

/** Maps a row to its API shape. */
export function toView(r: repo.AlertRow): AlertView {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: r.id,
    detector: r.detector,
    subject: r.subject,
    severity: r.severity,
    status: r.status,
    title: r.title,
    count: r.count,
    eventIds: r.eventIds,
    context: r.context,
    firstSeenAt: r.firstSeenAt.toISOString(),
    lastSeenAt: r.lastSeenAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
    acknowledgedAt: iso(r.acknowledgedAt),
    acknowledgedBy: r.acknowledgedBy,
    closedAt: iso(r.closedAt),
    closedBy: r.closedBy,
    note: r.note,
  };
}

/** Raises, changes, lists and counts the security alerts of organizations. */
export class AlertService {
  private readonly now: () => number;
  private readonly settingsCache = new Map<string, { value: AlertSettingsView; until: number }>();

  constructor(
    private readonly database: Database,
    private readonly deps: AlertServiceDeps,
  ) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * Raises an alert: opens one, or adds to the open (`active` or `acknowledged`) alert of the same
   * detector and subject — its count grows and the event ids are merged. Appends `alert.raised`
   * (new) or `alert.updated` (added to) to the organization's log. The API other components use.
   *
   * `appendToLog: false` is for the ledger self-audit only: its finding says the log itself is
   * damaged, and appending to that log would move the very head it compares (the finding's
   * record is the append-only `ledger_alerts` table instead).
   */
  async raise(org: string, input: RaiseInput, options: { appendToLog?: boolean } = {}): Promise<AlertView & { created: boolean }> {
    const r = raiseInputSchema.parse(input);
    const builtIn = (BUILT_IN_DETECTORS as readonly string[]).includes(r.detector) ? DETECTOR_DESCRIPTIONS[r.detector as BuiltInDetector] : null;
    const eventIds = [...new Set(r.eventIds)];
    const { row, created } = await repo.upsertOpenAlert(this.database.db, {
      organizationId: org,
      detector: r.detector,
      subject: r.subject,
      severity: r.severity ?? builtIn?.severity ?? 'medium',
      title: r.title ?? builtIn?.title ?? r.detector,
      count: r.count ?? Math.max(1, eventIds.length),
      eventIds,
      context: r.context,
      at: new Date(this.now()),
    });
    const view = toView(row);
    const change: AlertChange = created ? 'raised' : 'updated';
    if (options.appendToLog ?? true) await this.log(org, view, change, SYSTEM, { newEventIds: eventIds.slice(0, 20) });
    this.deps.onChange?.(org, view, change);
    return { ...view, created };
  }

  /** One alert, or a 404. */
  async get(org: string, id: string): Promise<AlertView> {
    const row = await repo.findAlert(this.database.db, org, id);
    if (!row) throw new AppError('NOT_FOUND', `no alert ${id}`);
    return toView(row);
  }

  /** A page of alerts, newest first; `status: 'open'` means active or acknowledged. */
  async list(org: string, q: { status?: SecurityAlertStatus | 'open'; detector?: string; cursor?: string; limit: number }): Promise<{ items: AlertView[]; nextCursor: string | null }> {
    const statuses = q.status === 'open' ? (['active', 'acknowledged'] as SecurityAlertStatus[]) : q.status ? [q.status] : undefined;
    const rows = await repo.listAlerts(this.database.db, org, { statuses, detector: q.detector, before: q.cursor, limit: q.limit });
    const page = rows.slice(0, q.limit);
    return { items: page.map(toView), nextCursor: rows.length > q.limit ? page.at(-1)!.id : null };
  }

  /** `active → acknowledged`. */
  acknowledge(org: string, id: string, actor: AlertActor, note?: string): Promise<AlertView> {
    const at = new Date(this.now());
    return this.change(org, id, ['active'], 'acknowledged', actor, { status: 'acknowledged', acknowledgedAt: at, acknowledgedBy: actor.principalId, updatedAt: at, ...(note ? { note } : {}) });
  }

  /** `active | acknowledged → resolved` (it was real and has been dealt with). */
  resolve(org: string, id: string, actor: AlertActor, note?: string): Promise<AlertView> {
    const at = new Date(this.now());
    return this.change(org, id, ['active', 'acknowledged'], 'resolved', actor, { status: 'resolved', closedAt: at, closedBy: actor.principalId, updatedAt: at, ...(note ? { note } : {}) });
  }

  /** `active | acknowledged → dismissed` (a false positive, or accepted). */
  dismiss(org: string, id: string, actor: AlertActor, note?: string): Promise<AlertView> {
    const at = new Date(this.now());
    return this.change(org, id, ['active', 'acknowledged'], 'dismissed', actor, { status: 'dismissed', closedAt: at, closedBy: actor.principalId, updatedAt: at, ...(note ? { note } : {}) });
  }

  private async change(
    org: string,
    id: string,
    from: SecurityAlertStatus[],
    change: Exclude<AlertChange, 'raised' | 'updated'>,
    actor: AlertActor,
    set: Parameters<typeof repo.transition>[4],
  ): Promise<AlertView> {
    const row = await repo.transition(this.database.db, org, id, from, set);
    if (!row) {
      const current = await repo.findAlert(this.database.db, org, id);
      if (!current) throw new AppError('NOT_FOUND', `no alert ${id}`);
      throw new AppError('CONFLICT', `alert ${id} is ${current.status}; it can be ${change} only when ${from.join(' or ')}`);
    }
    const view = toView(row);
    await this.log(org, view, change, actor, set.note ? { note: set.note } : {});
    this.deps.onChange?.(org, view, change);
    return view;
  }

  /** Counts by status, and of open alerts by detector and severity. */
  async stats(org: string): Promise<{ total: number; byStatus: Record<SecurityAlertStatus, number>; open: { total: number; byDetector: Record<string, number>; bySeverity: Record<SecurityAlertSeverity, number> } }> {
    const rows = await repo.countAlerts(this.database.db, org);
    const byStatus = { active: 0, acknowledged: 0, resolved: 0, dismissed: 0 };
    const bySeverity = { low: 0, medium: 0, high: 0, critical: 0 };
    const byDetector: Record<string, number> = {};
    let total = 0;
    let open = 0;
    for (const r of rows) {
      total += r.n;
      byStatus[r.status] += r.n;
      if (r.status === 'active' || r.status === 'acknowledged') {
        open += r.n;
        bySeverity[r.severity] += r.n;
        byDetector[r.detector] = (byDetector[r.detector] ?? 0) + r.n;
      }
    }
    return { total, byStatus, open: { total: open, byDetector, bySeverity } };
  }

  /** An organization's time zone and thresholds (reused for a few seconds: detectors read it per batch). */
  async settings(org: string): Promise<AlertSettingsView> {
    const now = this.now();
    const cached = this.settingsCache.get(org);
    if (cached && cached.until > now) return cached.value;
    const stored = await repo.readSettings(this.database.db, org);
    const parsed = thresholdsSchema.safeParse(stored?.thresholds ?? {});
    const overrides = parsed.success ? parsed.data : {};
    const value = { timeZone: stored?.timeZone ?? 'UTC', overrides, thresholds: effectiveThresholds(overrides) };
    if (this.settingsCache.size > 10_000) this.settingsCache.clear();
    this.settingsCache.set(org, { value, until: now + (this.deps.settingsTtlMs ?? 10_000) });
    return value;
  }

  /** Replaces an organization's time zone and/or threshold overrides; appends `alert.settings.update`. */
  async updateSettings(org: string, patch: { timeZone?: string; thresholds?: ThresholdOverrides }, actor: AlertActor): Promise<AlertSettingsView> {
    if (patch.timeZone !== undefined && !isTimeZone(patch.timeZone)) {
      throw new AppError('BAD_REQUEST', `unknown time zone ${patch.timeZone}`, [{ path: 'timeZone', message: 'an IANA time zone, e.g. Europe/Lisbon' }]);
    }
    this.settingsCache.delete(org);
    const current = await this.settings(org);
    const timeZone = patch.timeZone ?? current.timeZone;
    const overrides = patch.thresholds ?? current.overrides;
    await repo.writeSettings(this.database.db, org, timeZone, overrides);
    this.settingsCache.delete(org);
    await this.deps.append(org, this.event({
      action: 'alert.settings.update',
      status: 'success',
      ...actor,
      targetResourceType: 'AlertSettings',
      targetResourceId: org,
      dataClassification: 'CONFIDENTIAL',
      details: { timeZone, thresholds: overrides },
    }));
    return this.settings(org);
  }

  /** Appends `alert.<change>` for `alert` to the organization's log. */
  private async log(org: string, alert: AlertView, change: AlertChange, actor: AlertActor, extra: Record<string, unknown>): Promise<void> {
    let subject = alert.subject;
    let context: unknown = alert.context;
    const named = this.deps.pseudonymize ? subjectIdentifier(alert.subject) : null;
    if (named) {
      // The log cannot be rewritten: it never holds the identifier, only its keyed pseudonym.
      const p = await this.deps.pseudonymize!(org, named.id);
      subject = `${named.kind}:${p}`;
      context = replaceIdentifiers(alert.context, new Map([[named.id, p]]));
    }
    await this.deps.append(
      org,
      this.event({
        action: `alert.${change}`,
        status: 'success',
        ...actor,
        targetResourceType: 'SecurityAlert',
        targetResourceId: alert.id,
        dataClassification: 'CONFIDENTIAL',
        details: { detector: alert.detector, subject, severity: alert.severity, status: alert.status, count: alert.count, ...extra, context },
      }),
    );
  }

  /** An event of the alert service, checked by the producers' schema; a context too large to record is left out. */
  private event(body: Record<string, unknown>): EventInput {
    const parsed = eventSchema.safeParse(body);
    if (parsed.success) return parsed.data;
    const details = { ...(body.details as Record<string, unknown>), context: { truncated: true } };
    return eventSchema.parse({ ...body, details });
  }
}
