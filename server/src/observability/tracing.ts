/**
 * OpenTelemetry tracing (OTLP/HTTP) for HTTP, Express and PostgreSQL spans, on only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set. It must start before http, express and pg are first
 * required, so main.ts loads everything else after calling {@link startTracing}.
 */
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { ScrubbingSpanExporter } from './trace-scrubber';

/** Starts the SDK; returns a function that flushes and stops it. */
export function startTracing(endpoint: string, serviceName: string): () => Promise<void> {
  const sdk = new NodeSDK({
    serviceName,
    // Only allow-listed attributes, names without query strings (trace-scrubber.ts).
    traceExporter: new ScrubbingSpanExporter(new OTLPTraceExporter({ url: endpoint.replace(/\/+$/, '') + '/v1/traces' })),
    instrumentations: [
      // Probes and scrapes would drown the traces that matter.
      new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => /^\/(health|ready|metrics)\b/.test(req.url ?? '') }),
      new ExpressInstrumentation(),
      // No parameters (they carry event values); the statement text is dropped by the scrubber too.
      new PgInstrumentation({ enhancedDatabaseReporting: false }),
    ],
  });
  sdk.start();
  return () => sdk.shutdown();
}
