/**
 * `GET /api/v1/privacy/subject-export`: every event about a data subject as `format=json|ndjson|csv`
 * (docs/privacy.md §5), streamed with backpressure so memory stays flat. Beside the operation table
 * because a stream has no JSON output schema; the permission is `privacy.subjects:export`. The
 * export is itself audited (`audit.log.export`) like every export of the log.
 */
import { once } from 'node:events';
import { Router, type Request, type Response } from 'express';
import { recordRead } from '../api/accountability';
import { parseRestParams, restParams } from '../api/rest-input';
import { validationError } from '../errors';
import { IDENTIFIER_FIELDS } from '../privacy/repository';
import {
  formatSubjectRecord,
  subjectExportInputSchema,
  type SubjectExportInput,
} from '../privacy/subject-export';
import { requireAccess, stateOf } from './middleware';

const params = restParams(subjectExportInputSchema, []);

/** The route as the README's access table lists it. */
export const SUBJECT_EXPORT_ROUTE = {
  method: 'get',
  path: '/privacy/subject-export',
  access: 'privacy.subjects:export',
} as const;

const CONTENT_TYPES = {
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
} as const;

/** The subject export route (mount under /api/v1 after authentication). */
export function subjectExportRouter(): Router {
  const r = Router();
  r.get(
    SUBJECT_EXPORT_ROUTE.path,
    requireAccess(SUBJECT_EXPORT_ROUTE.access),
    async (req: Request, res: Response) => {
      const state = stateOf(req);
      const parsed = parseRestParams(params, subjectExportInputSchema, req.query);
      if (!parsed.ok) throw validationError(parsed.issues);
      const input = parsed.input as SubjectExportInput;
      const principal = state.principal!; // the access gate checked it
      const org = principal.organizationId;
      const field = IDENTIFIER_FIELDS.find((f) => input[f] !== undefined)!;
      await recordRead({ ...state, principal }, 'export', 'privacy.subjectExport', input);
      const records = await state.services.privacy.subjectExport(org, field, input[field]!);
      const first = await records.next();
      res.status(200);
      res.setHeader('content-type', CONTENT_TYPES[input.format]);
      res.setHeader('content-disposition', `attachment; filename="subject-export.${input.format}"`);
      let aborted = false;
      const closed = new AbortController();
      res.on('close', () => {
        aborted = !res.writableFinished;
        closed.abort();
      });
      const fmt = { events: 0 };
      try {
        if (!first.done) res.write(formatSubjectRecord(first.value, input.format, fmt));
        for await (const record of records) {
          if (aborted) break;
          if (!res.write(formatSubjectRecord(record, input.format, fmt)))
            await once(res, 'drain', { signal: closed.signal }).catch(() => undefined);
        }
        res.end();
      } catch (err) {
        // Headers are gone: cut the stream so the client sees an export without its end.
        state.logger.error(
          { name: (err as Error).name, code: (err as { code?: unknown }).code },
          'subject export failed',
        );
        res.destroy();
      }
    },
  );
  return r;
}
