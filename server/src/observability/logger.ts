/**
 * Structured JSON logs (pino). Log ids, sizes and hashes — never event payloads or secrets; the
 * redaction list is a second line of defence for headers that carry credentials, and errors are
 * logged by {@link serializeError}, which never writes what a database error carries.
 */
import pino from 'pino';

/** The logger type used everywhere. */
export type Logger = pino.Logger;

/** Creates the root logger. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'audit-server' },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: serializeError },
      hooks: {
        // pino makes `logger.error(err)` log err.message as the line's msg: route it through the
        // serializer instead, so a database error's message cannot become a log line.
        logMethod(args: unknown[], method: (...a: unknown[]) => void) {
          if (args[0] instanceof Error) {
            const [err, msg, ...rest] = args;
            return method.apply(this, [{ err }, typeof msg === 'string' ? msg : 'error', ...rest]);
          }
          return method.apply(this, args);
        },
      },
      redact: {
        paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', '*.key', '*.signingKey'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The class name of an error (`DrizzleQueryError`), or its `name` when the class says nothing. */
function typeName(e: Error): string {
  const ctor = (e.constructor as { name?: unknown } | undefined)?.name;
  return typeof ctor === 'string' && ctor.length > 2 && ctor !== 'Error' ? ctor : e.name;
}

/**
 * What an error may put in a log line: its type, its code (SQLSTATE or system code) and its stack
 * frames. A database error's message, detail and Drizzle's `query`/`params` are dropped — they
 * hold the statement's parameters, i.e. other requests' personal data and the salts erasure
 * destroys — as is the message of anything caused by one. Other errors keep their message, which
 * is ours.
 */
export function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const chain: Error[] = [];
  for (let e: unknown = err; e instanceof Error && chain.length < 5; e = e.cause) chain.push(e);
  const codeOf = (e: Error) => (e as { code?: unknown }).code;
  const fromDatabase = chain.some((e) => {
    const code = codeOf(e);
    return (typeof code === 'string' && SQLSTATE.test(code)) || 'params' in e || 'query' in e;
  });
  const code = chain.map(codeOf).find((c): c is string => typeof c === 'string');
  const frames = (err.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
  return {
    type: chain.map(typeName).join(' < '),
    ...(code ? { code } : {}),
    ...(fromDatabase ? {} : { message: err.message }),
    stack: frames.join('\n'),
  };
}
