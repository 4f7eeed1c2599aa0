/**
 * GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/) with graphql-http: GET
 * for queries, POST for queries and mutations, `application/graphql-response+json` (or
 * `application/json` for clients that ask for it). The HTTP layer authenticates, rate-limits and
 * bounds the body before this handler runs; here the document is bounded (limits.ts), validated,
 * introspection refused unless enabled, and errors are shaped so nothing internal reaches a
 * client: an operation's own errors keep its code (`extensions.code`) and field issues.
 */
import type { Request, RequestHandler, Response } from 'express';
import { GraphQLError, NoSchemaIntrospectionCustomRule, type GraphQLSchema } from 'graphql';
import { createHandler, type OperationContext } from 'graphql-http';
import type { ApiContext } from '../api/context';
import { DATABASE_RETRY_AFTER_SECONDS, databaseUnavailable, isDatabaseUnavailable } from '../db/errors';
import { ERROR_STATUS, formatPath, type AppErrorCode, type FieldIssue } from '../errors';
import { jsonShapeIssue } from '../util/safe-input';
import { boundedParse, limitRules, type GraphQLLimits } from './limits';

/** Options of {@link graphqlHandler}. */
export interface GraphQLHandlerOptions {
  schema: GraphQLSchema;
  limits: GraphQLLimits;
  /** Whether `__schema`/`__type` queries are answered (off in production unless configured). */
  introspection: boolean;
  /** The request's context, as the HTTP layer built and authenticated it. */
  contextOf: (req: Request) => ApiContext;
}

/** The media type answered to a request: the spec's own unless the client accepts only JSON. */
function mediaTypeFor(req: Request): string {
  const accept = req.get('accept') ?? '';
  return accept.includes('application/graphql-response+json') || !accept.includes('application/json')
    ? 'application/graphql-response+json; charset=utf-8'
    : 'application/json; charset=utf-8';
}

/**
 * A request-level error in the GraphQL response shape, with the operation error's HTTP status
 * (401, 403, 413, 429 …) and `extensions.code`: used by the HTTP layer for refusals before the
 * document is read.
 */
export function sendGraphQLError(req: Request, res: Response, code: AppErrorCode, message: string, requestId: string, issues: FieldIssue[] = []): void {
  if (code === 'UNAVAILABLE' && !res.hasHeader('retry-after')) res.setHeader('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
  res
    .status(ERROR_STATUS[code].http)
    .type(mediaTypeFor(req))
    .send(JSON.stringify({ errors: [{ message, extensions: { code, ...(issues.length > 0 ? { issues } : {}), requestId } }] }));
}

/** The `/graphql` handler (mount it behind authentication, rate limit and a bounded text body parser). */
export function graphqlHandler(options: GraphQLHandlerOptions): RequestHandler {
  const rules = [...limitRules(options.limits), ...(options.introspection ? [] : [NoSchemaIntrospectionCustomRule])];
  /** Requests with an operation error caused by an unavailable database. */
  const unavailable = new WeakSet<Request>();
  const handle = createHandler<Request, undefined, OperationContext>({
    schema: options.schema,
    parse: (source) => boundedParse(typeof source === 'string' ? source : source.body),
    validationRules: rules,
    context: (req) => options.contextOf(req.raw) as unknown as OperationContext,
    onSubscribe: (_req, params) => {
      // Variables are JSON of any shape until the schema coerces them: bound their nesting first.
      const issue = jsonShapeIssue(params.variables ?? {});
      if (!issue) return undefined;
      const path = formatPath(['variables', ...issue.path]);
      return [new GraphQLError(`variables: ${path}: ${issue.message}`, { extensions: { code: 'BAD_REQUEST', issues: [{ path, message: issue.message }] } })];
    },
    onOperation: (req, _args, result) => {
      // Log what formatError will hide: the cause of every internal error, with the request's logger.
      for (const err of result.errors ?? []) {
        if (err.extensions?.code === 'UNAVAILABLE' || isDatabaseUnavailable(err.originalError)) unavailable.add(req.raw);
        if (!isClientError(err) && !isDatabaseUnavailable(err.originalError)) options.contextOf(req.raw).logger.error({ err: err.originalError ?? err }, 'internal error');
      }
    },
    formatError,
  });

  return async (req, res) => {
    const ctx = options.contextOf(req);
    const body: unknown = req.body;
    try {
      const [text, init] = await handle({
        url: req.originalUrl,
        method: req.method,
        headers: req.headers,
        body: typeof body === 'string' && body.length > 0 ? body : null,
        raw: req,
        context: undefined,
      });
      for (const [name, value] of Object.entries(init.headers ?? {})) res.setHeader(name, value);
      // An operation that could not be served now (database restarting, failing over): say when to retry.
      if (unavailable.has(req)) res.setHeader('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
      if (text === null) {
        // graphql-http answers 406/415 without a body: give the client one in the usual shape.
        res.status(init.status).type(mediaTypeFor(req));
        res.send(JSON.stringify({ errors: [{ message: statusMessage(init.status), extensions: { code: 'BAD_REQUEST', requestId: ctx.requestId } }] }));
        return;
      }
      res.status(init.status);
      res.send(text);
    } catch (err) {
      ctx.logger.error({ err }, 'graphql handler failed');
      if (!res.headersSent) sendGraphQLError(req, res, 'INTERNAL', 'internal error', ctx.requestId);
    }

  };
}

/** Whether an error is the client's: an operation error with its code, or one of the request (no path). */
function isClientError(err: GraphQLError): boolean {
  const code = err.extensions?.code;
  if (typeof code === 'string') return code in ERROR_STATUS && code !== 'INTERNAL';
  // Syntax, validation and variable errors belong to the request (no path) and are the client's.
  return err.path === undefined && (!err.originalError || err.originalError instanceof GraphQLError);
}

/**
 * A client-safe error: operation errors keep their code and issues, request errors become
 * BAD_REQUEST; anything that failed while executing (a service fault, an output that breaks its
 * type) is "internal error", its cause logged by onOperation.
 */
function formatError(err: Readonly<GraphQLError | Error>): GraphQLError {
  // graphql-http's own request errors ("Missing query", "Unparsable JSON body") are plain Errors.
  if (!(err instanceof GraphQLError)) return new GraphQLError(err.message, { extensions: { code: 'BAD_REQUEST' } });
  if (isDatabaseUnavailable(err.originalError)) return new GraphQLError(databaseUnavailable().message, { path: err.path, extensions: { code: 'UNAVAILABLE' } });
  if (!isClientError(err)) return new GraphQLError('internal error', { path: err.path, extensions: { code: 'INTERNAL' } });
  return new GraphQLError(err.message, { nodes: err.nodes, path: err.path, extensions: { ...err.extensions, code: err.extensions?.code ?? 'BAD_REQUEST' } });
}

/** The message of a bare status graphql-http answers without a body. */
function statusMessage(status: number): string {
  if (status === 415) return 'POST bodies must be application/json';
  if (status === 406) return 'accept application/graphql-response+json or application/json';
  return 'invalid request';
}
