/**
 * JSON error responses for REST and plain HTTP routes: `{ error: { code, message, issues, requestId } }`.
 * Internal errors are logged with their stack and answered with a generic message; a database
 * that is unavailable (restart, failover) is a 503 with `Retry-After`, never a 500.
 */
import type { ErrorRequestHandler, Response } from 'express';
import { AppError, ERROR_STATUS, type AppErrorCode, type FieldIssue } from '../errors';
import { DATABASE_RETRY_AFTER_SECONDS, databaseUnavailable, isDatabaseUnavailable } from '../db/errors';
import type { ApiContext } from '../api/context';

/** Writes an error response; every 503 tells the client when to retry (`Retry-After`, RFC 9110 §10.2.3). */
export function sendError(res: Response, code: AppErrorCode, message: string, requestId: string, issues: FieldIssue[] = []): void {
  if (code === 'UNAVAILABLE' && !res.hasHeader('retry-after')) res.setHeader('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
  res.status(ERROR_STATUS[code].http).json({ error: { code, message, issues, requestId } });
}

interface BodyParserError {
  type?: string;
  status?: number;
}

/** The last middleware: maps anything thrown to a JSON error without leaking internals. */
export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const state = (req as unknown as { state?: ApiContext }).state;
  const requestId = state?.requestId ?? 'unknown';
  if (err instanceof AppError) return sendError(res, err.code, err.message, requestId, err.issues);
  if (isDatabaseUnavailable(err)) {
    state?.logger.warn({ err }, 'database unavailable');
    return sendError(res, 'UNAVAILABLE', databaseUnavailable().message, requestId);
  }
  const bp = err as BodyParserError;
  if (bp.type === 'entity.too.large') return sendError(res, 'PAYLOAD_TOO_LARGE', 'request body is too large', requestId);
  if (bp.type === 'entity.parse.failed') return sendError(res, 'BAD_REQUEST', 'request body is not valid JSON', requestId, [{ path: '(root)', message: 'invalid JSON' }]);
  if (typeof bp.status === 'number' && bp.status >= 400 && bp.status < 500) {
    // Unsupported charset or encoding, an aborted upload, a path that is not valid percent-encoding.
    return sendError(res, 'BAD_REQUEST', 'malformed request', requestId, [{ path: '(root)', message: 'malformed request' }]);
  }
  state?.logger.error({ err }, 'internal error');
  return sendError(res, 'INTERNAL', 'internal error', requestId);
};
