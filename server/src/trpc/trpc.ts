/**
 * The only place that calls initTRPC. Every procedure is built from an approved base:
 * `publicProcedure`, `authedProcedure`, or `permitted(permission)`.
 */
import { initTRPC, TRPCError } from '@trpc/server';
import type { CreateExpressContextOptions } from '@trpc/server/adapters/express';
import { ZodError } from 'zod';
import type { ApiContext } from '../api/context';
import { can, type Permission } from '../auth/permissions';
import { AppError, ERROR_STATUS, formatPath } from '../errors';
import type { RequestState } from '../http/request-state';

/** Builds the transport-independent context from the Express request state. */
export function createContextFromExpress({ req }: CreateExpressContextOptions): ApiContext {
  const state = (req as unknown as { state: RequestState }).state;
  return { services: state.services, principal: state.principal, logger: state.logger, requestId: state.requestId };
}

function issuesOf(error: TRPCError): Array<{ path: string; message: string }> | undefined {
  const cause = error.cause;
  if (cause instanceof ZodError) return cause.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
  if (cause instanceof AppError && cause.issues.length > 0) return cause.issues;
  return undefined;
}

const t = initTRPC.context<ApiContext>().create({
  // Stacks are never sent to clients; internal errors carry a generic message (see onError in http/app).
  isDev: false,
  errorFormatter({ shape, error }) {
    const internal = error.code === 'INTERNAL_SERVER_ERROR';
    return {
      ...shape,
      message: internal ? 'internal error' : shape.message,
      data: { code: shape.data.code, httpStatus: shape.data.httpStatus, path: shape.data.path, issues: issuesOf(error) ?? null },
    };
  },
});

/** Maps service errors to tRPC errors with the right code; anything else is internal. */
const errorMapping = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof AppError) {
    const cause = result.error.cause;
    throw new TRPCError({ code: ERROR_STATUS[cause.code].trpc, message: cause.message, cause });
  }
  return result;
});

export const router = t.router;
/** No credentials needed. */
export const publicProcedure = t.procedure.use(errorMapping);
/** Requires a valid API key; the organization comes from it. */
export const authedProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.principal) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'a valid API key is required' });
  return next({ ctx: { ...ctx, principal: ctx.principal } });
});
/** Requires a key whose role holds `permission`. */
export function permitted(permission: Permission) {
  return authedProcedure.use(({ ctx, next }) => {
    if (!can(ctx.principal.role, permission)) {
      throw new TRPCError({ code: 'FORBIDDEN', message: `role ${ctx.principal.role} lacks ${permission}` });
    }
    return next({ ctx });
  });
}
