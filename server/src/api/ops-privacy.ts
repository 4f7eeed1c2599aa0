/**
 * Operations of patient rights and legal holds (docs/privacy.md), spread into the operation table
 * of api/operations.ts, and the pseudonymized read paths the event operations call. A subject's
 * identifier arrives only in an input and never reaches a log line, an error message or the log
 * itself (the `privacy.erase` event carries its keyed hash).
 */
import { z } from 'zod';
import type { Principal } from '../auth/api-keys';
import type { EventQuery } from '../events/schema';
import type { Requester } from '../privacy/events';
import { withholdIdentifiers } from '../privacy/pseudonyms';
import { IDENTIFIER_FIELDS, type IdentifierField } from '../privacy/repository';
import { instantSchema, safeText } from '../util/safe-input';
import type { AuthedContext } from './context';
import type { Operation } from './operations';

function op<I extends z.ZodType, O extends z.ZodType>(o: Operation<I, O>): Operation<I, O> {
  return o;
}

/** The requester of an operation, for the events the privacy services append. */
export function requesterOf(ctx: AuthedContext): Requester {
  const p: Principal = ctx.principal;
  return {
    principalId: p.subject.slice(0, 256),
    principalType: `${p.kind}:${p.role}`,
    correlationId: ctx.requestId,
  };
}

const subjectText = safeText(256);
/** The identifier fields, each optional: exactly one names the subject. */
const subjectFields = {
  patientId: subjectText.optional().describe('the subject as a patient id'),
  principalId: subjectText.optional().describe('the subject as a principal (user) id'),
  targetResourceId: subjectText.optional().describe('the subject as a target resource id'),
  correlationId: subjectText
    .optional()
    .describe('the subject as a correlation id (another configured identifier)'),
};

/** The one identifier field given, or null. */
function subjectOf(
  input: Partial<Record<IdentifierField, string | undefined>>,
): { field: IdentifierField; value: string } | null {
  const given = IDENTIFIER_FIELDS.filter((f) => input[f] !== undefined);
  return given.length === 1 ? { field: given[0]!, value: input[given[0]!]! } : null;
}

const exactlyOneSubject = (v: Partial<Record<IdentifierField, string | undefined>>) =>
  IDENTIFIER_FIELDS.filter((f) => v[f] !== undefined).length === 1;

const erasureSchema = z.object({
  id: z.uuid(),
  subjectField: z.enum(IDENTIFIER_FIELDS),
  subjectHash: z
    .string()
    .describe('hex HMAC-SHA256 of the subject with the organization’s privacy key of keyVersion'),
  keyVersion: z.number().int(),
  fields: z.array(z.string()),
  reason: z.string(),
  state: z.enum(['running', 'completed']),
  requestedBy: z.string(),
  requestedAt: z.string(),
  completedAt: z.string().nullable(),
  eventsErased: z.number().int(),
  batches: z.number().int(),
});

const holdSchema = z.object({
  id: z.uuid(),
  scope: z.enum(['organization', 'subject', 'timeRange']),
  subjectField: z.string().nullable(),
  subjectHash: z.string().nullable(),
  keyVersion: z.number().int().nullable(),
  from: z.string().nullable(),
  to: z.string().nullable(),
  reason: z.string(),
  placedBy: z.string(),
  placedAt: z.string(),
  releasedBy: z.string().nullable(),
  releasedAt: z.string().nullable(),
  active: z.boolean(),
});

/** The privacy operations (spread into the operation table). */
export function privacyOperations() {
  return {
    privacyErasuresCreate: op({
      kind: 'mutation',
      summary:
        'Erase a data subject: every personal field of every event naming it (proofs stay valid); 409 under a legal hold',
      permission: 'privacy.subjects:erase',
      input: z
        .strictObject({
          ...subjectFields,
          reason: safeText(1000).describe('why (recorded in the log; name no person here)'),
        })
        .refine(exactlyOneSubject, {
          message: 'give exactly one of patientId, principalId, targetResourceId, correlationId',
          path: ['patientId'],
        }),
      output: erasureSchema,
      rest: { method: 'post', path: '/privacy/erasures', status: 202 },
      example: { patientId: 'patient-erase-example', reason: 'GDPR Art. 17 request #1234' },
      run: (ctx, input) => {
        const subject = subjectOf(input)!;
        return ctx.services.privacy.erasures.request(
          ctx.principal.organizationId,
          requesterOf(ctx),
          subject.field,
          subject.value,
          input.reason,
        );
      },
    }),
    privacyErasuresList: op({
      kind: 'query',
      summary: 'Erasure requests of the caller’s organization with their state and progress, newest first',
      permission: 'privacy.subjects:erase',
      input: z
        .strictObject({ limit: z.number().int().min(1).max(1000).default(100) })
        .default({ limit: 100 }),
      output: z.object({ erasures: z.array(erasureSchema) }),
      rest: { method: 'get', path: '/privacy/erasures' },
      example: { limit: 10 },
      run: async (ctx, input) => ({
        erasures: await ctx.services.privacy.erasures.list(ctx.principal.organizationId, input.limit),
      }),
    }),
    privacyPseudonymResolve: op({
      kind: 'query',
      summary: 'What a pseudonym (pseu_…) stands for; audited as privacy.pseudonym.resolve',
      permission: 'privacy.pseudonyms:resolve',
      input: z.strictObject({
        pseudonym: z
          .string()
          .regex(/^pseu_[A-Za-z0-9_-]{22}$/, 'a pseudonym: pseu_ and 22 base64url characters'),
      }),
      output: z.object({ pseudonym: z.string(), value: z.string() }),
      rest: { method: 'get', path: '/privacy/pseudonyms/:pseudonym' },
      example: { pseudonym: 'pseu_AAAAAAAAAAAAAAAAAAAAAA' },
      run: (ctx, input) =>
        ctx.services.privacy.resolve(ctx.principal.organizationId, requesterOf(ctx), input.pseudonym),
    }),
    legalHoldsCreate: op({
      kind: 'mutation',
      summary:
        'Place a legal hold on the organization, a subject or a time range: it blocks erasure and retention',
      permission: 'privacy.holds:manage',
      input: z
        .strictObject({
          scope: z.enum(['organization', 'subject', 'timeRange']),
          ...subjectFields,
          from: instantSchema().optional().describe('timeRange: events recorded at or after'),
          to: instantSchema().optional().describe('timeRange: events recorded before'),
          reason: safeText(1000).describe('why (e.g. the litigation or investigation reference)'),
        })
        .superRefine((v, ctx) => {
          const subjects = IDENTIFIER_FIELDS.filter((f) => v[f] !== undefined).length;
          if (v.scope === 'subject' && subjects !== 1)
            ctx.addIssue({
              code: 'custom',
              path: ['patientId'],
              message:
                'a subject hold needs exactly one of patientId, principalId, targetResourceId, correlationId',
            });
          if (v.scope !== 'subject' && subjects > 0)
            ctx.addIssue({ code: 'custom', path: ['scope'], message: 'only a subject hold names a subject' });
          if (v.scope === 'timeRange' && v.from === undefined && v.to === undefined)
            ctx.addIssue({
              code: 'custom',
              path: ['from'],
              message: 'a timeRange hold needs from, to or both',
            });
          if (v.scope !== 'timeRange' && (v.from !== undefined || v.to !== undefined))
            ctx.addIssue({ code: 'custom', path: ['scope'], message: 'only a timeRange hold has from/to' });
          if (v.from !== undefined && v.to !== undefined && Date.parse(v.from) >= Date.parse(v.to))
            ctx.addIssue({ code: 'custom', path: ['to'], message: 'to must be after from' });
        }),
      output: holdSchema,
      rest: { method: 'post', path: '/legal-holds', status: 201 },
      example: { scope: 'subject', patientId: 'patient-held-example', reason: 'litigation hold 2026-17' },
      run: (ctx, input) => {
        const requester = requesterOf(ctx);
        const org = ctx.principal.organizationId;
        const holds = ctx.services.privacy.holds;
        if (input.scope === 'subject') {
          const s = subjectOf(input)!;
          return holds.place(
            org,
            requester,
            { scope: 'subject', subjectField: s.field, subject: s.value },
            input.reason,
          );
        }
        if (input.scope === 'timeRange') {
          return holds.place(
            org,
            requester,
            {
              scope: 'timeRange',
              from: input.from ? new Date(input.from) : null,
              to: input.to ? new Date(input.to) : null,
            },
            input.reason,
          );
        }
        return holds.place(org, requester, { scope: 'organization' }, input.reason);
      },
    }),
    legalHoldsList: op({
      kind: 'query',
      summary: 'Legal holds of the caller’s organization (subjects only as keyed hashes), newest first',
      permission: 'privacy.holds:read',
      input: z
        .strictObject({ active: z.boolean().default(false).describe('only holds not released') })
        .default({ active: false }),
      output: z.object({ holds: z.array(holdSchema) }),
      rest: { method: 'get', path: '/legal-holds' },
      example: { active: true },
      run: async (ctx, input) => ({
        holds: await ctx.services.privacy.holds.list(ctx.principal.organizationId, input.active),
      }),
    }),
    legalHoldsRelease: op({
      kind: 'mutation',
      summary: 'Release a legal hold (once); erasures it paused resume',
      permission: 'privacy.holds:manage',
      input: z.strictObject({ id: z.uuid() }),
      output: holdSchema,
      rest: { method: 'post', path: '/legal-holds/:id/release' },
      example: { id: '00000000-0000-4000-8000-000000000000' },
      run: async (ctx, input) => {
        const released = await ctx.services.privacy.holds.release(
          ctx.principal.organizationId,
          requesterOf(ctx),
          input.id,
        );
        // Erasures the hold paused continue in the background.
        void ctx.services.privacy.erasures.resumePending().catch(() => undefined);
        return released;
      },
    }),
  };
}

/** events.query with pseudonym filters resolved and identifiers pseudonymized for the caller. */
export async function queryEventsFor(ctx: AuthedContext, input: EventQuery) {
  const org = ctx.principal.organizationId;
  const privacy = ctx.services.privacy;
  const q: EventQuery = {
    ...input,
    patientIds: await privacy.resolveFilter(org, input.patientIds),
    principalIds: await privacy.resolveFilter(org, input.principalIds),
    targetResourceIds: await privacy.resolveFilter(org, input.targetResourceIds),
  };
  for (const k of ['patientIds', 'principalIds', 'targetResourceIds'] as const)
    if (q[k] === undefined) delete q[k];
  const page = await ctx.services.events.query(org, q);
  const view = await privacy.viewFor(ctx.principal);
  if (!view.pseudonymous) return page;
  const out = { ...page, items: page.items.map((e) => view.apply(e)) };
  await view.flush();
  return out;
}

/** events.getById with identifiers pseudonymized for the caller. */
export async function getEventFor(ctx: AuthedContext, id: string, withProof: boolean) {
  const found = await ctx.services.events.getById(ctx.principal.organizationId, id, withProof);
  const view = await ctx.services.privacy.viewFor(ctx.principal);
  if (!view.pseudonymous) return found;
  const out = { ...found, event: view.apply(found.event) };
  await view.flush();
  return out;
}

/** ledger.leaves with direct identifiers withheld (pseudonyms beside the commitments) for the caller. */
export async function leavesFor(ctx: AuthedContext, start: number, end: number) {
  const leaves = await ctx.services.events.leaves(ctx.principal.organizationId, start, end);
  const view = await ctx.services.privacy.viewFor(ctx.principal);
  if (!view.pseudonymous) return { leaves };
  const out = {
    leaves: leaves.map((l) => ({ ...l, fields: withholdIdentifiers(l.fields, view.pseudonym) })),
  };
  await view.flush();
  return out;
}
