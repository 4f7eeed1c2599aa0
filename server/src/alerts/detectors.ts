/**
 * The built-in security detectors (docs/alerts.md): which events each one looks at, what it counts
 * and per what subject, and its thresholds. Pure: no I/O, no clock — the engine supplies both.
 *
 * Windowed detectors count weights per subject in a sliding window and fire when the sum reaches
 * the threshold; instant detectors fire on every matching event. Both deduplicate into one open
 * alert per detector and subject (alerts/service.ts).
 */
import { z } from 'zod';
import type { SecurityAlertSeverity } from '../db/schema';

/** The detectors evaluated on ingest, plus the self-audit's. Other components may raise their own names. */
export const BUILT_IN_DETECTORS = [
  'failed_auth',
  'unauthorized_access',
  'read_velocity',
  'bulk_export',
  'off_hours_phi',
  'break_glass',
  'ledger_integrity',
] as const;
/** A built-in detector. */
export type BuiltInDetector = (typeof BUILT_IN_DETECTORS)[number];

/** A detector name: built-in, or one raised by another component (`anomaly.volume`). */
export const detectorNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_.-]{0,63}$/, 'lower-case letters, digits, `_`, `.`, `-`; at most 64 characters');

/** What each built-in detector means (README and docs/alerts.md quote it). */
export const DETECTOR_DESCRIPTIONS: Record<BuiltInDetector, { severity: SecurityAlertSeverity; title: string; description: string }> = {
  failed_auth: {
    severity: 'high',
    title: 'Repeated failed authentication',
    description: 'failed sign-ins (`status: failure` on a login/sign-in/authenticate/mfa action) per principal and per client IP: `count` in `windowSeconds` (default 5 in 5 min)',
  },
  unauthorized_access: {
    severity: 'high',
    title: 'Repeated unauthorized access',
    description: 'denied requests (`auth.access.denied`, or an action ending in `denied`/`unauthorized`/`forbidden`) per principal: `count` in `windowSeconds` (default 3 in 10 min)',
  },
  read_velocity: {
    severity: 'high',
    title: 'PHI read velocity',
    description: 'successful reads of PHI (`dataClassification: PHI`, a read/view/search/query/get/list action) per principal: `count` in `windowSeconds` (default 50 per minute)',
  },
  bulk_export: {
    severity: 'high',
    title: 'Bulk export',
    description: 'exports (an `export`/`download` action) per principal: over `events` exported events or `requests` export requests in `windowSeconds` (default over 1,000 events or 100 requests in 5 min)',
  },
  off_hours_phi: {
    severity: 'medium',
    title: 'Off-hours PHI access',
    description: 'any access to PHI between `startHour` and `endHour` in the organization\'s time zone (default 22:00–06:00), per principal',
  },
  break_glass: {
    severity: 'high',
    title: 'Break-the-glass access',
    description: 'every emergency-access action (`break-glass`/`emergency-access` in the action, or `details.breakGlass: true`), per principal',
  },
  ledger_integrity: {
    severity: 'critical',
    title: 'Ledger self-audit failure',
    description: 'the continuous self-audit found the log altered, removed, reordered or rolled back (the finding also stays in `ledger.alerts`)',
  },
};

const enabled = z.boolean().describe('evaluate this detector (default true)');
const count = z.number().int().min(1).max(1_000_000);
const windowSeconds = z.number().int().min(1).max(86_400);
const hour = z.number().int().min(0).max(23);

/** Per-organization overrides of the thresholds; every field is optional (defaults below). */
export const thresholdsSchema = z.strictObject({
  failed_auth: z.strictObject({ enabled, count, windowSeconds }).partial().optional(),
  unauthorized_access: z.strictObject({ enabled, count, windowSeconds }).partial().optional(),
  read_velocity: z.strictObject({ enabled, count, windowSeconds }).partial().optional(),
  bulk_export: z.strictObject({ enabled, events: count, requests: count, windowSeconds }).partial().optional(),
  off_hours_phi: z.strictObject({ enabled, startHour: hour, endHour: hour }).partial().optional(),
  break_glass: z.strictObject({ enabled }).partial().optional(),
});
/** Threshold overrides as stored. */
export type ThresholdOverrides = z.infer<typeof thresholdsSchema>;

/** Effective thresholds of an organization. */
export interface Thresholds {
  failed_auth: { enabled: boolean; count: number; windowSeconds: number };
  unauthorized_access: { enabled: boolean; count: number; windowSeconds: number };
  read_velocity: { enabled: boolean; count: number; windowSeconds: number };
  bulk_export: { enabled: boolean; events: number; requests: number; windowSeconds: number };
  off_hours_phi: { enabled: boolean; startHour: number; endHour: number };
  break_glass: { enabled: boolean };
}

/** The defaults of the issue that introduced the detectors. */
export const DEFAULT_THRESHOLDS: Thresholds = {
  failed_auth: { enabled: true, count: 5, windowSeconds: 300 },
  unauthorized_access: { enabled: true, count: 3, windowSeconds: 600 },
  read_velocity: { enabled: true, count: 50, windowSeconds: 60 },
  bulk_export: { enabled: true, events: 1000, requests: 100, windowSeconds: 300 },
  off_hours_phi: { enabled: true, startHour: 22, endHour: 6 },
  break_glass: { enabled: true },
};

/** Defaults with an organization's overrides applied. */
export function effectiveThresholds(overrides: ThresholdOverrides): Thresholds {
  return {
    failed_auth: { ...DEFAULT_THRESHOLDS.failed_auth, ...overrides.failed_auth },
    unauthorized_access: { ...DEFAULT_THRESHOLDS.unauthorized_access, ...overrides.unauthorized_access },
    read_velocity: { ...DEFAULT_THRESHOLDS.read_velocity, ...overrides.read_velocity },
    bulk_export: { ...DEFAULT_THRESHOLDS.bulk_export, ...overrides.bulk_export },
    off_hours_phi: { ...DEFAULT_THRESHOLDS.off_hours_phi, ...overrides.off_hours_phi },
    break_glass: { ...DEFAULT_THRESHOLDS.break_glass, ...overrides.break_glass },
  };
}

/** The fields of a committed event the detectors read. */
export interface ObservedEvent {
  id: string;
  action: string;
  status: 'attempt' | 'success' | 'failure';
  principalId?: string | undefined;
  dataClassification?: string | undefined;
  /** When it happened (RFC 3339), if the producer said. */
  timestamp?: string | undefined;
  recordedAt: Date;
  sessionContext?: { ipAddress?: string | undefined } | undefined;
  details?: Record<string, unknown> | undefined;
}

/** One count a detector adds to a sliding window. */
export interface WindowHit {
  detector: BuiltInDetector;
  subject: string;
  /** Distinguishes two windows of one detector and subject (bulk export: events and requests). */
  measure: string;
  weight: number;
  windowMs: number;
  /** Fires when the window's sum reaches this. */
  threshold: number;
  eventId: string;
  /** Context recorded with the alert. */
  context: Record<string, unknown>;
}

/** An instant trigger (no window). */
export interface InstantHit {
  detector: BuiltInDetector;
  subject: string;
  eventId: string;
  context: Record<string, unknown>;
}

const LOGIN = /(^|\.)(login|signin|sign-in|sign_in|logon|authenticate|authentication|mfa)(\.|$)/i;
const DENIED = /(^|\.)(access\.denied|denied|unauthorized|forbidden|access-denied|access_denied)(\.|$)/i;
const READ = /(^|\.)(read|vread|view|search|query|get|list|history|access)(\.|$)/i;
const EXPORT = /(^|\.)(export|\$export|bulk-export|bulk_export|download)(\.|$)/i;
const BREAK_GLASS = /break[-_.]?glass|emergency[-_.]?access/i;

/** The client IP an event names (its session context, or `details.clientIp` of a sign-in failure). */
function ipOf(e: ObservedEvent): string | null {
  const ip = e.sessionContext?.ipAddress ?? e.details?.clientIp;
  return typeof ip === 'string' && ip.length > 0 && ip !== 'unknown' ? ip : null;
}

/** How many events an export moved: `details.count|eventCount|events|records`, or a `[start, end)` range in its input. */
export function exportedEvents(e: ObservedEvent): number {
  const d = e.details;
  if (!d) return 0;
  for (const k of ['count', 'eventCount', 'events', 'records']) {
    const v = d[k];
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) return Math.floor(v);
  }
  const input = d.input as { start?: unknown; end?: unknown } | undefined;
  if (input && typeof input.start === 'number' && typeof input.end === 'number' && input.end > input.start) return input.end - input.start;
  return 0;
}

/** The hour (0–23) of `instant` in `timeZone`. */
const hourFormats = new Map<string, Intl.DateTimeFormat>();
export function hourIn(instant: Date, timeZone: string): number {
  let f = hourFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hour: 'numeric', hourCycle: 'h23' });
    hourFormats.set(timeZone, f);
  }
  const h = Number(f.formatToParts(instant).find((p) => p.type === 'hour')?.value ?? '0');
  return h === 24 ? 0 : h;
}

/** Whether `timeZone` is an IANA zone this runtime knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** Whether `hour` lies in [start, end), wrapping past midnight when start > end. */
export function inHours(hour: number, start: number, end: number): boolean {
  if (start === end) return false;
  return start < end ? hour >= start && hour < end : hour >= start || hour < end;
}

/**
 * What one event contributes to each detector. The alert service's own events (`alert.*`) are
 * never evaluated, so raising an alert cannot raise another.
 */
export function evaluate(e: ObservedEvent, t: Thresholds, timeZone: string): { windows: WindowHit[]; instants: InstantHit[] } {
  const windows: WindowHit[] = [];
  const instants: InstantHit[] = [];
  if (e.action.startsWith('alert.')) return { windows, instants };
  const principal = e.principalId ? `principal:${e.principalId}` : null;
  const failed = e.status === 'failure';
  const phi = e.dataClassification === 'PHI';

  if (t.failed_auth.enabled && failed && LOGIN.test(e.action)) {
    const ip = ipOf(e);
    const subjects = [principal, ip ? `ip:${ip}` : null].filter((s): s is string => s !== null);
    for (const subject of subjects) {
      windows.push({
        detector: 'failed_auth',
        subject,
        measure: 'n',
        weight: 1,
        windowMs: t.failed_auth.windowSeconds * 1000,
        threshold: t.failed_auth.count,
        eventId: e.id,
        context: { count: t.failed_auth.count, windowSeconds: t.failed_auth.windowSeconds },
      });
    }
  }
  if (t.unauthorized_access.enabled && DENIED.test(e.action)) {
    const ip = ipOf(e);
    const subject = principal ?? (ip ? `ip:${ip}` : null);
    if (subject) {
      windows.push({
        detector: 'unauthorized_access',
        subject,
        measure: 'n',
        weight: 1,
        windowMs: t.unauthorized_access.windowSeconds * 1000,
        threshold: t.unauthorized_access.count,
        eventId: e.id,
        context: { count: t.unauthorized_access.count, windowSeconds: t.unauthorized_access.windowSeconds },
      });
    }
  }
  if (principal && phi && !failed) {
    if (t.read_velocity.enabled && READ.test(e.action)) {
      windows.push({
        detector: 'read_velocity',
        subject: principal,
        measure: 'n',
        weight: 1,
        windowMs: t.read_velocity.windowSeconds * 1000,
        threshold: t.read_velocity.count,
        eventId: e.id,
        context: { count: t.read_velocity.count, windowSeconds: t.read_velocity.windowSeconds },
      });
    }
  }
  if (principal && !failed && t.bulk_export.enabled && EXPORT.test(e.action)) {
    const b = t.bulk_export;
    const context = { events: b.events, requests: b.requests, windowSeconds: b.windowSeconds };
    windows.push({ detector: 'bulk_export', subject: principal, measure: 'requests', weight: 1, windowMs: b.windowSeconds * 1000, threshold: b.requests, eventId: e.id, context });
    const moved = exportedEvents(e);
    // "over 1,000 events": the sum must exceed the setting, i.e. reach it + 1.
    if (moved > 0) {
      windows.push({ detector: 'bulk_export', subject: principal, measure: 'events', weight: moved, windowMs: b.windowSeconds * 1000, threshold: b.events + 1, eventId: e.id, context });
    }
  }
  if (phi && t.off_hours_phi.enabled) {
    const at = e.timestamp ? new Date(e.timestamp) : e.recordedAt;
    const when = Number.isNaN(at.getTime()) ? e.recordedAt : at;
    const h = hourIn(when, timeZone);
    if (inHours(h, t.off_hours_phi.startHour, t.off_hours_phi.endHour)) {
      instants.push({ detector: 'off_hours_phi', subject: principal ?? 'principal:(unknown)', eventId: e.id, context: { hour: h, timeZone } });
    }
  }
  if (t.break_glass.enabled && (BREAK_GLASS.test(e.action) || e.details?.breakGlass === true || e.details?.emergencyAccess === true)) {
    instants.push({ detector: 'break_glass', subject: principal ?? 'principal:(unknown)', eventId: e.id, context: { action: e.action } });
  }
  return { windows, instants };
}
