/**
 * The audit event as producers send it, and the shapes the API returns. Field names are the ones
 * smedrec frontends already send; unknown top-level fields are rejected.
 */
import { z } from 'zod';
import { isRecordedAt } from '../ledger';
import { instantSchema, safeText } from '../util/safe-input';
import { cursorSchema } from './cursor';
import { detailsIssues, type EventLimits } from './limits';

/** `data.read`, `auth.login.failure`, `fhir.Patient.read`: two or more dot-separated segments. */
export const actionSchema = z
  .string()
  .max(128)
  .regex(/^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$/, 'must be dot-namespaced, e.g. "data.read"')
  .meta({ examples: ['data.read'] });

export const eventStatusSchema = z.enum(['attempt', 'success', 'failure']);
export const dataClassificationSchema = z.enum(['PUBLIC', 'INTERNAL', 'CONFIDENTIAL', 'PHI']);

/** A JSON value as stored in `details` (checked by {@link detailsIssues}, never by recursion). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * The schema of one event as sent by a producer, for the configured limits: every string is
 * well-formed Unicode without NUL and within `maxStringLength`, `details` is checked iteratively
 * against depth, key and string limits, the whole event against `maxBytes`, and a producer-signed
 * event must be sent in committed form. Unknown top-level fields are rejected. It is the only
 * parser of events: REST, tRPC and the bulk items all go through it, and the service receives
 * its output.
 */
export function eventInputSchemaFor(limits: EventLimits) {
  const text = (max: number) => safeText(Math.min(max, limits.maxStringLength));
  const sessionContextSchema = z.strictObject({
    sessionId: text(256).optional(),
    ipAddress: z.union([z.ipv4(), z.ipv6()]).optional(),
    userAgent: text(1024).optional(),
    geolocation: text(256).optional(),
  });
  const detailsSchema = z
    .custom<Record<string, JsonValue>>(() => true)
    .superRefine((value, ctx) => {
      for (const issue of detailsIssues(value, limits)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    })
    .meta({
      type: 'object',
      additionalProperties: true,
      description: `free-form JSON object: at most ${limits.maxDepth} levels deep, ${limits.maxKeys} keys per object, ${limits.maxStringLength} characters per string`,
    });
  return z
    .strictObject({
      timestamp: instantSchema().optional().describe('when it happened (RFC 3339); default: recordedAt'),
      action: actionSchema,
      status: eventStatusSchema,
      principalId: text(256).optional(),
      principalType: text(64).optional(),
      targetResourceType: text(128).optional(),
      targetResourceId: text(256).optional(),
      patientId: text(256).optional(),
      outcomeDescription: text(2000).optional(),
      dataClassification: dataClassificationSchema.optional().describe('default: INTERNAL'),
      correlationId: text(256).optional(),
      sessionContext: sessionContextSchema.optional(),
      retentionPolicy: text(64).optional(),
      eventVersion: text(32).optional(),
      details: detailsSchema.optional(),
      idempotencyKey: z
        .string()
        .min(1)
        .max(255)
        .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
        .optional(),
      producerSignature: z
        .strictObject({
          keyId: z.string().regex(/^[0-9a-f]{16}$/, '16 hex digits (a registered producer key id)'),
          signature: z.string().regex(/^[A-Za-z0-9+/]{1,126}={0,2}$/, 'standard base64').describe('standard base64 Ed25519 signature'),
        })
        .optional()
        .describe('Ed25519 over the RFC 8785 JCS of this event without producerSignature; needs timestamp in RFC 3339 UTC ms form and an explicit dataClassification'),
    })
    .superRefine((event, ctx) => {
      const bytes = Buffer.byteLength(JSON.stringify(event), 'utf8');
      if (bytes > limits.maxBytes) ctx.addIssue({ code: 'custom', path: [], message: `event is ${bytes} bytes; the limit is ${limits.maxBytes}` });
      if (event.producerSignature) {
        // A signed event must be sent in committed form, so verifiers can rebuild the signed bytes
        // from the committed values alone: no defaults may be applied to it.
        if (event.timestamp === undefined || !isRecordedAt(event.timestamp)) {
          ctx.addIssue({ code: 'custom', path: ['timestamp'], message: 'a signed event needs timestamp in RFC 3339 UTC with milliseconds and Z' });
        }
        if (event.dataClassification === undefined) {
          ctx.addIssue({ code: 'custom', path: ['dataClassification'], message: 'a signed event needs an explicit dataClassification' });
        }
      }
    })
    .transform((event) => ({ ...event, dataClassification: event.dataClassification ?? ('INTERNAL' as const) }));
}

/** The event schema type (for any limits). */
export type EventInputSchema = ReturnType<typeof eventInputSchemaFor>;
/** Parsed event input (defaults applied). */
export type EventInput = z.output<EventInputSchema>;
/** An event as a client sends it. */
export type EventInputBody = z.input<EventInputSchema>;

/** One item of a bulk append, parsed on its own by the event schema. */
export type BulkItem =
  | { ok: true; input: EventInput }
  | { ok: false; issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string; code?: string; keys?: ReadonlyArray<string> }> };

/** Parses one bulk item: a bad item is kept with its issues, so the others can still be appended. */
export function parseBulkItem(schema: EventInputSchema, raw: unknown): BulkItem {
  const parsed = schema.safeParse(raw);
  return parsed.success ? { ok: true, input: parsed.data } : { ok: false, issues: parsed.error.issues };
}

/** Names of the committed fields, in a fixed order (docs/ledger-spec.md §4.1). */
export const EVENT_FIELDS = [
  'timestamp',
  'action',
  'status',
  'principalId',
  'principalType',
  'targetResourceType',
  'targetResourceId',
  'patientId',
  'outcomeDescription',
  'dataClassification',
  'correlationId',
  'sessionContext',
  'retentionPolicy',
  'eventVersion',
  'details',
  'idempotencyKey',
] as const satisfies ReadonlyArray<keyof EventInput>;
/** A committed field name. */
export type EventField = (typeof EVENT_FIELDS)[number];

const b64 = z.string().describe('standard base64');

/** An inclusion proof (RFC 9162 §2.1.3) of one leaf in a tree of `treeSize`. */
export const inclusionProofSchema = z.object({
  leafIndex: z.number().int().nonnegative(),
  treeSize: z.number().int().positive(),
  hashes: z.array(b64),
});
export type InclusionProof = z.infer<typeof inclusionProofSchema>;

/** What every acknowledged write returns: enough to verify the event offline. */
export const receiptSchema = z.object({
  id: z.uuid(),
  leafIndex: z.number().int().nonnegative(),
  leafHash: b64,
  recordedAt: z.string(),
  treeSize: z.number().int().positive(),
  rootHash: b64,
  checkpoint: z.string().describe('C2SP signed note (tlog-checkpoint) covering this leaf'),
  inclusionProof: inclusionProofSchema,
  duplicate: z.boolean().describe('true when an idempotency key matched an earlier event'),
});
export type Receipt = z.infer<typeof receiptSchema>;

/** An event as stored and returned by queries. Erased fields are absent and listed in `erasedFields`. */
export const eventRecordSchema = z.object({
  id: z.uuid(),
  organizationId: z.uuid(),
  recordedAt: z.string(),
  leafIndex: z.number().int().nonnegative(),
  leafHash: b64,
  timestamp: z.string().optional(),
  action: z.string().optional(),
  status: z.string().optional(),
  principalId: z.string().optional(),
  principalType: z.string().optional(),
  targetResourceType: z.string().optional(),
  targetResourceId: z.string().optional(),
  patientId: z.string().optional(),
  outcomeDescription: z.string().optional(),
  dataClassification: z.string().optional(),
  correlationId: z.string().optional(),
  sessionContext: z.record(z.string(), z.string()).optional(),
  retentionPolicy: z.string().optional(),
  eventVersion: z.string().optional(),
  details: z.record(z.string(), z.json()).optional(),
  idempotencyKey: z.string().optional(),
  erasedFields: z.array(z.string()),
});
export type EventRecord = z.infer<typeof eventRecordSchema>;

/** A `[from, to)` range on recordedAt (server time, certified by the ledger). */
const dateRangeSchema = z
  .strictObject({ from: instantSchema().optional(), to: instantSchema().optional() })
  .describe('on recordedAt (server time, certified by the ledger); from inclusive, to exclusive');

/** Most values one filter list may hold. */
export const MAX_FILTER_VALUES = 100;
const filterList = <T extends z.ZodType>(item: T) => z.array(item).min(1).max(MAX_FILTER_VALUES);

/** Filters of `events.query`. */
export const eventQuerySchema = z.strictObject({
  dateRange: dateRangeSchema.optional(),
  principalIds: filterList(safeText(256)).optional(),
  actions: filterList(actionSchema).optional(),
  statuses: filterList(eventStatusSchema).optional(),
  dataClassifications: filterList(dataClassificationSchema).optional(),
  targetResourceTypes: filterList(safeText(128)).optional(),
  targetResourceIds: filterList(safeText(256)).optional(),
  patientIds: filterList(safeText(256)).optional(),
  correlationIds: filterList(safeText(256)).optional(),
  sort: z.enum(['asc', 'desc']).default('desc'),
  limit: z.number().int().min(1).max(1000).default(50),
  cursor: cursorSchema.optional(),
});
/** Parsed query (the cursor decoded). */
export type EventQuery = z.output<typeof eventQuerySchema>;

export const eventPageSchema = z.object({
  items: z.array(eventRecordSchema),
  nextCursor: z.string().nullable(),
});
export type EventPage = z.infer<typeof eventPageSchema>;

export const eventStatsInputSchema = z.strictObject({
  groupBy: z.enum(['action', 'status', 'dataClassification', 'day', 'hour']),
  dateRange: dateRangeSchema.optional(),
});
export type EventStatsInput = z.infer<typeof eventStatsInputSchema>;

export const eventStatsSchema = z.object({
  groupBy: z.string(),
  total: z.number().int().nonnegative(),
  groups: z.array(z.object({ key: z.string(), count: z.number().int().nonnegative() })),
});
export type EventStats = z.infer<typeof eventStatsSchema>;
