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
      redact: {
        paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', '*.key', '*.signingKey'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

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
    type: chain.map((e) => e.name).join(' < '),
    ...(code ? { code } : {}),
    ...(fromDatabase ? {} : { message: err.message }),
    stack: frames.join('\n'),
  };
}
