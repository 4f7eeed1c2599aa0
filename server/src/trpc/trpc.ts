/**
 * The only place that calls initTRPC. Every procedure is built from an approved base:
 * `publicProcedure` or `permitted(permission)`, and carries its access decision as metadata
 * (`meta.access`), which the role matrix test reads for every procedure of the router.
 */
import { initTRPC, TRPCError } from '@trpc/server';
import { ZodError } from 'zod';
import type { ApiContext } from '../api/context';
import { recordAuthEvent } from '../api/accountability';
import { can, deniedMessage, type Access, type Permission } from '../auth/permissions';
import { databaseUnavailable, isDatabaseUnavailable } from '../db/errors';
import { AppError, ERROR_STATUS, validationError, type FieldIssue } from '../errors';
import { jsonShapeIssue } from '../util/safe-input';

/**
 * The client-facing message and field issues of an error, in the REST error's terms (code,
 * message, issues with field paths): zod issue lists become `validationError` issues, and nothing
 * internal (stack overflows, parser messages, output validation) reaches the client.
 */
function describeError(error: TRPCError): { message: string; issues: FieldIssue[] } {
  const cause = error.cause;
  if (error.code === 'INTERNAL_SERVER_ERROR') return { message: 'internal error', issues: [] };
  if (cause instanceof ZodError) {
    const v = validationError(cause.issues);
    return { message: v.message, issues: v.issues };
  }
  if (cause instanceof AppError) return { message: cause.message, issues: cause.issues };
  // tRPC wraps a body that is not JSON as BAD_REQUEST with the parser's message.
  if (cause instanceof SyntaxError) return { message: 'request body is not valid JSON', issues: [{ path: '(root)', message: 'invalid JSON' }] };
  // tRPC's own errors (no cause: unknown procedure, batch too large, wrong method) are safe.
  if (cause === undefined || cause === error) return { message: error.message, issues: error.code === 'BAD_REQUEST' ? [{ path: '(root)', message: error.message }] : [] };
  return { message: 'invalid request', issues: error.code === 'BAD_REQUEST' ? [{ path: '(root)', message: 'invalid request' }] : [] };
}

/** Metadata of every procedure: the permission it requires, or `public`. */
export interface ProcedureMeta {
  access: Access;
}

const t = initTRPC.context<ApiContext>().meta<ProcedureMeta>().create({
  // Stacks are never sent to clients; internal errors carry a generic message (see onError in http/app).
  isDev: false,
  errorFormatter({ shape, error, ctx }) {
    const { message, issues } = describeError(error);
    return {
      ...shape,
      message,
      data: { code: shape.data.code, httpStatus: shape.data.httpStatus, path: shape.data.path, issues, requestId: ctx?.requestId ?? null },
    };
  },
});

/** Maps service errors to tRPC errors with the right code; anything else is internal. */
const errorMapping = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok) {
    // A database that is unavailable (restart, failover) is a retryable 503, never a 500.
    const cause = isDatabaseUnavailable(result.error.cause) ? databaseUnavailable() : result.error.cause;
    if (cause instanceof AppError) throw new TRPCError({ code: ERROR_STATUS[cause.code].trpc, message: cause.message, cause });
  }
  return result;
});

export const router = t.router;
const baseProcedure = t.procedure.use(errorMapping);
/** No credentials needed. */
export const publicProcedure = baseProcedure.meta({ access: 'public' });
/** Requires a credential; the organization comes from it. */
const authedProcedure = baseProcedure.use(({ ctx, next }) => {
  if (!ctx.principal) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'a valid API key is required' });
  return next({ ctx: { ...ctx, principal: ctx.principal } });
});
/**
 * Refuses input nested too deep before any schema sees it (an iterative walk of the raw value),
 * as the REST adapter does, so deep input is the same 400 on both and never a stack overflow.
 */
const inputShape = t.middleware(async ({ getRawInput, next }) => {
  const issue = jsonShapeIssue(await getRawInput());
  if (issue) throw validationError([issue]);
  return next();
});

/** Requires a credential whose role holds `permission`; the input is read only after that. */
export function permitted(permission: Permission) {
  return authedProcedure
    .meta({ access: permission })
    .use(({ ctx, path, next }) => {
      if (!can(ctx.principal.role, permission)) {
        void recordAuthEvent(ctx, ctx.principal.organizationId, 'auth.access.denied', {
          principal: ctx.principal,
          status: 'failure',
          details: { permission, procedure: path },
        });
        throw new TRPCError({ code: 'FORBIDDEN', message: deniedMessage(ctx.principal.role, permission) });
      }
      return next({ ctx });
    })
    .use(inputShape);
}
