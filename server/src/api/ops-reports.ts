/**
 * Operations of the compliance reports that answer JSON (the disclosure rule); spread into the
 * operation table by createOperations. The reports themselves stream (REST `POST /reports` in
 * http/reports.ts, tRPC `reports.create`), so they sit beside the table like the bundle export.
 */
import { z } from 'zod';
import { disclosureRuleSchema } from '../reports/disclosure-rule';
import type { ReportInput } from '../reports/schema';
import type { OpenReport } from '../reports/service';
import { recordAuthEvent, recordRead } from './accountability';
import type { AuthedContext } from './context';
import type { Operation } from './operations';

/**
 * Opens a report for the caller, as REST `POST /reports` and tRPC `reports.create` do: a subject
 * given as a pseudonym is resolved first; identifiers are shown as the caller may see them
 * (pseudonyms for callers without `privacy.pseudonyms:resolve`, docs/privacy.md); the checkpoint
 * is read, then the generation is appended to the log (`audit.log.report`, with the resolved
 * subject so that "who looked at this patient" finds it), so the report never lists itself.
 */
export async function openReportFor(ctx: AuthedContext, input: ReportInput): Promise<OpenReport> {
  const org = ctx.principal.organizationId;
  const privacy = ctx.services.privacy;
  const subject = async (v: string) => (await privacy.resolveFilter(org, [v]))?.[0] ?? v;
  const resolved: ReportInput =
    input.kind === 'user-activity'
      ? { ...input, principalId: await subject(input.principalId) }
      : input.kind === 'integrity'
        ? input
        : { ...input, patientId: await subject(input.patientId) };
  const view = await privacy.viewFor(ctx.principal);
  const report = await ctx.services.reports.open(org, resolved, view);
  await recordRead(ctx, 'report', `reports.${input.kind}`, resolved);
  return report;
}

const ruleViewSchema = z.object({
  rule: z.object({
    actionPrefixes: z.array(z.string()),
    actions: z.array(z.string()),
    eventsWithRecipient: z.boolean(),
    excludedPurposes: z.array(z.string()),
  }),
  custom: z.boolean().describe('false: the organization never set a rule and the default applies'),
  updatedAt: z.string().nullable(),
  updatedBy: z.string().nullable(),
});

function op<I extends z.ZodType, O extends z.ZodType>(o: Operation<I, O>): Operation<I, O> {
  return o;
}

/** The report operations of the table. */
export function reportOperations() {
  return {
    reportsDisclosureRule: op({
      kind: 'query',
      summary: 'The organization’s disclosure rule: which events the accounting of disclosures (HIPAA §164.528) lists',
      permission: 'audit.reports:create',
      input: z.strictObject({}).default({}),
      output: ruleViewSchema,
      rest: { method: 'get', path: '/reports/disclosure-rule' },
      example: {},
      run: (ctx: AuthedContext) => ctx.services.reports.disclosureRule(ctx.principal.organizationId),
    }),
    reportsSetDisclosureRule: op({
      kind: 'mutation',
      summary: 'Replace the organization’s disclosure rule (omitted fields take their defaults); the change is logged',
      permission: 'audit.reports:configure',
      input: disclosureRuleSchema,
      output: ruleViewSchema,
      rest: { method: 'post', path: '/reports/disclosure-rule' },
      example: { actionPrefixes: ['disclosure.'], actions: ['fhir.Bundle.export'], eventsWithRecipient: true },
      run: async (ctx: AuthedContext, input) => {
        const org = ctx.principal.organizationId;
        const view = await ctx.services.reports.setDisclosureRule(org, input, ctx.principal.subject.slice(0, 256));
        await recordAuthEvent(ctx, org, 'admin.reports.disclosure-rule.update', {
          principal: ctx.principal,
          targetResourceType: 'DisclosureRule',
          targetResourceId: org,
          details: { rule: input },
        });
        return view;
      },
    }),
  };
}
