/**
 * Live streams (SSE, docs/alerts.md §8) through the real nginx binary running compose/nginx.conf —
 * templated only as every deployment test templates it (support/services.ts: ports, resolver,
 * certificate and temp paths) — in front of a real server, over HTTP/1.1 and HTTP/2 (what
 * browsers speak to the `listen … ssl http2` server):
 *
 * - unbuffered: each event is received through nginx before the next one is appended, so a proxy
 *   that held the response back (proxy buffering, gzip) would leave the test waiting;
 * - not compressed, even for a client that accepts gzip (a compressed stream is a buffered one);
 * - alive past the configuration's `proxy_read_timeout` for the stream's location: the server's
 *   heartbeats keep the upstream connection from ever being idle that long, and an event appended
 *   after that still arrives on the same connection.
 *
 * Nothing here waits for a fixed time: every wait is for something to arrive (a bounded test
 * timeout catches a hang).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { startTestServer, type TestServer } from '../helpers/server';
import { readSse, type SseReader } from '../helpers/sse';
import { startDnsServer, type DnsServer } from './support/dns';
import { fetchOnce, generateCertificate, startNginx } from './support/services';
import { REPO_ROOT, freePort, makeTempDir, requireBinary, stopAll } from './support/tools';

jest.setTimeout(240_000);

/** Heartbeat of the server under test: short, so that counting heartbeats measures the connection's age. */
const HEARTBEAT_MS = 1_000;
const STREAM_PATH = '/api/v1/events/stream';

/**
 * The `proxy_read_timeout` (seconds) that applies to the stream's location: the one inside a
 * location matching it if there is one, else the http-level one; null when the file sets none
 * (nginx's default, 60 s, then applies).
 */
function readTimeoutForStream(conf: string): number | null {
  const seconds = (block: string) => {
    const m = /^\s*proxy_read_timeout\s+(\d+)(s|m)?;/m.exec(block);
    return m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : null;
  };
  // The locations of the HTTPS server whose prefix the stream's path starts with, longest first.
  const locations = [...conf.matchAll(/location\s+(=\s+)?(\S+)\s*\{([^}]*)\}/g)]
    .filter((m) => (m[1] ? STREAM_PATH === m[2] : STREAM_PATH.startsWith(m[2]!)))
    .sort((a, b) => b[2]!.length - a[2]!.length);
  const own = locations.length > 0 ? seconds(locations[0]![3]!) : null;
  return own ?? seconds(conf.replace(/location\s+[^{]*\{[^}]*\}/g, ''));
}

describe('live streams through compose/nginx.conf (real nginx)', () => {
  const temp = makeTempDir('nginx-sse');
  const conf = readFileSync(join(REPO_ROOT, 'compose', 'nginx.conf'), 'utf8');
  let srv: TestServer;
  let dns: DnsServer;
  let httpsPort: number;
  let ca: string;

  beforeAll(async () => {
    requireBinary('nginx', 'nginx');
    const upstreamPort = await freePort();
    srv = await startTestServer('pglite', { PORT: String(upstreamPort), STREAM_HEARTBEAT_MS: String(HEARTBEAT_MS), INGEST_MAX_WAIT_MS: '0' });
    // nginx finds the replica by name through DNS, as in compose (Docker's DNS answers there).
    dns = await startDnsServer({ 'audit-server': ['127.0.0.1'] });
    const certDir = join(temp.dir, 'certs');
    mkdirSync(certDir, { recursive: true });
    ca = generateCertificate(certDir).cert;
    httpsPort = await freePort();
    await startNginx({ prefixDir: join(temp.dir, 'prefix'), certDir, httpPort: await freePort(), httpsPort, resolver: `127.0.0.1:${dns.port}`, upstreamPort });
  });
  afterAll(async () => {
    await stopAll();
    await dns?.close();
    await srv?.close();
    temp.remove();
  });

  const headers = () => ({ authorization: `Bearer ${srv.adminKey}`, accept: 'text/event-stream', 'accept-encoding': 'gzip' });

  /** Appends one event through nginx; returns its id. */
  async function append(action: string): Promise<string> {
    const res = await fetchOnce({
      port: httpsPort,
      path: '/api/v1/events',
      method: 'POST',
      tls: { ca },
      headers: { authorization: `Bearer ${srv.adminKey}` },
      body: JSON.stringify({ action, status: 'success' }),
    });
    expect({ status: res.status, body: res.body }).toMatchObject({ status: 201 });
    return (JSON.parse(res.body) as { id: string }).id;
  }

  /** A stream over HTTP/1.1 (node:https offers no h2 in ALPN). */
  async function openHttp1(): Promise<{ status: number; headers: Record<string, unknown>; sse: SseReader; close(): void }> {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: httpsPort, path: STREAM_PATH, headers: headers(), ca, servername: 'localhost', agent: false }, resolve);
      req.on('error', reject);
      req.end();
    });
    return { status: res.statusCode ?? 0, headers: res.headers, sse: readSse(res), close: () => res.destroy() };
  }

  /** A stream over HTTP/2, as a browser opens it. */
  async function openHttp2(): Promise<{ status: number; headers: Record<string, unknown>; sse: SseReader; close(): void }> {
    // The certificate names 127.0.0.1 too; nginx listens on it alone (no IPv6 in the template).
    const session = http2.connect(`https://127.0.0.1:${httpsPort}`, { ca });
    session.on('error', () => undefined);
    const stream = session.request({ ':method': 'GET', ':path': STREAM_PATH, ...headers() });
    const responseHeaders = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      stream.once('response', resolve);
      stream.once('error', reject);
    });
    return {
      status: Number(responseHeaders[':status']),
      headers: responseHeaders,
      sse: readSse(stream),
      close: () => {
        stream.close();
        session.close();
      },
    };
  }

  const sawEvent = (sse: SseReader, id: string) => sse.messages.some((m) => m.event === 'event' && (JSON.parse(m.data) as { id: string }).id === id);

  it.each([
    ['HTTP/1.1', 'h1', openHttp1] as const,
    ['HTTP/2', 'h2', openHttp2] as const,
  ])('over %s: every event arrives before the next is appended, uncompressed', async (_, tag, open) => {
    const s = await open();
    try {
      expect(s.status).toBe(200);
      expect(String(s.headers['content-type'])).toMatch(/^text\/event-stream/);
      expect(s.headers['content-encoding']).toBeUndefined();
      // The server's first comment line names where the stream starts: nginx passed it on at once.
      await s.sse.until('the opening comment', (r) => r.comments.some((c) => c.startsWith('streaming from leaf')));
      for (let i = 0; i < 5; i++) {
        const id = await append(`nginx.sse.${tag}.${i}`);
        await s.sse.until(`event ${i} through nginx`, (r) => sawEvent(r, id));
      }
    } finally {
      s.close();
    }
  });

  it("stays open past the stream location's proxy_read_timeout, and still delivers", async () => {
    const timeoutSeconds = readTimeoutForStream(conf) ?? 60;
    // With the defaults the heartbeat (STREAM_HEARTBEAT_MS) comes well within that timeout.
    expect(loadConfig({}).STREAM_HEARTBEAT_MS).toBeLessThan(timeoutSeconds * 1_000);
    const s = await openHttp1();
    try {
      expect(s.status).toBe(200);
      // Heartbeats are at least HEARTBEAT_MS apart: this many prove the connection is older than
      // the read timeout (two more than the timeout holds, for the first one's offset).
      const needed = Math.ceil((timeoutSeconds * 1_000) / HEARTBEAT_MS) + 2;
      await s.sse.until(`${needed} heartbeats`, (r) => r.comments.filter((c) => c === 'ping').length >= needed);
      const id = await append('nginx.sse.after-read-timeout');
      await s.sse.until('the event appended after the read timeout', (r) => sawEvent(r, id));
      expect(s.sse.ended).toBeNull();
    } finally {
      s.close();
    }
  });
});
