/**
 * The REST adapter: one Express route per operation of the table in api/operations.ts, with the
 * same permission check, schemas and service call as tRPC. Path and query parameters are parsed
 * by the schemas derived in api/rest-input.ts (the ones the OpenAPI document shows); bodies by
 * the operation's input schema, after an iterative depth check of the raw JSON.
 */
import { Router, type Request, type Response } from 'express';
import type { AnyOperation, Operations } from '../api/operations';
import { parseRestParams, restParams, type RestParam } from '../api/rest-input';
import { validationError } from '../errors';
import { jsonShapeIssue } from '../util/safe-input';
import { requireAccess, stateOf } from './middleware';

/** The path parameter names of an Express route (`/events/:id` → `['id']`). */
export function pathParamsOf(path: string): string[] {
  return [...path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!);
}

/**
 * The parameters of a GET/DELETE operation, or of a POST that acts on the resource its path names
 * (`POST /legal-holds/:id/release`: no body); null for a JSON-body operation.
 */
export function paramsOf(op: AnyOperation): RestParam[] | null {
  if ((op.rest.method === 'post' || op.rest.method === 'put') && pathParamsOf(op.rest.path).length === 0) return null;
  return restParams(op.input, pathParamsOf(op.rest.path));
}

/** Parses a request into the operation input, or throws the 400 naming every offending field. */
function inputOf(op: AnyOperation, params: RestParam[] | null, req: Request): unknown {
  if (params) {
    const result = parseRestParams(params, op.input, { ...(req.query as Record<string, unknown>), ...(req.params as Record<string, string>) });
    if (!result.ok) throw validationError(result.issues);
    return result.input;
  }
  const body: unknown = req.body;
  const shape = jsonShapeIssue(body);
  if (shape) throw validationError([shape]);
  const parsed = op.input.safeParse(body);
  if (!parsed.success) throw validationError(parsed.error.issues);
  return parsed.data;
}

/** Builds the `/api/v1` router for an operation table. */
export function restRouter(operations: Operations): Router {
  const r = Router();
  for (const op of Object.values(operations) as AnyOperation[]) {
    const params = paramsOf(op);
    r[op.rest.method](op.rest.path, requireAccess(op.permission), async (req: Request, res: Response) => {
      const state = stateOf(req);
      const input = inputOf(op, params, req);
      const ctx = { ...state, principal: state.principal! }; // the access gate checked it
      const out = await (op.run as (c: typeof ctx, i: unknown) => Promise<unknown>)(ctx, input);
      res.status(op.rest.status ?? 200).json(op.trustedOutput ? out : op.output.parse(out));
    });
  }
  return r;
}
