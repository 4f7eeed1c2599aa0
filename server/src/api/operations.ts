/**
 * Every API operation, defined once: permission, input and output schemas, the REST route, and
 * the service call. The tRPC routers, the REST router and the OpenAPI document are all built from
 * this table, so a behaviour is never written twice. The table is built for the configured input
 * limits, because the event schema enforces them: the schemas here are the only parsers of input.
 */
import { z } from 'zod';
import type { IdentityService } from '../auth/identity';
import { API_KEY_ROLES, ROLES, type Permission, type Role } from '../auth/permissions';
import { AppError } from '../errors';
import type { EventLimits } from '../events/limits';
import {
  eventInputSchemaFor,
  eventPageSchema,
  eventQuerySchema,
  eventRecordSchema,
  eventStatsInputSchema,
  eventStatsSchema,
  inclusionProofSchema,
  parseBulkItem,
  receiptSchema,
  type EventInputBody,
} from '../events/schema';
import { safeText } from '../util/safe-input';
import { recordAuthEvent, recordRead, type AuditedAccess } from './accountability';
import { deliveryOperations } from './ops-delivery';
import { getEventFor, leavesFor, privacyOperations, queryEventsFor } from './ops-privacy';
import { retentionOperations } from './ops-retention';
import type { AuthedContext } from './context';
import { reportOperations } from './ops-reports';
import { createAlertOperations } from './ops-alerts';
import { analyticsOperations } from './ops-analytics';

/** How an operation is exposed over REST. */
export interface RestBinding {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Express path under /api/v1, e.g. `/events/:id`; `:name` parameters are input fields. */
  path: string;
  /** Success status (default 200). */
  status?: number;
}

/** One operation. */
export interface Operation<I extends z.ZodType, O extends z.ZodType> {
  kind: 'query' | 'mutation';
  summary: string;
  permission: Permission;
  input: I;
  output: O;
  rest: RestBinding;
  /** A valid input, published as the OpenAPI example; a test sends it for every operation. */
  example: z.input<I>;
  run: (ctx: AuthedContext, input: z.output<I>) => Promise<z.input<O>>;
  /**
   * The output is built by the server in exactly the output schema's shape (the compiler checks
   * `run`'s type), so the adapters do not validate it at run time: set on the ingest hot path,
   * where validating every receipt cost more than building it.
   */
  trustedOutput?: true;
}

function op<I extends z.ZodType, O extends z.ZodType>(o: Operation<I, O>): Operation<I, O> {
  return o;
}

/**
 * A read of the log that is itself audited (api/accountability.ts): the event is appended
 * concurrently with the read, through the same group commit; if it fails, so does the read.
 */
function audited<I, R>(access: AuditedAccess, operation: string, run: (ctx: AuthedContext, input: I) => Promise<R>) {
  return async (ctx: AuthedContext, input: I): Promise<R> => {
    const [out] = await Promise.all([run(ctx, input), recordRead(ctx, access, operation, input)]);
    return out;
  };
}

/** What the operation table is built for (from configuration). */
export interface InputLimits {
  event: EventLimits;
}

const b64 = z.string();
const checkpointSchema = z.object({ origin: z.string(), treeSize: z.number().int(), rootHash: b64, note: z.string() });
const leafIndex = z.number().int().nonnegative();

const producerKeySchema = z.object({
  keyId: z.string(),
  name: z.string(),
  publicKey: b64,
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
});

const apiKeyInfoSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  role: z.enum(ROLES),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
});

const memberSchema = z.object({
  userId: z.string(),
  email: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  createdAt: z.string(),
});

/** The identity service, or 503 when sign-in is off on this server. */
function identityOf(ctx: AuthedContext): IdentityService {
  if (!ctx.services.identity) throw new AppError('UNAVAILABLE', 'people and sign-in are not configured on this server (AUTH_SECRET)');
  return ctx.services.identity;
}

/** Only an owner may grant, change or take away the owner role. */
async function checkOwnerRule(ctx: AuthedContext, identity: IdentityService, email: string, newRole: Role | null): Promise<void> {
  if (ctx.principal.role === 'owner') return;
  const current = await identity.roleOf(ctx.principal.organizationId, email);
  if (newRole === 'owner' || current === 'owner') throw new AppError('FORBIDDEN', 'only an owner may grant, change or remove the owner role');
}

/** The error of one failed bulk item: the input's fault (400) or the server's (503/500). */
const itemErrorSchema = z.object({
  code: z.enum(['BAD_REQUEST', 'UNAVAILABLE', 'INTERNAL']),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })),
});

/** A failed bulk item. */
const itemFailureSchema = z.object({ index: z.number().int(), ok: z.literal(false), error: itemErrorSchema });

/** A receipt of a compact bulk answer: the event's place in the log, without checkpoint or proof. */
const compactReceiptSchema = z.object({
  id: z.uuid(),
  leafIndex: z.number().int().nonnegative(),
  leafHash: b64,
  recordedAt: z.string(),
  duplicate: z.boolean(),
});

const EXAMPLE_EVENT = {
  action: 'data.read',
  status: 'success',
  principalId: 'dr-house',
  patientId: 'patient-42',
  dataClassification: 'PHI',
  targetResourceType: 'Patient',
  targetResourceId: 'patient-42',
} as const;
const EXAMPLE_UUID = '01900000-0000-7000-8000-000000000000';

/** Builds the operation table for the configured limits. */
export function createOperations(limits: InputLimits) {
  const eventInputSchema = eventInputSchemaFor(limits.event);
  /**
   * One bulk item: anything is accepted here and parsed on its own by the event schema, so one
   * bad item is reported with its index while the others are appended. Documented as an event.
   */
  const bulkItem = z
    .custom<EventInputBody>(() => true)
    .transform((raw) => parseBulkItem(eventInputSchema, raw))
    .meta(documentAs(eventInputSchema));

  return {
    ...reportOperations(),
    accountMe: op({
      kind: 'query',
      summary: 'The caller: organization, role and credential (API key, session or OIDC token)',
      permission: 'account.self:read',
      input: z.strictObject({}).default({}),
      output: z.object({
        organizationId: z.uuid(),
        role: z.enum(ROLES),
        credential: z.enum(['apiKey', 'session', 'oidc']),
        /** The key id, the user's e-mail address, or the token's subject. */
        subject: z.string(),
        userId: z.string().nullable(),
      }),
      rest: { method: 'get', path: '/me' },
      example: {},
      run: (ctx) =>
        Promise.resolve({
          organizationId: ctx.principal.organizationId,
          role: ctx.principal.role,
          credential: ctx.principal.kind,
          subject: ctx.principal.subject,
          userId: ctx.principal.userId ?? null,
        }),
    }),
    eventsCreate: op({
      kind: 'mutation',
      trustedOutput: true,
      summary: 'Append one audit event; answers after COMMIT with a verifiable receipt',
      permission: 'audit.events:create',
      input: eventInputSchema,
      output: receiptSchema,
      rest: { method: 'post', path: '/events', status: 201 },
      example: EXAMPLE_EVENT,
      run: (ctx, input) => ctx.services.events.create(ctx.principal.organizationId, input),
    }),
    eventsBulkCreate: op({
      kind: 'mutation',
      summary: 'Append 1–1000 events; each item is validated and acknowledged on its own',
      permission: 'audit.events:create',
      trustedOutput: true,
      input: z.strictObject({
        events: z.array(bulkItem).min(1).max(1000),
        receipts: z
          .enum(['full', 'compact'])
          .default('full')
          .describe(
            '"full" (default): every receipt carries its checkpoint and inclusion proof. "compact": the answer carries the newest checkpoint once, ' +
              'each receipt only id, leafIndex, leafHash, recordedAt and duplicate; proofs are fetched at checkpoint.treeSize from /ledger/proofs/inclusion',
          ),
      }),
      output: z.union([
        z.object({
          accepted: z.number().int(),
          rejected: z.number().int(),
          results: z.array(z.union([z.object({ index: z.number().int(), ok: z.literal(true), receipt: receiptSchema }), itemFailureSchema])),
        }),
        z.object({
          accepted: z.number().int(),
          rejected: z.number().int(),
          receipts: z.literal('compact'),
          checkpoint: z
            .object({ treeSize: z.number().int().positive(), rootHash: b64, note: z.string() })
            .nullable()
            .describe('the newest signed checkpoint of this answer: it covers every accepted event (null when none was accepted)'),
          results: z.array(z.union([z.object({ index: z.number().int(), ok: z.literal(true), receipt: compactReceiptSchema }), itemFailureSchema])),
        }),
      ]),
      rest: { method: 'post', path: '/events/bulk' },
      example: { events: [EXAMPLE_EVENT, { ...EXAMPLE_EVENT, action: 'data.write' }] },
      run: async (ctx, input) => {
        const org = ctx.principal.organizationId;
        if (input.receipts === 'full') {
          const results = await ctx.services.events.bulkCreate(org, input.events);
          const accepted = results.filter((r) => r.ok).length;
          return { accepted, rejected: results.length - accepted, results };
        }
        const placed = await ctx.services.events.bulkCreate(org, input.events, { proofs: false });
        let newest: { treeSize: number; rootHash: string; note: string } | null = null;
        let accepted = 0;
        const results = placed.map((r) => {
          if (!r.ok) return r;
          accepted++;
          const { id, leafIndex, leafHash, recordedAt, duplicate, treeSize, rootHash, checkpoint } = r.receipt;
          if (!newest || treeSize > newest.treeSize) newest = { treeSize, rootHash, note: checkpoint };
          return { index: r.index, ok: true as const, receipt: { id, leafIndex, leafHash, recordedAt, duplicate } };
        });
        return { accepted, rejected: results.length - accepted, receipts: 'compact' as const, checkpoint: newest, results };
      },
    }),
    eventsQuery: op({
      kind: 'query',
      summary: 'Filtered, keyset-paginated events of the caller’s organization',
      permission: 'audit.events:read',
      input: eventQuerySchema,
      output: eventPageSchema,
      rest: { method: 'get', path: '/events' },
      example: { patientIds: ['patient-42'], statuses: ['success', 'failure'], dateRange: { from: '2020-01-01T00:00:00Z' }, limit: 10 },
      run: audited('read', 'events.query', queryEventsFor),
    }),
    eventsStats: op({
      kind: 'query',
      summary: 'Event counts grouped by action, status, dataClassification, day or hour',
      permission: 'audit.events:read',
      input: eventStatsInputSchema,
      output: eventStatsSchema,
      rest: { method: 'get', path: '/events/stats' },
      example: { groupBy: 'action', dateRange: { from: '2020-01-01T00:00:00Z' } },
      run: audited('read', 'events.stats', (ctx, input) => ctx.services.events.stats(ctx.principal.organizationId, input)),
    }),
    eventsGetById: op({
      kind: 'query',
      summary: 'One event, optionally with its inclusion proof and the current checkpoint',
      permission: 'audit.events:read',
      input: z.strictObject({ id: z.uuid(), withProof: z.boolean().default(false) }),
      output: z.object({
        event: eventRecordSchema,
        inclusionProof: inclusionProofSchema.extend({ leafHash: b64 }).optional(),
        checkpoint: checkpointSchema.optional(),
      }),
      rest: { method: 'get', path: '/events/:id' },
      example: { id: EXAMPLE_UUID, withProof: true },
      run: audited('read', 'events.getById', (ctx, input) => getEventFor(ctx, input.id, input.withProof)),
    }),
    ledgerCheckpoint: op({
      kind: 'query',
      summary: 'The latest signed checkpoint, or one at a given tree size',
      permission: 'audit.ledger:read',
      input: z.strictObject({ treeSize: z.number().int().nonnegative().optional() }).default({}),
      output: checkpointSchema,
      rest: { method: 'get', path: '/ledger/checkpoint' },
      example: { treeSize: 1 },
      run: (ctx, input) => ctx.services.ledger.checkpoint(ctx.principal.organizationId, input.treeSize),
    }),
    ledgerInclusionProof: op({
      kind: 'query',
      summary: 'Inclusion proof of a leaf (by index or event id) at a tree size (default: current)',
      permission: 'audit.ledger:read',
      input: z
        .strictObject({
          leafIndex: leafIndex.optional(),
          eventId: z.uuid().optional(),
          treeSize: z.number().int().positive().optional(),
        })
        .refine((v) => (v.leafIndex === undefined) !== (v.eventId === undefined), {
          message: 'give exactly one of leafIndex or eventId',
          path: ['leafIndex'],
        })
        // Parameters cannot say "one of" in OpenAPI; the document carries this extension.
        .meta({ 'x-exactly-one-of': ['leafIndex', 'eventId'] }),
      output: inclusionProofSchema.extend({ leafHash: b64 }),
      rest: { method: 'get', path: '/ledger/proofs/inclusion' },
      example: { leafIndex: 0, treeSize: 1 },
      run: audited('read', 'ledger.inclusionProof', async (ctx, input) => {
        const org = ctx.principal.organizationId;
        const index = input.leafIndex ?? (await ctx.services.events.leafIndexOf(org, input.eventId!));
        return ctx.services.ledger.inclusionProof(org, index, input.treeSize);
      }),
    }),
    ledgerConsistencyProof: op({
      kind: 'query',
      summary: 'Consistency proof between two tree sizes (RFC 9162 §2.1.4)',
      permission: 'audit.ledger:read',
      input: z.strictObject({ fromSize: z.number().int().nonnegative(), toSize: z.number().int().nonnegative() }),
      output: z.object({ fromSize: z.number().int(), toSize: z.number().int(), hashes: z.array(b64) }),
      rest: { method: 'get', path: '/ledger/proofs/consistency' },
      example: { fromSize: 1, toSize: 1 },
      run: audited('read', 'ledger.consistencyProof', (ctx, input) => ctx.services.ledger.consistencyProof(ctx.principal.organizationId, input.fromSize, input.toSize)),
    }),
    ledgerLeaves: op({
      kind: 'query',
      summary: 'Leaves [start, end) with committed values, salts and commitments, for full re-verification',
      permission: 'audit.events:export',
      input: z
        .strictObject({ start: leafIndex, end: z.number().int().positive() })
        .refine((v) => v.end > v.start && v.end - v.start <= 1000, { message: 'need start < end and at most 1000 leaves', path: ['end'] }),
      output: z.object({
        leaves: z.array(
          z.object({
            leafIndex: z.number().int(),
            id: z.uuid(),
            organizationId: z.uuid(),
            recordedAt: z.string(),
            leafHash: b64,
            fields: z.record(
              z.string(),
              z.object({
                commitment: z.string(),
                salt: z.string().nullable(),
                value: z.unknown().optional(),
                pseudonym: z.string().optional().describe('the value withheld from this caller, as its pseudonym (docs/privacy.md §4)'),
              }),
            ),
          }),
        ),
      }),
      rest: { method: 'get', path: '/ledger/leaves' },
      example: { start: 0, end: 1 },
      run: audited('export', 'ledger.leaves', (ctx, input) => leavesFor(ctx, input.start, input.end)),
    }),
    ledgerKeys: op({
      kind: 'query',
      summary: 'Checkpoint signing keys (signed-note verifier keys) with validity windows',
      permission: 'audit.ledger:read',
      input: z.strictObject({}).default({}),
      output: z.object({
        keys: z.array(
          z.object({
            keyId: z.string(),
            name: z.string(),
            verifierKey: z.string(),
            algorithm: z.literal('ed25519'),
            notBefore: z.string(),
            notAfter: z.string().nullable(),
            active: z.boolean(),
          }),
        ),
      }),
      rest: { method: 'get', path: '/ledger/keys' },
      example: {},
      run: async (ctx) => ({ keys: await ctx.services.ledger.keys() }),
    }),
    ledgerAlerts: op({
      kind: 'query',
      summary: 'Findings of the continuous self-audit for the caller’s organization, newest first',
      permission: 'audit.alerts:read',
      input: z.strictObject({ limit: z.number().int().min(1).max(1000).default(100) }).default({ limit: 100 }),
      output: z.object({
        alerts: z.array(
          z.object({
            id: z.uuid(),
            createdAt: z.string(),
            kind: z.enum(['leaf', 'checkpoint', 'bundle', 'node', 'head', 'witness']),
            leafIndex: z.number().int().nullable(),
            treeSize: z.number().int().nullable(),
            reason: z.string(),
          }),
        ),
      }),
      rest: { method: 'get', path: '/ledger/alerts' },
      example: { limit: 10 },
      run: async (ctx, input) => ({ alerts: await ctx.services.audit.alerts(ctx.principal.organizationId, input.limit) }),
    }),
    producerKeysRegister: op({
      kind: 'mutation',
      summary: 'Register a producer’s Ed25519 public key; events signed with it are verified on ingest',
      permission: 'admin.producerKeys:manage',
      input: z.strictObject({
        name: safeText(200),
        publicKey: z
          .string()
          .regex(/^[A-Za-z0-9+/]{43}=$/, 'standard base64 of 32 bytes')
          .describe('standard base64 of the raw 32-byte Ed25519 public key'),
      }),
      output: producerKeySchema,
      rest: { method: 'post', path: '/producer-keys', status: 201 },
      example: { name: 'ehr-backend', publicKey: '11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=' },
      run: (ctx, input) => ctx.services.events.registerProducerKey(ctx.principal.organizationId, input.name, input.publicKey),
    }),
    producerKeysList: op({
      kind: 'query',
      summary: 'Producer keys of the caller’s organization (public keys, revocation times)',
      permission: 'admin.producerKeys:read',
      input: z.strictObject({}).default({}),
      output: z.object({ keys: z.array(producerKeySchema) }),
      rest: { method: 'get', path: '/producer-keys' },
      example: {},
      run: async (ctx) => ({ keys: await ctx.services.events.listProducerKeys(ctx.principal.organizationId) }),
    }),
    membersList: op({
      kind: 'query',
      summary: 'Members of the caller’s organization (people who sign in) and their roles',
      permission: 'admin.members:read',
      input: z.strictObject({}).default({}),
      output: z.object({ members: z.array(memberSchema) }),
      rest: { method: 'get', path: '/members' },
      example: {},
      run: async (ctx) => ({ members: await identityOf(ctx).listMembers(ctx.principal.organizationId) }),
    }),
    membersAdd: op({
      kind: 'mutation',
      summary: 'Make an existing user a member of the caller’s organization, or change a member’s role',
      permission: 'admin.members:manage',
      input: z.strictObject({ email: safeText(254), role: z.enum(ROLES) }),
      output: memberSchema,
      rest: { method: 'post', path: '/members', status: 201 },
      example: { email: 'alice@example.org', role: 'auditor' },
      run: async (ctx, input) => {
        const identity = identityOf(ctx);
        await checkOwnerRule(ctx, identity, input.email, input.role);
        const member = await identity.addMember(ctx.principal.organizationId, input.email, input.role);
        await recordAuthEvent(ctx, ctx.principal.organizationId, 'auth.member.add', {
          principal: ctx.principal,
          targetResourceType: 'User',
          targetResourceId: member.userId,
          details: { email: member.email, role: member.role },
        });
        return member;
      },
    }),
    membersRemove: op({
      kind: 'mutation',
      summary: 'Remove a member from the caller’s organization (the user keeps other memberships)',
      permission: 'admin.members:manage',
      input: z.strictObject({ email: safeText(254) }),
      output: z.object({ userId: z.string(), removed: z.literal(true) }),
      rest: { method: 'post', path: '/members/remove' },
      example: { email: 'alice@example.org' },
      run: async (ctx, input) => {
        const identity = identityOf(ctx);
        await checkOwnerRule(ctx, identity, input.email, null);
        const { userId } = await identity.removeMember(ctx.principal.organizationId, input.email);
        await recordAuthEvent(ctx, ctx.principal.organizationId, 'auth.member.remove', { principal: ctx.principal, targetResourceType: 'User', targetResourceId: userId });
        return { userId, removed: true as const };
      },
    }),
    ...createAlertOperations(),
    apiKeysCreate: op({
      kind: 'mutation',
      summary: 'Create an API key for the caller’s organization; the secret is returned once',
      permission: 'admin.apiKeys:manage',
      input: z.strictObject({ name: safeText(200), role: z.enum(API_KEY_ROLES) }),
      output: apiKeyInfoSchema.extend({ key: z.string() }),
      rest: { method: 'post', path: '/api-keys', status: 201 },
      example: { name: 'ehr-backend', role: 'producer' },
      run: async (ctx, input) => {
        const created = await ctx.services.apiKeys.create(ctx.principal.organizationId, input.name, input.role);
        await recordAuthEvent(ctx, ctx.principal.organizationId, 'auth.apikey.create', {
          principal: ctx.principal,
          targetResourceType: 'ApiKey',
          targetResourceId: created.id,
          details: { name: created.name, role: created.role },
        });
        return created;
      },
    }),
    apiKeysList: op({
      kind: 'query',
      summary: 'API keys of the caller’s organization (never their secrets)',
      permission: 'admin.apiKeys:read',
      input: z.strictObject({}).default({}),
      output: z.object({ keys: z.array(apiKeyInfoSchema) }),
      rest: { method: 'get', path: '/api-keys' },
      example: {},
      run: async (ctx) => ({ keys: await ctx.services.apiKeys.list(ctx.principal.organizationId) }),
    }),
    apiKeysRevoke: op({
      kind: 'mutation',
      summary: 'Revoke an API key of the caller’s organization',
      permission: 'admin.apiKeys:manage',
      input: z.strictObject({ id: z.uuid() }),
      output: z.object({ id: z.uuid(), revoked: z.literal(true) }),
      rest: { method: 'delete', path: '/api-keys/:id' },
      example: { id: '00000000-0000-4000-8000-000000000000' },
      run: async (ctx, input) => {
        if (input.id === ctx.principal.keyId) throw new AppError('CONFLICT', 'an API key cannot revoke itself');
        await ctx.services.apiKeys.revoke(ctx.principal.organizationId, input.id);
        await recordAuthEvent(ctx, ctx.principal.organizationId, 'auth.apikey.revoke', { principal: ctx.principal, targetResourceType: 'ApiKey', targetResourceId: input.id });
        return { id: input.id, revoked: true as const };
      },
    }),
    ...privacyOperations(),
    ...deliveryOperations(),
    ...analyticsOperations(),
    ...retentionOperations(),
  };
}

/** The JSON Schema of `schema` as metadata, so a pass-through schema is documented as what it validates. */
function documentAs(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...json } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
  return json;
}

/** The operation table. */
export type Operations = ReturnType<typeof createOperations>;
/** The id of an operation (`eventsCreate` …). */
export type OperationId = keyof Operations;

/** Any operation of the table. */
export type AnyOperation = Operations[OperationId];
