/**
 * Turns an entry of the operation table into a tRPC procedure with the same permission, schemas
 * and service call the REST adapter uses. The resolver's result is cast because TypeScript cannot
 * relate a generic schema's input and default types; `.output(op.output)` still validates it at
 * run time and gives clients the exact output type.
 */
import type { z } from 'zod';
import type { Operation } from '../api/operations';
import { permitted } from './trpc';

/** A query procedure for `op`. */
export function queryOf<I extends z.ZodType, O extends z.ZodType>(op: Operation<I, O>) {
  return permitted(op.permission)
    .input(op.input)
    .output(op.output)
    .query(async ({ ctx, input }) => (await op.run(ctx, input as z.output<I>)) as never);
}

/** A mutation procedure for `op`. */
export function mutationOf<I extends z.ZodType, O extends z.ZodType>(op: Operation<I, O>) {
  return permitted(op.permission)
    .input(op.input)
    .output(op.output)
    .mutation(async ({ ctx, input }) => (await op.run(ctx, input as z.output<I>)) as never);
}
