/**
 * Turns an entry of the operation table into a tRPC procedure with the same permission, schemas
 * and service call the REST adapter uses. The resolver's result is cast because TypeScript cannot
 * relate a generic schema's input and default types; `.output(outputOf(op))` still validates it at
 * run time and gives clients the exact output type, except for an operation with `trustedOutput`
 * (its output is typed, not validated: see api/operations.ts), which keeps only the type.
 */
import type { z } from 'zod';
import type { Operation } from '../api/operations';
import { permitted } from './trpc';

/** The output parser of `op`: its schema, or for trusted output a pass-through with the schema's type. */
function outputOf<I extends z.ZodType, O extends z.ZodType>(op: Operation<I, O>): O {
  return op.trustedOutput ? ((value: unknown) => value) as unknown as O : op.output;
}

/** A query procedure for `op`. */
export function queryOf<I extends z.ZodType, O extends z.ZodType>(op: Operation<I, O>) {
  return permitted(op.permission)
    .input(op.input)
    .output(outputOf(op))
    .query(async ({ ctx, input }) => (await op.run(ctx, input as z.output<I>)) as never);
}

/** A mutation procedure for `op`. */
export function mutationOf<I extends z.ZodType, O extends z.ZodType>(op: Operation<I, O>) {
  return permitted(op.permission)
    .input(op.input)
    .output(outputOf(op))
    .mutation(async ({ ctx, input }) => (await op.run(ctx, input as z.output<I>)) as never);
}
