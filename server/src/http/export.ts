/**
 * `GET /api/v1/ledger/export`: the organization's export bundle as NDJSON
 * (`application/x-ndjson`), streamed with backpressure so a million events leave in flat memory.
 * It sits beside the operation table because a stream has no JSON output schema; the permission
 * check is `audit.events:export`, as for `ledger.exportBundle` (the bundle holds event values).
 */
import { once } from 'node:events';
import { Router, type Request, type Response } from 'express';
import { validationError } from '../errors';
import { recordRead } from '../api/accountability';
import { parseRestParams, restParams } from '../api/rest-input';
import { bundleNdjson } from '../export/bundle-export';
import { exportBundleInputSchema, toExportRange, type ExportBundleInput } from '../export/schema';
import { bundleForView } from '../privacy/service';
import { requireAccess, stateOf } from './middleware';

/** Query parameters derived from the input schema, as for the operation table (api/rest-input.ts). */
const params = restParams(exportBundleInputSchema, []);

/** The export route as the README's access table lists it. */
export const EXPORT_ROUTE = { method: 'get', path: '/ledger/export', access: 'audit.events:export' } as const;

/** The export route (mount under /api/v1 after authentication, before the REST router). */
export function exportRouter(): Router {
  const r = Router();
  r.get(EXPORT_ROUTE.path, requireAccess(EXPORT_ROUTE.access), async (req: Request, res: Response) => {
    const state = stateOf(req);
    const parsed = parseRestParams(params, exportBundleInputSchema, req.query);
    if (!parsed.ok) throw validationError(parsed.issues);
    const principal = state.principal!; // the access gate checked it
    const org = principal.organizationId;
    await recordRead({ ...state, principal }, 'export', 'ledger.export', parsed.input);
    // Callers who may not see identifiers get them withheld, with pseudonyms (docs/privacy.md §4):
    // that goes through the records; everyone else gets the lines written straight from the rows
    // (export/event-line.ts), the same bytes as the records would give.
    const view = await state.services.privacy.viewFor(principal);
    const range = toExportRange(parsed.input as ExportBundleInput);
    const pieces = view.pseudonymous
      ? bundleNdjson(bundleForView(state.services.exports.exportBundle(org, range), view))
      : state.services.exports.exportBundleText(org, range);
    // The first piece is the header alone: it resolves the range (and can fail with a 404)
    // before any header is sent.
    const first = await pieces.next();
    res.status(200);
    res.setHeader('content-type', 'application/x-ndjson; charset=utf-8');
    res.setHeader('content-disposition', `attachment; filename="audit-bundle-${org}.ndjson"`);
    let aborted = false;
    const closed = new AbortController();
    res.on('close', () => {
      aborted = !res.writableFinished;
      closed.abort(); // a client gone while we wait for 'drain' must not leave us waiting forever
    });
    try {
      // Backpressure: while the socket's buffer is full no next piece is asked for, so no line is
      // formatted and no page read beyond the one already under way.
      const drained = () => once(res, 'drain', { signal: closed.signal }).catch(() => undefined);
      if (!first.done && !res.write(first.value)) await drained();
      for await (const piece of pieces) {
        if (aborted) break; // the generator's finally runs; no more queries
        if (!res.write(piece)) await drained();
      }
      res.end();
    } catch (err) {
      // Headers are gone: cut the stream so the client sees a bundle without its end record.
      state.logger.error({ err }, 'bundle export failed');
      res.destroy();
    }
  });
  return r;
}
