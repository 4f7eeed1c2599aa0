/**
 * What leaves the process in a trace is an allow-list, not a deny-list: trace backends are not
 * PHI stores (docs/architecture.md §7). Every span passes through {@link ScrubbingSpanExporter}
 * before the OTLP exporter sees it, and keeps only
 *
 * - attributes named in {@link ALLOWED_SPAN_ATTRIBUTES}: methods, status codes, route TEMPLATES
 *   (`/api/v1/events/:id`), server and database names, the SQL operation — never a URL, path,
 *   query string, header, cookie, client address, user agent, SQL statement or parameter;
 * - a name cut at the first `?` (tRPC procedure paths such as `/trpc/events.getById,ledger.x`
 *   stay; `?input=` never does);
 * - events reduced to their name and `exception.type` (an exception message can quote a value:
 *   PostgreSQL's `invalid input syntax for type uuid: "…"`), and a status without its message;
 * - links without attributes.
 *
 * A new instrumentation attribute is dropped until someone decides it carries no personal data
 * and adds it here.
 */
import type { Attributes, Link, SpanStatus } from '@opentelemetry/api';
import type { tracing } from '@opentelemetry/sdk-node';

type ReadableSpan = tracing.ReadableSpan;
type SpanExporter = tracing.SpanExporter;
type TimedEvent = ReadableSpan['events'][number];

/** Span attributes that may be exported. */
export const ALLOWED_SPAN_ATTRIBUTES: ReadonlySet<string> = new Set([
  // HTTP (old and stable semantic conventions)
  'http.method',
  'http.request.method',
  'http.status_code',
  'http.response.status_code',
  'http.route',
  'http.scheme',
  'url.scheme',
  'http.flavor',
  'network.protocol.version',
  'net.transport',
  'network.transport',
  'net.host.name',
  'net.host.port',
  'server.address',
  'server.port',
  'error.type',
  // Express (route templates and layer kinds)
  'express.name',
  'express.type',
  // PostgreSQL: which database and which operation, never the statement or its parameters
  'db.system',
  'db.system.name',
  'db.name',
  'db.namespace',
  'db.operation',
  'db.operation.name',
  'db.collection.name',
  'net.peer.name',
  'net.peer.port',
  // Exceptions: the type only
  'exception.type',
]);

/** Keeps the allowed attributes. */
export function allowedAttributes(attributes: Attributes): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(attributes)) if (ALLOWED_SPAN_ATTRIBUTES.has(k)) out[k] = v;
  return out;
}

/** A span name without a query string. */
export function scrubSpanName(name: string): string {
  const q = name.indexOf('?');
  return q < 0 ? name : name.slice(0, q);
}

/** A read-only view of `span` with only what may leave the process. */
export function scrubSpan(span: ReadableSpan): ReadableSpan {
  const status: SpanStatus = { code: span.status.code };
  const events: TimedEvent[] = span.events.map((e) => ({ name: scrubSpanName(e.name), time: e.time, attributes: allowedAttributes(e.attributes ?? {}) }));
  const links: Link[] = span.links.map((l) => ({ context: l.context }));
  // The original stays as the prototype: span context, resource, times and scope are read from it.
  return Object.create(span, {
    name: { value: scrubSpanName(span.name), enumerable: true },
    attributes: { value: allowedAttributes(span.attributes), enumerable: true },
    events: { value: events, enumerable: true },
    links: { value: links, enumerable: true },
    status: { value: status, enumerable: true },
  }) as ReadableSpan;
}

/** Wraps the real exporter: every span is scrubbed first. */
export class ScrubbingSpanExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter) {}

  export(spans: ReadableSpan[], resultCallback: Parameters<SpanExporter['export']>[1]): void {
    this.inner.export(spans.map(scrubSpan), resultCallback);
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
