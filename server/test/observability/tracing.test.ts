/**
 * With OTEL_EXPORTER_OTLP_ENDPOINT set, the server exports OTLP/HTTP traces of its requests
 * (received here by a plain HTTP listener standing in for the collector) and flushes on SIGTERM.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateSignerKey } from '../../src/ledger';
import { killServer, postJson, spawnServer } from '../helpers/process';
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
