/**
 * The behaviour-analytics operations (docs/analytics.md), spread into the operation table. Their
 * answers reveal what events contain (actions, principals, times), so they are reads of the log:
 * `audit.analytics:read` is granted where `audit.events:read` is, and people's calls are audited
 * like event reads. Without pgvector each answers 501 naming the extension (before anything is
 * audited or read).
 */
import { z } from 'zod';
import { instantSchema, safeText } from '../util/safe-input';
import { recordRead } from './accountability';
import type { AuthedContext } from './context';
import type { Operation } from './operations';

const summaryFields = {
  eventId: z.uuid(),
  recordedAt: z.string(),
  action: z.string().nullable(),
  status: z.string().nullable(),
  principalId: z.string().nullable(),
  targetResourceType: z.string().nullable(),
};
const neighborSchema = z.object({ ...summaryFields, distance: z.number().describe('cosine distance (0 = same direction, 2 = opposite)') });
const anomalySchema = z.object({
  ...summaryFields,
  distance: z.number().describe('cosine distance from the principal’s baseline centroid'),
  score: z.number().describe('(distance − baseline mean distance) / max(baseline standard deviation, 0.08)'),
  baseline: z.object({ events: z.number().int(), meanDistance: z.number(), stddevDistance: z.number() }),
});

const EXAMPLE_UUID = '01900000-0000-7000-8000-000000000000';

/**
 * An audited read (as the event reads of the operation table) that checks for pgvector first, so
 * a 501 is answered before anything is read or audited.
 */
function analyticsRead<I, R>(operation: string, run: (ctx: AuthedContext, input: I) => Promise<R>) {
  return async (ctx: AuthedContext, input: I): Promise<R> => {
    await ctx.services.analytics.requireAvailable();
    const [out] = await Promise.all([run(ctx, input), recordRead(ctx, 'read', operation, input)]);
    return out;
  };
}

const op = <I extends z.ZodType, O extends z.ZodType>(o: Operation<I, O>): Operation<I, O> => o;

/** The analytics operations. */
export function analyticsOperations() {
  return {
    analyticsSimilar: op({
      kind: 'query',
      summary: 'The k events of the organization most similar to an event (embedding k-NN), with cosine distances',
      permission: 'audit.analytics:read',
      input: z.strictObject({ id: z.uuid(), k: z.number().int().min(1).max(100).default(10) }),
      output: z.object({ eventId: z.uuid(), neighbors: z.array(neighborSchema) }),
      rest: { method: 'get', path: '/analytics/events/:id/similar' },
      example: { id: EXAMPLE_UUID, k: 5 },
      run: analyticsRead('analytics.similar', (ctx, input: { id: string; k: number }) => ctx.services.analytics.similar(ctx.principal.organizationId, input.id, input.k)),
    }),
    analyticsPrincipalBaseline: op({
      kind: 'query',
      summary: 'A principal’s baseline over a window: centroid of its event embeddings and their spread',
      permission: 'audit.analytics:read',
      input: z.strictObject({
        principalId: safeText(256),
        from: instantSchema().optional().describe('default: ANALYTICS_BASELINE_DAYS before `to`'),
        to: instantSchema().optional().describe('default: now'),
      }),
      output: z.object({
        principalId: z.string(),
        from: z.string(),
        to: z.string(),
        events: z.number().int(),
        centroid: z.array(z.number()).nullable(),
        spread: z.object({ mean: z.number(), stddev: z.number(), max: z.number() }).nullable(),
      }),
      rest: { method: 'get', path: '/analytics/principals/:principalId/baseline' },
      example: { principalId: 'dr-house' },
      run: analyticsRead('analytics.principalBaseline', (ctx, input: { principalId: string; from?: string | undefined; to?: string | undefined }) =>
        ctx.services.analytics.principalBaseline(ctx.principal.organizationId, input.principalId, {
          from: input.from === undefined ? undefined : new Date(input.from),
          to: input.to === undefined ? undefined : new Date(input.to),
        }),
      ),
    }),
    analyticsAnomalies: op({
      kind: 'query',
      summary: 'Events whose distance from their principal’s baseline scores above a threshold, highest first',
      permission: 'audit.analytics:read',
      input: z
        .strictObject({
          from: instantSchema().optional().describe('start of the scored window (default: 24 hours before `to`)'),
          to: instantSchema().optional().describe('end of the scored window (default: now)'),
          baselineDays: z.number().int().min(1).max(3650).optional().describe('days before `from` forming each principal’s baseline (default: ANALYTICS_BASELINE_DAYS)'),
          threshold: z.number().positive().max(1000).optional().describe('score above which an event is listed (default: the organization’s threshold)'),
          minBaselineEvents: z.number().int().min(1).max(100_000).optional().describe('fewest baseline events a principal needs to be scored (default: ANALYTICS_MIN_BASELINE_EVENTS)'),
          limit: z.number().int().min(1).max(1000).default(50),
        })
        .default({ limit: 50 }),
      output: z.object({ from: z.string(), to: z.string(), baselineFrom: z.string(), threshold: z.number(), anomalies: z.array(anomalySchema) }),
      rest: { method: 'get', path: '/analytics/anomalies' },
      example: { from: '2026-01-01T00:00:00Z', threshold: 4, limit: 20 },
      run: analyticsRead('analytics.anomalies', (ctx, input: { from?: string | undefined; to?: string | undefined; baselineDays?: number | undefined; threshold?: number | undefined; minBaselineEvents?: number | undefined; limit: number }) =>
        ctx.services.analytics.anomalies(ctx.principal.organizationId, {
          from: input.from === undefined ? undefined : new Date(input.from),
          to: input.to === undefined ? undefined : new Date(input.to),
          baselineDays: input.baselineDays,
          threshold: input.threshold,
          minBaselineEvents: input.minBaselineEvents,
          limit: input.limit,
        }),
      ),
    }),
    analyticsSettings: op({
      kind: 'query',
      summary: 'The organization’s anomaly threshold (its own, or the server default)',
      permission: 'audit.analytics:read',
      input: z.strictObject({}).default({}),
      output: z.object({ anomalyThreshold: z.number() }),
      rest: { method: 'get', path: '/analytics/settings' },
      example: {},
      run: async (ctx) => {
        await ctx.services.analytics.requireAvailable();
        return { anomalyThreshold: await ctx.services.analytics.threshold(ctx.principal.organizationId) };
      },
    }),
    analyticsSetThreshold: op({
      kind: 'mutation',
      summary: 'Set the organization’s anomaly threshold (null: back to the server default)',
      permission: 'audit.analytics:manage',
      input: z.strictObject({ anomalyThreshold: z.number().positive().max(1000).nullable() }),
      output: z.object({ anomalyThreshold: z.number() }),
      rest: { method: 'post', path: '/analytics/settings' },
      example: { anomalyThreshold: 4 },
      run: async (ctx, input) => ({ anomalyThreshold: await ctx.services.analytics.setThreshold(ctx.principal.organizationId, input.anomalyThreshold) }),
    }),
  };
}
