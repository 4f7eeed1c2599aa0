/**
 * Operations of retention (docs/privacy.md §6), spread into the operation table.
 */
import { z } from 'zod';
import { AppError } from '../errors';
import { POLICY_CLASSES } from '../retention/service';
import type { AuthedContext } from './context';
import type { Operation } from './operations';
import { requesterOf } from './ops-privacy';

function op<I extends z.ZodType, O extends z.ZodType>(o: Operation<I, O>): Operation<I, O> {
  return o;
}

const days = z.number().int().min(0).max(36_500).nullable();
const policySchema = z.object({
  dataClassification: z.enum(POLICY_CLASSES),
  archiveAfterDays: days,
  eraseAfterDays: days,
});
const policyOutSchema = policySchema.extend({ isDefault: z.boolean() });

/** The retention service, or 503 when this process runs none. */
function retentionOf(ctx: AuthedContext) {
  if (!ctx.services.retention)
    throw new AppError('UNAVAILABLE', 'retention is not configured on this server');
  return ctx.services.retention;
}

/** The retention operations. */
export function retentionOperations() {
  return {
    retentionPoliciesGet: op({
      kind: 'query',
      summary:
        'Retention policies of the caller’s organization per data classification (stored, then built-in defaults)',
      permission: 'privacy.retention:read',
      input: z.strictObject({}).default({}),
      output: z.object({ policies: z.array(policyOutSchema) }),
      rest: { method: 'get', path: '/retention/policies' },
      example: {},
      run: async (ctx) => ({ policies: await retentionOf(ctx).policies(ctx.principal.organizationId) }),
    }),
    retentionPoliciesPut: op({
      kind: 'mutation',
      summary:
        'Replace the retention policies of the caller’s organization (audited as retention.policies.update)',
      permission: 'privacy.retention:manage',
      input: z.strictObject({
        policies: z
          .array(policySchema)
          .max(POLICY_CLASSES.length)
          .superRefine((list, ctx) => {
            list.forEach((p, i) => {
              if (list.findIndex((q) => q.dataClassification === p.dataClassification) !== i)
                ctx.addIssue({
                  code: 'custom',
                  path: [i, 'dataClassification'],
                  message: 'one policy per classification',
                });
              if (
                p.eraseAfterDays !== null &&
                (p.archiveAfterDays === null || p.archiveAfterDays > p.eraseAfterDays)
              )
                ctx.addIssue({
                  code: 'custom',
                  path: [i, 'eraseAfterDays'],
                  message:
                    'events are archived before they are erased: needs archiveAfterDays ≤ eraseAfterDays',
                });
            });
          }),
      }),
      output: z.object({ policies: z.array(policyOutSchema) }),
      rest: { method: 'put', path: '/retention/policies' },
      example: { policies: [{ dataClassification: 'PHI', archiveAfterDays: 365, eraseAfterDays: 2190 }] },
      run: async (ctx, input) => ({
        policies: await retentionOf(ctx).setPolicies(
          ctx.principal.organizationId,
          requesterOf(ctx),
          input.policies,
        ),
      }),
    }),
    retentionArchivesList: op({
      kind: 'query',
      summary: 'Archives written by retention runs for the caller’s organization, newest first',
      permission: 'privacy.retention:read',
      input: z
        .strictObject({ limit: z.number().int().min(1).max(1000).default(100) })
        .default({ limit: 100 }),
      output: z.object({
        archives: z.array(
          z.object({
            id: z.uuid(),
            start: z.number().int(),
            end: z.number().int(),
            events: z.number().int(),
            destination: z.string(),
            object: z.string(),
            sha256: z.string(),
            bytes: z.number().int(),
            createdAt: z.string(),
          }),
        ),
      }),
      rest: { method: 'get', path: '/retention/archives' },
      example: { limit: 10 },
      run: async (ctx, input) => ({
        archives: await retentionOf(ctx).archives(ctx.principal.organizationId, input.limit),
      }),
    }),
  };
}
