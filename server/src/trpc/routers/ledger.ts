import type { Operations } from '../../api/operations';
import { mutationOf, queryOf } from '../procedure';
import { z } from 'zod';
import { exportBundleInputSchema, toExportRange } from '../../export/schema';
import type { BundleRecord } from '../../ledger';
import { recordRead } from '../../api/accountability';
import { bundleForView } from '../../privacy/service';
import { permitted, router } from '../trpc';

/**
 * `ledger.exportBundle`: the export bundle as an async iterable of records. Use it with
 * `httpBatchStreamLink` so records arrive as they are read (JSON lines under the hood); the REST
 * twin is `GET /api/v1/ledger/export` (NDJSON). Not in the operation table: a stream has no JSON
 * output schema, so the output check is only that it is an async iterable.
 */
const exportBundle = permitted('audit.events:export')
  .input(exportBundleInputSchema)
  .output(z.custom<AsyncGenerator<BundleRecord, void, undefined>>((v) => typeof (v as AsyncIterable<unknown>)?.[Symbol.asyncIterator] === 'function'))
  .query(async ({ ctx, input }) => {
    await recordRead(ctx, 'export', 'ledger.exportBundle', input);
    const view = await ctx.services.privacy.viewFor(ctx.principal);
    return bundleForView(ctx.services.exports.exportBundle(ctx.principal.organizationId, toExportRange(input)), view);
  });

/** `ledger.*`: checkpoints, proofs, leaves and keys. */
export function ledgerRouter(o: Operations) {
  return router({
    checkpoint: queryOf(o.ledgerCheckpoint),
    inclusionProof: queryOf(o.ledgerInclusionProof),
    consistencyProof: queryOf(o.ledgerConsistencyProof),
    leaves: queryOf(o.ledgerLeaves),
    keys: queryOf(o.ledgerKeys),
    exportBundle,
    alerts: queryOf(o.ledgerAlerts),
    registerProducerKey: mutationOf(o.producerKeysRegister),
    producerKeys: queryOf(o.producerKeysList),
  });
}
