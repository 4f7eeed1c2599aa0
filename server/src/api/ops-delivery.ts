/**
 * Operations of SIEM and webhook destinations (docs/delivery.md), spread into the operation table
 * of api/operations.ts. A secret goes in (create, rotate) and never comes out: answers carry its
 * version and a fingerprint only.
 */
import { z } from 'zod';
import { DESTINATION_KINDS } from '../delivery/service';
import { caProblem, targetIssues } from '../delivery/target';
import { safeText, unsafeTextReason } from '../util/safe-input';
import type { AuthedContext } from './context';
import type { Operation } from './operations';

function op<I extends z.ZodType, O extends z.ZodType>(o: Operation<I, O>): Operation<I, O> {
  return o;
}

const carries = z.enum(['all', 'events', 'alerts']).describe('what the destination receives: event batches, alerts, or both');
/** A refinement from a "why not" function (null: fine). */
const check = (problem: (s: string) => string | null) => (s: string, ctx: z.core.$RefinementCtx<string>) => {
  const message = problem(s);
  if (message) ctx.addIssue({ code: 'custom', message });
};
const pem = z
  .string()
  .max(64 * 1024)
  .superRefine(check((s) => unsafeTextReason(s) ?? caProblem(s)))
  .describe('PEM certificates to trust for this destination instead of the system CAs');
// Sealed as UTF-8 and used as an HMAC key by the receiver too: well-formed Unicode, no NUL.
const secret = z.string().min(16, 'at least 16 characters').max(512).superRefine(check(unsafeTextReason)).describe('webhook HMAC secret or Splunk HEC token: write-only, never returned');
/** A URL; whether its scheme fits the kind is checked with the kind (create) or by the service (update). */
const url = z
  .string()
  .max(2048)
  .superRefine(check((s) => unsafeTextReason(s) ?? (URL.canParse(s) ? null : 'not a URL')));

const destinationSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  kind: z.enum(DESTINATION_KINDS),
  url: z.string(),
  carries,
  enabled: z.boolean(),
  ca: z.string().nullable(),
  index: z.string().nullable(),
  sourcetype: z.string().nullable(),
  secretVersion: z.number().int().describe('0 = no secret; +1 per rotation'),
  secretFingerprint: z.string().nullable().describe('first 16 hex digits of SHA-256 of the current secret'),
  previousSecretUntil: z.string().nullable().describe('a webhook also signs with the previous secret until then'),
  nextLeaf: z.number().int().describe('first leaf not yet delivered'),
  deliveredBatches: z.number().int(),
  lastDeliveredAt: z.string().nullable(),
  lastError: z.string().nullable(),
  createdAt: z.string(),
});

const deadLetterSchema = z.object({
  id: z.string().describe('the batch id, the same in every retry and replay'),
  type: z.enum(['events', 'alert']),
  range: z.object({ start: z.number().int(), end: z.number().int() }).nullable(),
  error: z.string(),
  attempts: z.number().int(),
  failedAt: z.string(),
});

const EXAMPLE_ID = '01900000-0000-7000-8000-000000000001';

/** The destination operations. */
export function deliveryOperations() {
  return {
    destinationsList: op({
      kind: 'query',
      summary: 'SIEM and webhook destinations of the organization, with their delivery state',
      permission: 'admin.destinations:read',
      input: z.strictObject({}).default({}),
      output: z.object({ destinations: z.array(destinationSchema) }),
      rest: { method: 'get', path: '/destinations' },
      example: {},
      run: async (ctx: AuthedContext) => ({ destinations: await ctx.services.deliveries.list(ctx.principal.organizationId) }),
    }),
    destinationsGet: op({
      kind: 'query',
      summary: 'One destination with its delivery state',
      permission: 'admin.destinations:read',
      input: z.strictObject({ id: z.uuid() }),
      output: destinationSchema,
      rest: { method: 'get', path: '/destinations/:id' },
      example: { id: EXAMPLE_ID },
      run: (ctx: AuthedContext, input: { id: string }) => ctx.services.deliveries.get(ctx.principal.organizationId, input.id),
    }),
    destinationsCreate: op({
      kind: 'mutation',
      summary: 'Add a destination: an HTTPS webhook, syslog over TLS (RFC 5425) or Splunk HEC; delivery starts at once',
      permission: 'admin.destinations:manage',
      input: z
        .strictObject({
          name: safeText(200),
          kind: z.enum(DESTINATION_KINDS),
          url: url.describe('https://… (webhook, splunk_hec) or syslog+tls://host:port'),
          carries: carries.optional(),
          secret: secret.optional(),
          ca: pem.optional(),
          index: safeText(200).optional().describe('Splunk index'),
          sourcetype: safeText(200).optional().describe('Splunk sourcetype (default smedrec:audit)'),
          startAt: z.enum(['beginning', 'now']).optional().describe('beginning (default): the whole log; now: only what is appended from now on'),
        })
        // The scheme and the secret depend on the kind: refused here, at their own paths (a url
        // the field's own check refused is not reported twice).
        .superRefine((d, ctx) => {
          const target = { url: url.safeParse(d.url).success ? d.url : undefined, secret: d.secret, checkSecret: true };
          for (const issue of targetIssues(d.kind, target)) ctx.addIssue({ code: 'custom', path: [issue.path], message: issue.message });
        }),
      output: destinationSchema,
      rest: { method: 'post', path: '/destinations', status: 201 },
      example: { name: 'SIEM', kind: 'syslog', url: 'syslog+tls://127.0.0.1:9', carries: 'all', startAt: 'now' },
      run: (ctx: AuthedContext, input) => ctx.services.deliveries.create(ctx.principal.organizationId, input),
    }),
    destinationsUpdate: op({
      kind: 'mutation',
      summary: 'Rename, re-point, pause or resume a destination, or change what it carries or trusts',
      permission: 'admin.destinations:manage',
      input: z.strictObject({
        id: z.uuid(),
        name: safeText(200).optional(),
        url: url.optional(),
        carries: carries.optional(),
        enabled: z.boolean().optional(),
        ca: pem.nullable().optional(),
      }),
      output: destinationSchema,
      rest: { method: 'post', path: '/destinations/update' },
      example: { id: EXAMPLE_ID, enabled: false },
      run: (ctx: AuthedContext, input) => ctx.services.deliveries.update(ctx.principal.organizationId, input.id, input),
    }),
    destinationsRotateSecret: op({
      kind: 'mutation',
      summary: 'Set a new secret; a webhook signs with the old one too for the rotation grace period',
      permission: 'admin.destinations:manage',
      input: z.strictObject({ id: z.uuid(), secret }),
      output: destinationSchema,
      rest: { method: 'post', path: '/destinations/rotate-secret' },
      example: { id: EXAMPLE_ID, secret: 'whsec_0123456789abcdef0123' },
      run: (ctx: AuthedContext, input: { id: string; secret: string }) => ctx.services.deliveries.rotateSecret(ctx.principal.organizationId, input.id, input.secret),
    }),
    destinationsDelete: op({
      kind: 'mutation',
      summary: 'Delete a destination with its delivery state and dead letters',
      permission: 'admin.destinations:manage',
      input: z.strictObject({ id: z.uuid() }),
      output: z.object({ id: z.uuid(), deleted: z.literal(true) }),
      rest: { method: 'delete', path: '/destinations/:id' },
      example: { id: EXAMPLE_ID },
      run: async (ctx: AuthedContext, input: { id: string }) => {
        await ctx.services.deliveries.remove(ctx.principal.organizationId, input.id);
        return { id: input.id, deleted: true as const };
      },
    }),
    deliveriesDeadLetters: op({
      kind: 'query',
      summary: 'Batches a destination could not take after every attempt, newest first',
      permission: 'admin.destinations:read',
      input: z.strictObject({ id: z.uuid(), limit: z.coerce.number().int().min(1).max(1000).default(100) }),
      output: z.object({ deadLetters: z.array(deadLetterSchema) }),
      rest: { method: 'get', path: '/deliveries/dead-letters' },
      example: { id: EXAMPLE_ID, limit: 10 },
      run: async (ctx: AuthedContext, input: { id: string; limit: number }) => ({ deadLetters: await ctx.services.deliveries.deadLetters(ctx.principal.organizationId, input.id, input.limit) }),
    }),
    deliveriesReplay: op({
      kind: 'mutation',
      summary: 'Send dead letters again (the given batch ids, or all), with their original ids',
      permission: 'admin.destinations:manage',
      input: z.strictObject({ id: z.uuid(), batchIds: z.array(z.string().max(64)).max(1000).optional() }),
      output: z.object({ replayed: z.number().int() }),
      rest: { method: 'post', path: '/deliveries/replay' },
      example: { id: EXAMPLE_ID },
      run: async (ctx: AuthedContext, input: { id: string; batchIds?: string[] | undefined }) => ({ replayed: await ctx.services.deliveries.replay(ctx.principal.organizationId, input.id, input.batchIds ?? null) }),
    }),
  };
}
