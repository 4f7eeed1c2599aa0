/**
 * The HTTP surface: OpenAPI document, JSON errors without internals, body limits, rate limits,
 * CORS, security headers, metrics and readiness.
 */
import { createOperations } from '../../src/api/operations';
import { DEFAULT_EVENT_LIMITS } from '../../src/events/limits';

const operations = createOperations({ event: DEFAULT_EVENT_LIMITS });
import { METRIC_NAMES } from '../../src/observability/metric-names';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

describeEachBackend('HTTP surface on %s', (backend) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(backend, {
      RATE_LIMIT_PER_MINUTE: '40',
      CORS_ORIGINS: 'https://app.example.org',
      HTTP_BODY_LIMIT_BYTES: '65536',
      EVENT_MAX_DEPTH: '3',
      EVENT_MAX_STRING_LENGTH: '64',
    });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('publishes an OpenAPI 3.1 document with every REST operation', async () => {
    const res = await srv.request('GET', '/api/v1/openapi.json', undefined, null);
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    const ids = Object.values(
      res.body.paths as Record<string, Record<string, { operationId: string }>>,
    ).flatMap((p) => Object.values(p).map((o) => o.operationId));
    expect(ids.sort()).toEqual([...Object.keys(operations), 'ledgerExportBundle', 'reportsCreate'].sort());
    expect(Object.keys(res.body.paths['/ledger/export'].get.responses['200'].content)).toEqual([
      'application/x-ndjson',
    ]);
    const create = res.body.paths['/events'].post;
    expect(create.requestBody.content['application/json'].schema.required).toEqual(['action', 'status']);
    expect(create.requestBody.content['application/json'].schema.additionalProperties).toBe(false);
    expect(res.body.paths['/events/{id}'].get.parameters[0]).toMatchObject({ name: 'id', in: 'path' });
  });

  it('answers unknown routes and malformed JSON with JSON errors', async () => {
    const nf = await srv.request('GET', '/api/v1/nope');
    expect(nf.status).toBe(404);
    expect(nf.body.error.code).toBe('NOT_FOUND');
    const bad = await srv.request('POST', '/api/v1/events', '{"action":');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toBe('request body is not valid JSON');
    expect(JSON.stringify(bad.body)).not.toMatch(/at \S+:\d+:\d+/);
  });

  it('rejects a body over the limit with 413', async () => {
    const res = await srv.request('POST', '/api/v1/events', {
      action: 'big.body',
      status: 'success',
      details: { x: 'y'.repeat(70_000) },
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('enforces configurable depth and string limits, naming each path', async () => {
    const res = await srv.request('POST', '/api/v1/events', {
      action: 'limits.check',
      status: 'success',
      outcomeDescription: 'z'.repeat(65),
      details: { a: { b: { c: { d: 1 } } }, nul: 'a\u0000b' },
    });
    expect(res.status).toBe(400);
    const paths = res.body.error.issues.map((i: { path: string }) => i.path).sort();
    expect(paths).toEqual(['details.a.b.c', 'details.nul', 'outcomeDescription']);
  });

  it('sends security headers and answers CORS only for configured origins', async () => {
    const res = await fetch(`${srv.url}/health`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-powered-by')).toBeNull();
    const ok = await fetch(`${srv.url}/api/v1/events`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.org', 'access-control-request-method': 'POST' },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.org');
    expect(ok.headers.get('access-control-allow-headers')).toContain('x-api-key');
    const denied = await fetch(`${srv.url}/api/v1/events`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example' },
    });
    expect(denied.status).toBe(403);
    expect(denied.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('exposes the promised metrics', async () => {
    await srv.request('POST', '/api/v1/events', { action: 'metrics.check', status: 'success' });
    const text = (await srv.request('GET', '/metrics', undefined, null)).body as string;
    for (const name of [
      METRIC_NAMES.httpRequestsTotal,
      METRIC_NAMES.httpRequestDurationSeconds,
      METRIC_NAMES.eventsIngestedTotal,
      METRIC_NAMES.ingestBatchSize,
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    expect(text).toMatch(/^audit_events_ingested_total [1-9]/m);
    expect(text).toMatch(/http_requests_total\{method="POST",route="\/api\/v1\/events",status="201"\}/);
  });

  it('rate-limits per key with 429, Retry-After and RateLimit headers', async () => {
    const key = (await srv.client().apiKeys.create.mutate({ name: 'limited', role: 'auditor' })).key;
    const answers: Array<{ status: number; retryAfter: string | null; limit: string | null; code: unknown }> =
      [];
    for (let i = 0; i < 45; i++) {
      const res = await fetch(`${srv.url}/api/v1/ledger/checkpoint`, {
        headers: { authorization: `Bearer ${key}` },
      });
      const body = (await res.json()) as { error?: { code?: unknown } };
      answers.push({
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        limit: res.headers.get('ratelimit-limit'),
        code: body.error?.code,
      });
    }
    // The window may roll over once during the loop; at least the 41st request of one window fails.
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    for (const a of limited) {
      expect(Number(a.retryAfter)).toBeGreaterThan(0);
      expect(a.code).toBe('TOO_MANY_REQUESTS');
    }
    expect(answers.every((a) => a.status === 200 || a.status === 429)).toBe(true);
    expect(new Set(answers.map((a) => a.limit))).toEqual(new Set(['40']));
  });

  it('reports not ready, naming the database, when the database is gone', async () => {
    const other = await startTestServer(backend);
    await other.runtime.database.close();
    const res = await other.request('GET', '/ready', undefined, null);
    expect(res.status).toBe(503);
    expect(res.body.checks.database).toMatch(/^failing: /);
    await other.close().catch(() => undefined);
  }, 60_000);
});
