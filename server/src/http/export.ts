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
import { exportBundleInputSchema, toExportRange, type ExportBundleInput } from '../export/schema';
import { formatBundleRecord } from '../ledger';
import { bundleForView } from '../privacy/service';
import { requireAccess, stateOf } from './middleware';

/** Query parameters derived from the input schema, as for the operation table (api/rest-input.ts). */
const params = restParams(exportBundleInputSchema, []);

/** Characters of NDJSON gathered before a write. */
const WRITE_CHUNK = 64 * 1024;

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
    // Callers who may not see identifiers get them withheld, with pseudonyms (docs/privacy.md §4).
    const view = await state.services.privacy.viewFor(principal);
    const records = bundleForView(state.services.exports.exportBundle(org, toExportRange(parsed.input as ExportBundleInput)), view);
    // The first record resolves the range (and can fail with a 404) before any header is sent.
    const first = await records.next();
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
      // Lines go out in chunks of about 64 KiB: one write (one chunk of the chunked encoding) per
      // record cost more CPU than formatting the record.
      let chunk = first.done ? '' : formatBundleRecord(first.value) + '\n';
      for await (const record of records) {
        if (aborted) break; // the generator's finally runs; no more queries
        chunk += formatBundleRecord(record) + '\n';
        if (chunk.length >= WRITE_CHUNK) {
          const more = res.write(chunk);
          chunk = '';
          if (!more) await once(res, 'drain', { signal: closed.signal }).catch(() => undefined);
        }
      }
      res.end(aborted ? undefined : chunk);
    } catch (err) {
      // Headers are gone: cut the stream so the client sees a bundle without its end record.
      state.logger.error({ err }, 'bundle export failed');
      res.destroy();
    }
  });
  return r;
}
