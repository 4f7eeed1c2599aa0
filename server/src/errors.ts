/**
 * One error type for the whole service layer. Adapters (tRPC, REST) map `code` to their own
 * status through {@link ERROR_STATUS}; only `INTERNAL` errors are logged with stacks, and their
 * messages never reach clients.
 */

/** Stable, client-visible error codes. */
export type AppErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOO_MANY_REQUESTS'
  | 'UNAVAILABLE'
  | 'INTERNAL';

/** A field-level validation problem. */
export interface FieldIssue {
  path: string;
  message: string;
}

/** HTTP status and tRPC code for each {@link AppErrorCode}. */
export const ERROR_STATUS = {
  BAD_REQUEST: { http: 400, trpc: 'BAD_REQUEST' },
  UNAUTHORIZED: { http: 401, trpc: 'UNAUTHORIZED' },
  FORBIDDEN: { http: 403, trpc: 'FORBIDDEN' },
  NOT_FOUND: { http: 404, trpc: 'NOT_FOUND' },
  CONFLICT: { http: 409, trpc: 'CONFLICT' },
  PAYLOAD_TOO_LARGE: { http: 413, trpc: 'PAYLOAD_TOO_LARGE' },
  TOO_MANY_REQUESTS: { http: 429, trpc: 'TOO_MANY_REQUESTS' },
  UNAVAILABLE: { http: 503, trpc: 'SERVICE_UNAVAILABLE' },
  INTERNAL: { http: 500, trpc: 'INTERNAL_SERVER_ERROR' },
} as const satisfies Record<AppErrorCode, { http: number; trpc: string }>;

/** An expected failure with a client-safe message. */
export class AppError extends Error {
  constructor(
    readonly code: AppErrorCode,
    message: string,
    readonly issues: FieldIssue[] = [],
  ) {
    super(message);
    this.name = 'AppError';
  }
}

/** Renders a zod-style path (`['details', 'a', 0]`) as `details.a[0]`; the root is `(root)`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

/** A 400 that names every offending field. */
export function validationError(
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string; code?: string; keys?: ReadonlyArray<string> }>,
): AppError {
  // An unknown field is reported at its own path, so the 400 names it like any other field.
  const list = issues.flatMap((i) =>
    i.code === 'unrecognized_keys' && i.keys
      ? i.keys.map((k) => ({ path: formatPath([...i.path, k]), message: 'unknown field' }))
      : [{ path: formatPath(i.path), message: i.message }],
  );
  const summary = list.map((i) => `${i.path}: ${i.message}`).join('; ');
  return new AppError('BAD_REQUEST', `invalid input: ${summary}`, list);
}
