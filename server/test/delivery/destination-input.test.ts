/**
 * Every refusal of a destination's target is a 400 naming the field at fault, over REST and tRPC
 * (README "Errors": a 400 names the offending field paths). The fuzz suite found
 * `destinations.create` answering 400 with no issues: the URL scheme and secret checks depend on
 * the kind and ran in the service, which threw a bare message. Each case below is one the fuzz
 * suite can generate, fixed so it runs every time.
 */
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';
import { selfSignedCert } from './receivers';

const SECRET = 'whsec_test_0123456789abcdef';

describeEachBackend('destination input on %s', (backend) => {
  let srv: TestServer;
  const cert = selfSignedCert().cert;

  beforeAll(async () => {
    srv = await startTestServer(backend);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  /** The paths a 400 names, over REST and over tRPC (which must agree). */
  async function refusedPaths(restPath: string, trpcPath: string, body: Record<string, unknown>): Promise<string[]> {
    const rest = await srv.request('POST', restPath, body);
    expect({ status: rest.status, answer: rest.body }).toMatchObject({ status: 400 });
    const trpc = await srv.request('POST', `/trpc/${trpcPath}`, body);
    expect(trpc.status).toBe(400);
    const restIssues = (rest.body.error.issues as Array<{ path: string }>).map((i) => i.path);
    expect((trpc.body.error.data.issues as Array<{ path: string }>).map((i) => i.path)).toEqual(restIssues);
    return restIssues;
  }

  const create = (body: Record<string, unknown>) => refusedPaths('/api/v1/destinations', 'destinations.create', body);

  it.each([
    ['a url that is not a URL', { kind: 'syslog', url: 'not a url' }, ['url']],
    ['a url with a lone surrogate', { kind: 'syslog', url: '\ud800' }, ['url']],
    ['a url with NUL', { kind: 'webhook', url: 'https://siem.example/\u0000', secret: SECRET }, ['url']],
    ['a syslog url that is not syslog+tls', { kind: 'syslog', url: 'https://siem.example' }, ['url']],
    ['a webhook url that is not https', { kind: 'webhook', url: 'http://siem.example', secret: SECRET }, ['url']],
    ['a webhook without its secret', { kind: 'webhook', url: 'https://siem.example' }, ['secret']],
    ['a HEC destination without its token', { kind: 'splunk_hec', url: 'https://splunk.example:8088' }, ['secret']],
    ['a HEC token that cannot travel in a header', { kind: 'splunk_hec', url: 'https://splunk.example:8088', secret: 'token with spaces 0123456789' }, ['secret']],
    ['both wrong at once', { kind: 'webhook', url: 'syslog+tls://siem.example:6514' }, ['url', 'secret']],
    ['a secret with a lone surrogate', { kind: 'webhook', url: 'https://siem.example', secret: `${SECRET}\udc00` }, ['secret']],
    ['a ca without a certificate', { kind: 'syslog', url: 'syslog+tls://siem.example:6514', ca: 'not a pem' }, ['ca']],
    ['a ca whose certificate cannot be read', { kind: 'syslog', url: 'syslog+tls://siem.example:6514', ca: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }, ['ca']],
    ['a ca with NUL', { kind: 'syslog', url: 'syslog+tls://siem.example:6514', ca: `${cert}\u0000` }, ['ca']],
  ])('create refuses %s, naming the field', async (_, target, paths) => {
    expect(await create({ name: 'SIEM', startAt: 'now', ...target })).toEqual(paths);
  });

  it('update and rotateSecret check the stored kind, naming the field', async () => {
    const made = await srv.request('POST', '/api/v1/destinations', { name: 'HEC', kind: 'splunk_hec', url: 'https://splunk.example:8088', secret: '11111111-2222-3333-4444-555555555555', ca: cert, startAt: 'now', carries: 'alerts' });
    expect(made.status).toBe(201);
    const id = made.body.id as string;
    await srv.request('POST', '/api/v1/destinations/update', { id, enabled: false });
    expect(await refusedPaths('/api/v1/destinations/update', 'destinations.update', { id, url: 'syslog+tls://siem.example:6514' })).toEqual(['url']);
    expect(await refusedPaths('/api/v1/destinations/rotate-secret', 'destinations.rotateSecret', { id, secret: 'a token\twith a tab 0123456789' })).toEqual(['secret']);
    // A valid change still goes through.
    const ok = await srv.request('POST', '/api/v1/destinations/update', { id, url: 'https://splunk2.example:8088', ca: null });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ url: 'https://splunk2.example:8088', ca: null, enabled: false });
  });
});
