/**
 * The audit log audits its own use: every read of the log by a person (session or OIDC token) or
 * by an auditor's or compliance officer's key appends `audit.log.read` / `audit.log.export` to the
 * caller's organization log, with the caller as principal and the input used (patient ids
 * included: the log is where such facts belong, and every field is an erasable commitment). The
 * event joins the same group commit as any other append, concurrently with the read, so a read
 * costs no extra round trip; a read whose event cannot be appended fails. Producer writes are not
 * re-audited. Denied requests, key and membership changes are audited too (`auth.*`).
 */
import type { Principal } from '../auth/api-keys';
import { DEFAULT_EVENT_LIMITS } from '../events/limits';
import { eventInputSchemaFor, type EventInput } from '../events/schema';
import type { ApiContext, AuthedContext } from './context';

// The schema producers' events pass, at the default limits (these events are the server's own).
const schema = eventInputSchemaFor(DEFAULT_EVENT_LIMITS);

/** What an audited operation is. A generated report (`audit.log.report`) is audited whoever asks for it. */
export type AuditedAccess = 'read' | 'export' | 'report';

/** Whether reads by `p` are audited: people always, keys of the roles that read the log for a living. */
export function auditsReadsOf(p: Principal): boolean {
  return p.kind !== 'apiKey' || p.role === 'auditor' || p.role === 'compliance_officer';
}

/** The principal fields of an event describing `p`. */
function principalFields(p: Principal): Pick<EventInput, 'principalId' | 'principalType'> {
  return { principalId: p.subject.slice(0, 256), principalType: p.kind === 'apiKey' ? `apiKey:${p.role}` : `${p.kind}:${p.role}` };
}

/** Patient ids named by a read's input (a filter list or a single id), for the event's patientId. */
function patientsOf(input: unknown): string[] {
  if (typeof input !== 'object' || input === null) return [];
  const o = input as { patientIds?: unknown; patientId?: unknown };
  const list = Array.isArray(o.patientIds) ? o.patientIds : typeof o.patientId === 'string' ? [o.patientId] : [];
  return list.filter((v): v is string => typeof v === 'string');
}

/**
 * Builds and checks an internal event with the same schema producers' events pass (so the
 * configured limits hold); when the input is too large to record whole, its keys are recorded.
 */
function internalEvent(body: Record<string, unknown>): EventInput {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const details = body.details as { input?: unknown } | undefined;
  const input = details?.input;
  const summary = typeof input === 'object' && input !== null ? { inputKeys: Object.keys(input).slice(0, 50), truncated: true } : { truncated: true };
  return schema.parse({ ...body, details: { ...details, input: summary } });
}

/** Appends `audit.log.<access>` for a read by `ctx.principal` (when its reads are audited). */
export async function recordRead(ctx: AuthedContext, access: AuditedAccess, operation: string, input: unknown): Promise<void> {
  const p = ctx.principal;
  if (access !== 'report' && !auditsReadsOf(p)) return;
  const patients = patientsOf(input);
  const event = internalEvent({
    action: `audit.log.${access}`,
    status: 'success',
    ...principalFields(p),
    targetResourceType: 'AuditLog',
    targetResourceId: p.organizationId,
    ...(patients.length === 1 ? { patientId: patients[0] } : {}),
    dataClassification: patients.length > 0 ? 'PHI' : 'CONFIDENTIAL',
    correlationId: ctx.requestId,
    details: { operation, input: (input ?? {}) as Record<string, unknown>, ...(p.sessionId ? { sessionId: p.sessionId } : {}) },
  });
  await ctx.services.events.create(p.organizationId, event);
}

/**
 * Appends `auth.login.failure` to the log of every organization the account belongs to (nothing
 * for an address no user has: there is no tenant to tell). Runs after the answer is sent, so it
 * cannot change the sign-in's timing. Never throws.
 */
export async function recordLoginFailure(
  ctx: Pick<ApiContext, 'services' | 'logger' | 'requestId'>,
  email: string,
  reason: 'rejected' | 'rate-limited',
  clientIp: string,
): Promise<void> {
  if (!ctx.services.identity || email.length === 0) return;
  let orgs: string[];
  try {
    orgs = await ctx.services.identity.organizationsOf(email);
  } catch {
    ctx.logger.warn('sign-in failure could not be attributed to an organization');
    return;
  }
  await Promise.all(
    orgs.map((org) =>
      recordAuthEvent(ctx, org, 'auth.login.failure', {
        principalId: email.trim().toLowerCase(),
        status: 'failure',
        targetResourceType: 'Session',
        details: { reason, clientIp },
      }),
    ),
  );
}

/**
 * Appends an `auth.*` event (denied access, key or membership change) to `org`'s log. Never
 * throws: the request's own answer does not depend on it; a failure is logged without values.
 */
export function recordAuthEvent(
  ctx: Pick<ApiContext, 'services' | 'logger' | 'requestId'>,
  org: string,
  action: string,
  fields: { principal?: Principal; principalId?: string; status?: 'success' | 'failure'; targetResourceType?: string; targetResourceId?: string; details?: Record<string, unknown> },
): Promise<void> {
  const event = internalEvent({
    action,
    status: fields.status ?? 'success',
    ...(fields.principal ? principalFields(fields.principal) : fields.principalId ? { principalId: fields.principalId.slice(0, 256) } : {}),
    ...(fields.targetResourceType ? { targetResourceType: fields.targetResourceType } : {}),
    ...(fields.targetResourceId ? { targetResourceId: fields.targetResourceId.slice(0, 256) } : {}),
    dataClassification: 'CONFIDENTIAL',
    correlationId: ctx.requestId,
    ...(fields.details ? { details: fields.details } : {}),
  });
  return ctx.services.events.create(org, event).then(
    () => undefined,
    (err: unknown) => ctx.logger.warn({ action, code: (err as { code?: unknown }).code }, 'audit event of an auth action failed'),
  );
}
