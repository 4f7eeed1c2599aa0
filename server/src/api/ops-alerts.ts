/**
 * The security-alert operations (docs/alerts.md), spread into the operation table: list, get,
 * stats and settings for readers; acknowledge, resolve, dismiss and settings changes for those
 * who handle alerts. Every change is appended to the organization's log by the alert service,
 * with the caller as principal.
 */
import { z } from 'zod';
import { thresholdsSchema } from '../alerts/detectors';
import { ALERT_SEVERITIES, ALERT_STATUSES, type AlertActor, type AlertService, type AlertView } from '../alerts/service';
import { AppError } from '../errors';
import { safeText } from '../util/safe-input';
import type { AuthedContext } from './context';
import { alertsAsSeenBy } from './live';
import type { Operation } from './operations';

function op<I extends z.ZodType, O extends z.ZodType>(o: Operation<I, O>): Operation<I, O> {
  return o;
}

/** The alert service, or 503 when this server runs without it. */
function alertsOf(ctx: AuthedContext): AlertService {
  if (!ctx.services.alerts) throw new AppError('UNAVAILABLE', 'security alerts are not available on this server');
  return ctx.services.alerts;
}

/** The caller as the principal of the appended `alert.*` event. */
function actorOf(ctx: AuthedContext): AlertActor {
  const p = ctx.principal;
  return { principalId: p.subject.slice(0, 256), principalType: `${p.kind}:${p.role}` };
}

async function oneAsSeenBy(ctx: AuthedContext, alert: Promise<AlertView>): Promise<AlertView> {
  return (await alertsAsSeenBy(ctx, [await alert]))[0]!;
}

const alertSchema = z.object({
  id: z.uuid(),
  detector: z.string(),
  subject: z.string().describe('who or what the alert is about: `principal:<id>`, `ip:<address>`, `ledger`'),
  severity: z.enum(ALERT_SEVERITIES),
  status: z.enum(ALERT_STATUSES),
  title: z.string(),
  count: z.number().int().describe('occurrences added to this alert while it was open'),
  eventIds: z.array(z.string()).describe('ids of the triggering events (the first 100)'),
  context: z.record(z.string(), z.unknown()),
  firstSeenAt: z.string(),
  lastSeenAt: z.string(),
  updatedAt: z.string(),
  acknowledgedAt: z.string().nullable(),
  acknowledgedBy: z.string().nullable(),
  closedAt: z.string().nullable(),
  closedBy: z.string().nullable(),
  note: z.string().nullable(),
});

const thresholdsOutput = z.object({
  failed_auth: z.object({ enabled: z.boolean(), count: z.number().int(), windowSeconds: z.number().int() }),
  unauthorized_access: z.object({ enabled: z.boolean(), count: z.number().int(), windowSeconds: z.number().int() }),
  read_velocity: z.object({ enabled: z.boolean(), count: z.number().int(), windowSeconds: z.number().int() }),
  bulk_export: z.object({ enabled: z.boolean(), events: z.number().int(), requests: z.number().int(), windowSeconds: z.number().int() }),
  off_hours_phi: z.object({ enabled: z.boolean(), startHour: z.number().int(), endHour: z.number().int() }),
  break_glass: z.object({ enabled: z.boolean() }),
});
const settingsSchema = z.object({ timeZone: z.string(), overrides: thresholdsSchema, thresholds: thresholdsOutput });

const changeInput = z.strictObject({ id: z.uuid(), note: safeText(2000).optional() });
const EXAMPLE_UUID = '01900000-0000-7000-8000-000000000000';

/** The alert operations (keys are operation ids). */
export function createAlertOperations() {
  return {
    alertsList: op({
      kind: 'query',
      summary: 'Security alerts of the caller’s organization, newest first (`status: open` = active or acknowledged)',
      permission: 'audit.securityAlerts:read',
      input: z
        .strictObject({
          status: z.enum([...ALERT_STATUSES, 'open']).optional(),
          detector: z.string().max(64).optional(),
          cursor: z.uuid().optional().describe('nextCursor of the previous page'),
          limit: z.number().int().min(1).max(500).default(50),
        })
        .default({ limit: 50 }),
      output: z.object({ items: z.array(alertSchema), nextCursor: z.string().nullable() }),
      rest: { method: 'get', path: '/alerts' },
      example: { status: 'open', limit: 10 },
      run: async (ctx, input) => {
        const page = await alertsOf(ctx).list(ctx.principal.organizationId, input);
        return { ...page, items: await alertsAsSeenBy(ctx, page.items) };
      },
    }),
    alertsStats: op({
      kind: 'query',
      summary: 'Alert counts by status, and open alerts by detector and severity',
      permission: 'audit.securityAlerts:read',
      input: z.strictObject({}).default({}),
      output: z.object({
        total: z.number().int(),
        byStatus: z.object({ active: z.number().int(), acknowledged: z.number().int(), resolved: z.number().int(), dismissed: z.number().int() }),
        open: z.object({
          total: z.number().int(),
          byDetector: z.record(z.string(), z.number().int()),
          bySeverity: z.object({ low: z.number().int(), medium: z.number().int(), high: z.number().int(), critical: z.number().int() }),
        }),
      }),
      rest: { method: 'get', path: '/alerts/stats' },
      example: {},
      run: (ctx) => alertsOf(ctx).stats(ctx.principal.organizationId),
    }),
    alertsSettings: op({
      kind: 'query',
      summary: 'The detectors’ time zone and thresholds for the caller’s organization (defaults with its overrides)',
      permission: 'audit.securityAlerts:read',
      input: z.strictObject({}).default({}),
      output: settingsSchema,
      rest: { method: 'get', path: '/alerts/settings' },
      example: {},
      run: (ctx) => alertsOf(ctx).settings(ctx.principal.organizationId),
    }),
    alertsUpdateSettings: op({
      kind: 'mutation',
      summary: 'Set the organization’s time zone (off-hours) and/or replace its threshold overrides',
      permission: 'audit.securityAlerts:manage',
      input: z.strictObject({
        timeZone: z.string().min(1).max(64).optional().describe('IANA time zone, e.g. Europe/Lisbon'),
        thresholds: thresholdsSchema.optional().describe('replaces every stored override; omitted detectors take the defaults'),
      }),
      output: settingsSchema,
      rest: { method: 'post', path: '/alerts/settings' },
      example: { timeZone: 'Europe/Lisbon', thresholds: { read_velocity: { count: 100 } } },
      run: (ctx, input) => alertsOf(ctx).updateSettings(ctx.principal.organizationId, input, actorOf(ctx)),
    }),
    alertsGet: op({
      kind: 'query',
      summary: 'One security alert with its triggering event ids',
      permission: 'audit.securityAlerts:read',
      input: z.strictObject({ id: z.uuid() }),
      output: alertSchema,
      rest: { method: 'get', path: '/alerts/:id' },
      example: { id: EXAMPLE_UUID },
      run: (ctx, input) => oneAsSeenBy(ctx, alertsOf(ctx).get(ctx.principal.organizationId, input.id)),
    }),
    alertsAcknowledge: op({
      kind: 'mutation',
      summary: 'Acknowledge an active alert (someone is on it); further triggers still add to it',
      permission: 'audit.securityAlerts:manage',
      input: changeInput,
      output: alertSchema,
      rest: { method: 'post', path: '/alerts/acknowledge' },
      example: { id: EXAMPLE_UUID, note: 'looking into it' },
      run: (ctx, input) => oneAsSeenBy(ctx, alertsOf(ctx).acknowledge(ctx.principal.organizationId, input.id, actorOf(ctx), input.note)),
    }),
    alertsResolve: op({
      kind: 'mutation',
      summary: 'Resolve an active or acknowledged alert (it was real and was dealt with)',
      permission: 'audit.securityAlerts:manage',
      input: changeInput,
      output: alertSchema,
      rest: { method: 'post', path: '/alerts/resolve' },
      example: { id: EXAMPLE_UUID, note: 'account locked, password reset' },
      run: (ctx, input) => oneAsSeenBy(ctx, alertsOf(ctx).resolve(ctx.principal.organizationId, input.id, actorOf(ctx), input.note)),
    }),
    alertsDismiss: op({
      kind: 'mutation',
      summary: 'Dismiss an active or acknowledged alert (a false positive, or accepted)',
      permission: 'audit.securityAlerts:manage',
      input: changeInput,
      output: alertSchema,
      rest: { method: 'post', path: '/alerts/dismiss' },
      example: { id: EXAMPLE_UUID, note: 'scheduled migration job' },
      run: (ctx, input) => oneAsSeenBy(ctx, alertsOf(ctx).dismiss(ctx.principal.organizationId, input.id, actorOf(ctx), input.note)),
    }),
  };
}
