/**
 * The span scrubber keeps only allow-listed attributes, cuts names at `?`, and drops event
 * messages, status messages and link attributes.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { tracing } from '@opentelemetry/sdk-node';
import { ScrubbingSpanExporter, scrubSpan } from '../../src/observability/trace-scrubber';

it('exports only what the allow-list names', async () => {
  const memory = new tracing.InMemorySpanExporter();
  const provider = new tracing.BasicTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(new ScrubbingSpanExporter(memory))] });
  const span = provider.getTracer('t').startSpan('GET /trpc/events.getById?batch=1&input=SECRET', {
    kind: SpanKind.SERVER,
    attributes: { 'http.request.method': 'GET', 'http.route': '/trpc', 'url.full': 'http://x/trpc?input=SECRET', 'url.query': 'input=SECRET', 'db.statement': 'SELECT SECRET', 'x.custom': 'SECRET' },
  });
  span.addEvent('exception', { 'exception.type': 'Error', 'exception.message': 'bad uuid "SECRET"', 'exception.stacktrace': 'SECRET' });
  span.setStatus({ code: SpanStatusCode.ERROR, message: 'SECRET' });
  span.end();
  await provider.forceFlush();
  const [out] = memory.getFinishedSpans();
  expect(out!.name).toBe('GET /trpc/events.getById');
  expect(out!.attributes).toEqual({ 'http.request.method': 'GET', 'http.route': '/trpc' });
  expect(out!.events.map((e) => [e.name, e.attributes])).toEqual([['exception', { 'exception.type': 'Error' }]]);
  expect(out!.status).toEqual({ code: SpanStatusCode.ERROR });
  expect(out!.spanContext().traceId).toBe(span.spanContext().traceId);
  expect(JSON.stringify(scrubSpan(out!).attributes)).not.toContain('SECRET');
});
