/**
 * With OTEL_EXPORTER_OTLP_ENDPOINT set, the server exports OTLP/HTTP traces of its requests
 * (received here by a plain HTTP listener standing in for the collector) and flushes on SIGTERM.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateSignerKey } from '../../src/ledger';
import { killServer, postJson, spawnServer } from '../helpers/process';
import { backends } from '../helpers/backends';
import { backendEnv, TEST_ADMIN_KEY } from '../helpers/server';

jest.setTimeout(120_000);

it('exports spans of API requests to the OTLP endpoint and none of health probes', async () => {
  const bodies: string[] = [];
  const collector = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', () => r()));
  const port = (collector.address() as AddressInfo).port;
  const { env, cleanup } = await backendEnv('pglite');
  const server = await spawnServer({
    ...env,
    AUDIT_SIGNING_KEY: generateSignerKey('otel.audit').signerKey,
    AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_SERVICE_NAME: 'audit-server-under-test',
  });
  try {
    expect((await postJson(`${server.url}/api/v1/events`, TEST_ADMIN_KEY, { action: 'otel.check', status: 'success' })).status).toBe(201);
    await fetch(`${server.url}/health`);
    server.child.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
    const all = bodies.join('\n');
    expect(all).toContain('audit-server-under-test');
    expect(all).toContain('"name":"POST /api/v1/events"');
    expect(all).not.toContain('"name":"GET /health"');
  } finally {
    await killServer(server);
    collector.close();
    await cleanup();
  }
});

describe.each(backends().includes('postgres') ? (['postgres'] as const) : (['pglite'] as const))('no identifier in any exported span (%s)', (backend) => {
  it('keeps markers from query, path, body, headers, cookies, tRPC batch input and SQL parameters out of every exported byte', async () => {
    const chunks: Buffer[] = [];
    const collector = http.createServer((req, res) => {
      const body: Buffer[] = [];
      req.on('data', (d: Buffer) => body.push(d));
      req.on('end', () => {
        if (req.url === '/v1/traces') chunks.push(Buffer.concat(body));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', () => r()));
    const port = (collector.address() as AddressInfo).port;
    const { env, cleanup } = await backendEnv(backend);
    const server = await spawnServer({
      ...env,
      AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_SERVICE_NAME: 'audit-server-scrubbed',
      RATE_LIMIT_PER_MINUTE: '0',
    });
    // A free-text marker, and a UUID-shaped one for positions that must parse as an id to reach SQL.
    const marker = `phi-marker-${randomBytes(8).toString('hex')}`;
    const idMarker = randomUUID();
    const auth = { authorization: `Bearer ${TEST_ADMIN_KEY}` };
    const call = (path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, init).then(async (r) => ({ status: r.status, text: await r.text() }));
    try {
      const created = await call('/api/v1/events', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', cookie: `session=${marker}`, 'x-request-id': `req-${marker}`.slice(0, 60), 'user-agent': `ua-${marker}` },
        body: JSON.stringify({ action: 'otel.check', status: 'success', patientId: marker, principalId: marker, details: { note: marker } }),
      });
      expect(created.status).toBe(201);
      const results = [
        await call(`/api/v1/events?patientIds=${marker}&principalIds=${marker}`, { headers: { ...auth, cookie: `sid=${marker}` } }),
        await call(`/api/v1/events/${idMarker}?withProof=true`, { headers: auth }),
        await call(`/api/v1/events/${marker}`, { headers: auth }),
        await call(`/trpc/events.getById,ledger.checkpoint?batch=1&input=${encodeURIComponent(JSON.stringify({ 0: { id: idMarker }, 1: {} }))}`, { headers: auth }),
        await call(`/trpc/events.list?batch=1&input=${encodeURIComponent(JSON.stringify({ 0: { patientIds: [marker] } }))}`, { headers: auth }),
        await call('/api/v1/events', { headers: { authorization: `Bearer ${marker}`, cookie: `sid=${marker}` } }),
        await call(`/api/v1/${marker}?q=${marker}`, { headers: { 'x-api-key': marker } }),
      ];
      // The requests did reach the service (and, on PostgreSQL, the SQL with the markers as parameters).
      expect(results.map((r) => r.status)).toEqual([200, 404, 400, expect.any(Number), expect.any(Number), 401, expect.any(Number)]);
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);

      const bytes = Buffer.concat(chunks);
      const text = bytes.toString('utf8');
      // Non-vacuous: spans were exported, the request spans by route template, and on PostgreSQL query spans.
      expect(chunks.length).toBeGreaterThan(0);
      expect(text).toContain('audit-server-scrubbed');
      expect(text).toContain('"name":"POST /api/v1/events"');
      expect(text).toContain('/api/v1/events/:id');
      if (backend === 'postgres') expect(text).toMatch(/"key":"db\.system(\.name)?"/);
      for (const secret of [marker, idMarker, TEST_ADMIN_KEY, encodeURIComponent(marker)]) {
        expect({ secret, found: bytes.includes(Buffer.from(secret)) }).toEqual({ secret, found: false });
      }
      // No URL, query, target, header or statement attribute at all.
      expect(text).not.toMatch(/"key":"(url\.full|url\.query|url\.path|http\.target|http\.url|db\.statement|db\.query\.text|http\.user_agent|user_agent\.original)"/);
    } finally {
      await killServer(server);
      collector.close();
      await cleanup();
    }
  });
});
