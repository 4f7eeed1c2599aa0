/**
 * The audit event as producers send it, and the shapes the API returns. Field names are the ones
 * smedrec frontends already send; unknown top-level fields are rejected.
 */
import { z } from 'zod';

const text = (max: number) => z.string().min(1).max(max);

/** `data.read`, `auth.login.failure`, `fhir.Patient.read`: two or more dot-separated segments. */
export const actionSchema = z
  .string()
  .max(128)
  .regex(/^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$/, 'must be dot-namespaced, e.g. "data.read"');

export const eventStatusSchema = z.enum(['attempt', 'success', 'failure']);
export const dataClassificationSchema = z.enum(['PUBLIC', 'INTERNAL', 'CONFIDENTIAL', 'PHI']);

/** Where the action came from. */
export const sessionContextSchema = z.strictObject({
  sessionId: text(256).optional(),
  ipAddress: z.union([z.ipv4(), z.ipv6()]).optional(),
  userAgent: text(1024).optional(),
  geolocation: text(256).optional(),
});

/** A JSON object of free-form details; depth, size and string limits are checked by `checkEventLimits`. */
export const detailsSchema = z.record(z.string(), z.json());

/** One event as sent by a producer. */
export const eventInputSchema = z.strictObject({
  timestamp: z.iso.datetime({ offset: true }).optional().describe('when it happened (ISO 8601); default: now'),
  action: actionSchema,
  status: eventStatusSchema,
  principalId: text(256).optional(),
  principalType: text(64).optional(),
  targetResourceType: text(128).optional(),
  targetResourceId: text(256).optional(),
  patientId: text(256).optional(),
  outcomeDescription: text(2000).optional(),
  dataClassification: dataClassificationSchema.default('INTERNAL'),
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
      signature: z.string().max(128).describe('standard base64 Ed25519 signature'),
    })
    .optional()
    .describe('Ed25519 over the RFC 8785 JCS of this event without producerSignature; needs timestamp in RFC 3339 UTC ms form and an explicit dataClassification'),
});
/** Parsed event input (defaults applied). */
export type EventInput = z.infer<typeof eventInputSchema>;

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

/** Filters of `events.query`. */
export const eventQuerySchema = z.strictObject({
  dateRange: z
    .strictObject({ from: z.iso.datetime({ offset: true }).optional(), to: z.iso.datetime({ offset: true }).optional() })
    .optional()
    .describe('on recordedAt (server time, certified by the ledger); from inclusive, to exclusive'),
  principalIds: z.array(text(256)).min(1).max(100).optional(),
  actions: z.array(actionSchema).min(1).max(100).optional(),
  statuses: z.array(eventStatusSchema).min(1).optional(),
  dataClassifications: z.array(dataClassificationSchema).min(1).optional(),
  targetResourceTypes: z.array(text(128)).min(1).max(100).optional(),
  targetResourceIds: z.array(text(256)).min(1).max(100).optional(),
  patientIds: z.array(text(256)).min(1).max(100).optional(),
  correlationIds: z.array(text(256)).min(1).max(100).optional(),
  sort: z.enum(['asc', 'desc']).default('desc'),
  limit: z.number().int().min(1).max(1000).default(50),
  cursor: z.string().max(200).optional().describe('opaque; from the previous page'),
});
export type EventQuery = z.infer<typeof eventQuerySchema>;

export const eventPageSchema = z.object({
  items: z.array(eventRecordSchema),
  nextCursor: z.string().nullable(),
});
export type EventPage = z.infer<typeof eventPageSchema>;

export const eventStatsInputSchema = z.strictObject({
  groupBy: z.enum(['action', 'status', 'dataClassification', 'day', 'hour']),
  dateRange: z
    .strictObject({ from: z.iso.datetime({ offset: true }).optional(), to: z.iso.datetime({ offset: true }).optional() })
    .optional(),
});
export type EventStatsInput = z.infer<typeof eventStatsInputSchema>;

export const eventStatsSchema = z.object({
  groupBy: z.string(),
  total: z.number().int().nonnegative(),
  groups: z.array(z.object({ key: z.string(), count: z.number().int().nonnegative() })),
});
export type EventStats = z.infer<typeof eventStatsSchema>;
