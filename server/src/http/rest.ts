/**
 * The REST adapter: one Express route per operation of the table in api/operations.ts, with the
 * same permission check, schemas and service call as tRPC.
 */
import { Router, type Request, type Response } from 'express';
import { operations, type AnyOperation } from '../api/operations';
import { can } from '../auth/permissions';
import { AppError, validationError } from '../errors';
import type { RequestState } from './request-state';

function defaultInput(op: AnyOperation, req: Request): unknown {
  const params = req.params as Record<string, string>;
  if (op.rest.method === 'get' || op.rest.method === 'delete') return { ...req.query, ...params };
  const body: unknown = req.body;
  if (Object.keys(params).length === 0) return body;
  return { ...(typeof body === 'object' && body !== null ? body : {}), ...params };
}

/** Builds the `/api/v1` router. */
export function restRouter(): Router {
  const r = Router();
  for (const op of Object.values(operations) as AnyOperation[]) {
    r[op.rest.method](op.rest.path, async (req: Request, res: Response) => {
      const state = (req as unknown as { state: RequestState }).state;
      if (!state.principal) throw new AppError('UNAUTHORIZED', 'a valid API key is required');
      if (!can(state.principal.role, op.permission)) {
        throw new AppError('FORBIDDEN', `role ${state.principal.role} lacks ${op.permission}`);
      }
      const raw = op.rest.input
        ? op.rest.input({ params: req.params as Record<string, string>, query: req.query, body: req.body })
        : defaultInput(op, req);
      const parsed = op.input.safeParse(raw);
      if (!parsed.success) throw validationError(parsed.error.issues);
      const ctx = { services: state.services, principal: state.principal, logger: state.logger, requestId: state.requestId };
      const out = await (op.run as (c: typeof ctx, i: unknown) => Promise<unknown>)(ctx, parsed.data);
      res.status(op.rest.status ?? 200).json(op.output.parse(out));
    });
  }
  return r;
}
