/**
 * Structured JSON logs (pino). Log ids, sizes and hashes — never event payloads or secrets; the
 * redaction list is a second line of defence for headers that carry credentials.
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
      redact: {
        paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', '*.key', '*.signingKey'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
