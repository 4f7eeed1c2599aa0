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
  | 'NOT_IMPLEMENTED'
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
  /** A feature this deployment lacks (behaviour analytics without the pgvector extension). */
  NOT_IMPLEMENTED: { http: 501, trpc: 'NOT_IMPLEMENTED' },
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

/** Most issues one 400 lists; the message says how many more there were. */
export const MAX_REPORTED_ISSUES = 20;

/**
 * A 400 that names the offending fields: every one of them up to {@link MAX_REPORTED_ISSUES}, so
 * a hostile input (a list of 5,000 bad values) cannot turn the answer into a megabyte.
 */
export function validationError(
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string; code?: string; keys?: ReadonlyArray<string> }>,
): AppError {
  // An unknown field is reported at its own path, so the 400 names it like any other field.
  const all = issues.flatMap((i) =>
    i.code === 'unrecognized_keys' && i.keys
      ? i.keys.map((k) => ({ path: clip(formatPath([...i.path, k])), message: 'unknown field' }))
      : [{ path: clip(formatPath(i.path)), message: i.message }],
  );
  const list = all.slice(0, MAX_REPORTED_ISSUES);
  const more = all.length - list.length;
  const summary = list.map((i) => `${i.path}: ${i.message}`).join('; ') + (more > 0 ? `; and ${more} more` : '');
  return new AppError('BAD_REQUEST', `invalid input: ${summary}`, list);
}

/** Paths echo client-chosen keys: a 100 KB key name is named by its first 200 characters. */
function clip(path: string): string {
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}
