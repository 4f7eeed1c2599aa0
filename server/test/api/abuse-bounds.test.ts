/**
 * Abuse that must stay bounded: bodies are not read before the caller is authenticated, a
 * declared Content-Length over the limit is refused at once, a tRPC batch has a length cap and
 * each of its calls counts against the rate limit.
 */
import net from 'node:net';
import { TRPCClientError, createTRPCClient, httpBatchLink } from '@trpc/client';
import type { AppRouter } from '../../src/trpc/routers';
import { startTestServer, type TestServer } from '../helpers/server';

/** What a raw HTTP exchange produced before the server closed the connection (or the deadline). */
interface RawExchange {
  status: number;
  head: string;
  body: string;
  closed: boolean;
}

/**
 * Sends a request head (and optionally the start of a body) without ever finishing the body, and
 * reads until the server closes the connection or `deadlineMs` passes.
 */
function rawRequest(url: string, head: string, bodyStart = '', deadlineMs = 15_000): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let data = '';
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      const [h = '', b = ''] = data.split('\r\n\r\n', 2);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(h)?.[1] ?? 0), head: h, body: b, closed });
      socket.destroy();
    };
    const timer = setTimeout(finish, deadlineMs);
    socket.on('connect', () => socket.write(head + '\r\n' + bodyStart));
    socket.on('data', (d) => (data += d.toString('utf8')));
    socket.on('end', () => {
      closed = true;
      finish();
    });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('error', (err) => (data ? finish() : reject(err)));
  });
}

describe('abuse bounds', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('pglite', { HTTP_BODY_LIMIT_BYTES: '65536', TRPC_MAX_BATCH: '5', RATE_LIMIT_PER_MINUTE: '1000' });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });
  const host = () => new URL(srv.url).host;

  it('answers an unauthenticated upload with 401 before receiving its body, and closes', async () => {
    for (const path of ['/api/v1/events', '/trpc/events.create']) {
      // 7.5 MB announced, 10 bytes sent: the answer must not wait for the rest.
      const head = `POST ${path} HTTP/1.1\r\nHost: ${host()}\r\nContent-Type: application/json\r\nContent-Length: 7864320\r\n`;
      const res = await rawRequest(srv.url, head, '{"action":');
      expect({ path, status: res.status, closed: res.closed }).toEqual({ path, status: 401, closed: true });
      expect(res.head.toLowerCase()).toContain('connection: close');
    }
  });

  it('refuses a declared Content-Length over the limit at once with 413, and closes', async () => {
    for (const path of ['/api/v1/events', '/trpc/events.create']) {
      const head = `POST ${path} HTTP/1.1\r\nHost: ${host()}\r\nAuthorization: Bearer ${srv.adminKey}\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n`;
      const res = await rawRequest(srv.url, head);
      expect({ path, status: res.status, closed: res.closed }).toEqual({ path, status: 413, closed: true });
      expect(res.body).toContain('PAYLOAD_TOO_LARGE');
    }
  });

  it('answers tRPC without a key in tRPC’s own error format', async () => {
    const client = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: `${srv.url}/trpc` })] });
    const err = (await client.events.query.query({}).catch((e: unknown) => e)) as TRPCClientError<any>;
    expect(err).toBeInstanceOf(TRPCClientError);
    expect(err.data).toMatchObject({ code: 'UNAUTHORIZED', httpStatus: 401 });
  });

  it('caps the length of a tRPC batch and counts every call against the rate limit', async () => {
    const input = encodeURIComponent(JSON.stringify(Object.fromEntries(Array.from({ length: 6 }, (_, i) => [i, { limit: 1 }]))));
    const six = await fetch(`${srv.url}/trpc/${Array(6).fill('events.query').join(',')}?batch=1&input=${input}`, {
      headers: { authorization: `Bearer ${srv.adminKey}` },
    });
    expect(six.status).toBe(400);
    const body = (await six.json()) as Array<{ error: { message: string; data: { issues: Array<{ path: string }> } } }>;
    expect(body).toHaveLength(6);
    expect(body[0]!.error.message).toBe('a batch may hold at most 5 calls; this one has 6');
    expect(body[0]!.error.data.issues[0]!.path).toBe('(root)');

    const five = (n: number) =>
      fetch(`${srv.url}/trpc/${Array(n).fill('events.query').join(',')}?batch=1&input=${input}`, { headers: { authorization: `Bearer ${srv.adminKey}` } });
    const a = await five(1);
    const b = await five(5);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(Number(a.headers.get('ratelimit-remaining')) - Number(b.headers.get('ratelimit-remaining'))).toBe(5);
  });

  it('counts every operation a GraphQL document calls against the rate limit (aliases included)', async () => {
    const gql = (query: string) =>
      fetch(`${srv.url}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query }),
      });
    const one = await gql('{ ledgerKeys { keys { keyId } } }');
    const four = await gql('fragment F on Query { c: ledgerKeys { keys { keyId } } } { a: ledgerKeys { keys { keyId } } b: ledgerKeys { keys { keyId } } ...F ... on Query { d: ledgerKeys { keys { keyId } } } __typename }');
    const again = await gql('{ ledgerKeys { keys { keyId } } }');
    expect([one.status, four.status, again.status]).toEqual([200, 200, 200]);
    const remaining = (r: Response) => Number(r.headers.get('ratelimit-remaining'));
    expect(remaining(one) - remaining(four)).toBe(4);
    expect(remaining(four) - remaining(again)).toBe(1);
  });

  it('counts a REST request once', async () => {
    const a = await srv.request('GET', '/api/v1/ledger/keys');
    const b = await srv.request('GET', '/api/v1/ledger/keys');
    expect(Number(a.headers.get('ratelimit-remaining')) - Number(b.headers.get('ratelimit-remaining'))).toBe(1);
  });
});
