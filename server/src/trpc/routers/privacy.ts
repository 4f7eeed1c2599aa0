import { z } from 'zod';
import { recordRead } from '../../api/accountability';
import type { Operations } from '../../api/operations';
import { IDENTIFIER_FIELDS } from '../../privacy/repository';
import { subjectExportInputSchema, type SubjectExportRecord } from '../../privacy/subject-export';
import { mutationOf, queryOf } from '../procedure';
import { permitted, router } from '../trpc';

/** `privacy.*`: subject erasure and pseudonyms (docs/privacy.md). */
export function privacyRouter(o: Operations) {
  return router({
    erase: mutationOf(o.privacyErasuresCreate),
    erasures: queryOf(o.privacyErasuresList),
    resolve: queryOf(o.privacyPseudonymResolve),
    subjectExport: subjectExportProcedure,
  });
}

/** `retention.*`: policies and archives. */
export function retentionRouter(o: Operations) {
  return router({
    policies: queryOf(o.retentionPoliciesGet),
    setPolicies: mutationOf(o.retentionPoliciesPut),
    archives: queryOf(o.retentionArchivesList),
  });
}

/** `legalHolds.*`: place, list and release legal holds. */
export function legalHoldsRouter(o: Operations) {
  return router({
    create: mutationOf(o.legalHoldsCreate),
    list: queryOf(o.legalHoldsList),
    release: mutationOf(o.legalHoldsRelease),
  });
}

/**
 * `privacy.subjectExport`: the subject export as an async iterable of records (use it with
 * `httpBatchStreamLink`); the REST twin is `GET /api/v1/privacy/subject-export`. Audited as an
 * export of the log.
 */
export const subjectExportProcedure = permitted('privacy.subjects:export')
  .input(subjectExportInputSchema)
  .output(
    z.custom<AsyncGenerator<SubjectExportRecord, void, undefined>>(
      (v) => typeof (v as AsyncIterable<unknown>)?.[Symbol.asyncIterator] === 'function',
    ),
  )
  .query(async ({ ctx, input }) => {
    await recordRead(ctx, 'export', 'privacy.subjectExport', input);
    const field = IDENTIFIER_FIELDS.find((f) => input[f] !== undefined)!;
    return ctx.services.privacy.subjectExport(ctx.principal.organizationId, field, input[field]!);
  });
