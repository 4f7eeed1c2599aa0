/**
 * `POST /api/v1/reports`: a compliance report (server/src/reports) as JSON, CSV or PDF, streamed
 * with backpressure so memory stays flat for any range. It sits beside the operation table, like
 * the bundle export, because its answer is a stream rather than one JSON value; the permission is
 * `audit.reports:create` (as for tRPC `reports.create`). Generating a report is itself audited
 * (`audit.log.report`, whoever the caller), after the checkpoint it is computed against was read,
 * so the report never lists its own event.
 */
import { once } from 'node:events';
import { Router, type Request, type Response } from 'express';
import { openReportFor } from '../api/ops-reports';
import { validationError } from '../errors';
import { REPORT_CONTENT_TYPES, renderReport } from '../reports/render';
import { reportInputSchema } from '../reports/schema';
import { jsonShapeIssue } from '../util/safe-input';
import { requireAccess, stateOf } from './middleware';

/** The report route as the README's access table lists it. */
export const REPORTS_ROUTE = { method: 'post', path: '/reports', access: 'audit.reports:create' } as const;

/** The reports route (mount under /api/v1 after authentication and the JSON body parser). */
export function reportsRouter(): Router {
  const r = Router();
  r.post(REPORTS_ROUTE.path, requireAccess(REPORTS_ROUTE.access), async (req: Request, res: Response) => {
    const state = stateOf(req);
    const body: unknown = req.body;
    const shape = jsonShapeIssue(body);
    if (shape) throw validationError([shape]);
    const parsed = reportInputSchema.safeParse(body);
    if (!parsed.success) throw validationError(parsed.error.issues);
    const input = parsed.data;
    const principal = state.principal!; // the access gate checked it
    const report = await openReportFor({ ...state, principal }, input);
    res.status(200);
    res.setHeader('content-type', REPORT_CONTENT_TYPES[input.format]);
    res.setHeader('content-disposition', `attachment; filename="${input.kind}-${report.header.generatedAt.replace(/[:.]/g, '-')}.${input.format}"`);
    if (report.header.checkpoint) {
      res.setHeader('x-report-checkpoint-tree-size', String(report.header.checkpoint.treeSize));
      res.setHeader('x-report-checkpoint-root-hash', report.header.checkpoint.rootHash);
    }
    let gone = false;
    const closed = new AbortController();
    res.on('close', () => {
      gone = !res.writableFinished;
      closed.abort(); // a client gone while we wait for 'drain' must not leave us waiting forever
    });
    try {
      await renderReport(report, input.format, {
        write: async (chunk) => {
          if (gone) throw new Error('client went away');
          if (!res.write(chunk)) await once(res, 'drain', { signal: closed.signal }).catch(() => undefined);
        },
      });
      res.end();
    } catch (err) {
      // Headers are gone: cut the stream so the client sees an incomplete report, never a short one that looks whole.
      if (!gone) state.logger.error({ err }, 'report failed while streaming');
      res.destroy();
    }
  });
  return r;
}
