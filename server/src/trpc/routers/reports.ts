import { z } from 'zod';
import type { Operations } from '../../api/operations';
import { openReportFor } from '../../api/ops-reports';
import type { ReportRecord } from '../../reports/schema';
import { reportInputSchema } from '../../reports/schema';
import { mutationOf, queryOf } from '../procedure';
import { permitted, router } from '../trpc';

/**
 * `reports.create`: a compliance report as an async iterable of records (header, rows, summary;
 * server/src/reports/schema.ts). Use it with `httpBatchStreamLink` so rows arrive as they are
 * read; `format` is ignored here (the REST twin `POST /api/v1/reports` renders JSON, CSV or PDF).
 * Generating a report is audited (`audit.log.report`) after its checkpoint was read.
 */
const create = permitted('audit.reports:create')
  .input(reportInputSchema)
  .output(z.custom<AsyncGenerator<ReportRecord, void, undefined>>((v) => typeof (v as AsyncIterable<unknown>)?.[Symbol.asyncIterator] === 'function'))
  .mutation(async ({ ctx, input }) => {
    const report = await openReportFor(ctx, input);
    return (async function* (): AsyncGenerator<ReportRecord, void, undefined> {
      yield report.header;
      yield* report.body;
    })();
  });

/** `reports.*`: compliance reports and the disclosure rule. */
export function reportsRouter(o: Operations) {
  return router({
    create,
    disclosureRule: queryOf(o.reportsDisclosureRule),
    setDisclosureRule: mutationOf(o.reportsSetDisclosureRule),
  });
}
