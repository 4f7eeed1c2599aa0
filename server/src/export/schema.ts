/** Input of the bundle export, shared by the REST route and the tRPC procedure. */
import { z } from 'zod';
import { instantSchema } from '../util/safe-input';

/** Range of a bundle export: leaf bounds or recorded-at time bounds; both ends are widened to signed checkpoints. */
export const exportBundleInputSchema = z
  .strictObject({
    start: z.number().int().nonnegative().optional().describe('first leaf index (moved down to a checkpoint)'),
    end: z.number().int().nonnegative().optional().describe('one past the last leaf index (moved up to a checkpoint)'),
    from: instantSchema().optional().describe('events recorded at or after (when no leaf bounds)'),
    to: instantSchema().optional().describe('events recorded before (when no leaf bounds)'),
  })
  .refine((v) => v.start === undefined || v.end === undefined || v.start <= v.end, {
    message: 'start must not exceed end',
    path: ['start'],
  })
  .default({});
/** Parsed export input. */
export type ExportBundleInput = z.infer<typeof exportBundleInputSchema>;

/** Converts the parsed input into an export range. */
export function toExportRange(input: ExportBundleInput) {
  return {
    start: input.start,
    end: input.end,
    from: input.from ? new Date(input.from) : undefined,
    to: input.to ? new Date(input.to) : undefined,
  };
}
