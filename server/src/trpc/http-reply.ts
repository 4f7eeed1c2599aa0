/**
 * Errors that the HTTP layer answers in front of tRPC (no credential, body too large, batch too
 * long, rate limited) — before tRPC reads the body — written in tRPC's own response format, so
 * the official client reports them like any procedure error: one `{ error }` per call of a batch,
 * with the same `data` (code, httpStatus, issues, requestId) as the error formatter gives.
 */
import { TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import type { Request, Response } from 'express';
import { DATABASE_RETRY_AFTER_SECONDS } from '../db/errors';
import { ERROR_STATUS, type AppErrorCode, type FieldIssue } from '../errors';

/**
 * The procedure paths of a tRPC request (`/a.b,c.d?batch=1` → two), as tRPC will split them
 * (after percent-decoding, so an encoded comma counts too); never throws.
 */
export function trpcCallsOf(req: Request): string[] {
  const path = req.path.replace(/^\//, '');
  return isBatch(req) ? path.split(/,|%2C/i) : [path];
}

/** tRPC reads the first `batch` parameter (URLSearchParams.get). */
function isBatch(req: Request): boolean {
  const b: unknown = req.query.batch;
  return (Array.isArray(b) ? (b as unknown[])[0] : b) === '1';
}

/** Writes a tRPC-shaped error response for every call of the request. */
export function sendTrpcError(req: Request, res: Response, code: AppErrorCode, message: string, requestId: string, issues: FieldIssue[] = []): void {
  const trpcCode = ERROR_STATUS[code].trpc;
  const httpStatus = ERROR_STATUS[code].http;
  const calls = trpcCallsOf(req);
  if (code === 'UNAVAILABLE' && !res.hasHeader('retry-after')) res.setHeader('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
  const errorOf = (path: string) => ({
    error: { message, code: TRPC_ERROR_CODES_BY_KEY[trpcCode], data: { code: trpcCode, httpStatus, path, issues, requestId } },
  });
  res.status(httpStatus).json(isBatch(req) ? calls.map(errorOf) : errorOf(calls[0]!));
}
