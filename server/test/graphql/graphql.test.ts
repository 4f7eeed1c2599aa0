/**
 * /graphql: the GraphQL-over-HTTP audit suite, then calls through graphql-http's client covering
 * the operation table's permissions, tenant isolation, error codes and the document limits.
 */
import { createClient, serverAudits, type Client } from 'graphql-http';
import type { ExecutionResult } from 'graphql';
import { createOrganization } from '../../src/auth/organizations';
import { backends } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

/** One request through the client: its single result (errors included), or the network error. */
function run<T = Record<string, any>>(client: Client, query: string, variables?: Record<string, unknown>): Promise<ExecutionResult<T, { code?: string }>> {
  return new Promise((resolve, reject) => {
    let result: ExecutionResult<T, { code?: string }> | undefined;
    client.subscribe<T, { code?: string }>(
      { query, variables },
      {
        next: (r) => {
          result = r;
        },
        error: reject,
        complete: () => (result ? resolve(result) : reject(new Error('no result'))),
      },
    );
  });
}

/** The `extensions.code` of every error of a result. */
const codes = (r: ExecutionResult) => (r.errors ?? []).map((e) => (e.extensions as { code?: string } | undefined)?.code);

/** A raw POST to /graphql (for status codes and headers the client does not expose). */
async function post(srv: TestServer, body: unknown, key: string | null = srv.adminKey, accept = 'application/graphql-response+json') {
  const res = await fetch(`${srv.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept, ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as { data?: any; errors?: Array<{ message: string; extensions?: { code?: string; issues?: unknown } }> } };
}

describe.each(backends())('GraphQL endpoint on %s', (backend) => {
  let srv: TestServer;
  let admin: Client;
  let producer: Client;
  let auditor: Client;
  let other: Client;
  let otherOrg: string;
  const clientFor = (key: string) => createClient({ url: `${srv.url}/graphql`, headers: { authorization: `Bearer ${key}` }, fetchFn: fetch });

  beforeAll(async () => {
    srv = await startTestServer(backend);
    admin = clientFor(srv.adminKey);
    producer = clientFor((await srv.client().apiKeys.create.mutate({ name: 'producer', role: 'producer' })).key);
    auditor = clientFor((await srv.client().apiKeys.create.mutate({ name: 'auditor', role: 'auditor' })).key);
    const org = await createOrganization(srv.runtime.database, 'other');
    otherOrg = org.id;
    other = clientFor((await srv.runtime.services.apiKeys.create(org.id, 'other admin', 'admin')).key);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('passes every MUST audit of the GraphQL-over-HTTP suite', async () => {
    const fetchFn: typeof fetch = (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${srv.adminKey}` } });
    const results = await Promise.all(serverAudits({ url: `${srv.url}/graphql`, fetchFn }).map((a) => a.fn()));
    const failed = results.filter((r) => r.status !== 'ok' && r.name.startsWith('MUST')).map((r) => `${r.name}: ${'reason' in r ? r.reason : ''}`);
    expect(failed).toEqual([]);
    expect(results.filter((r) => r.name.startsWith('MUST')).length).toBeGreaterThan(10);
  });

  it('appends with a mutation and reads the event back with a query, as the operation table defines them', async () => {
    const created = await run<{ eventsCreate: { id: string; leafIndex: number; treeSize: number } }>(
      producer,
      'mutation Append($status: EventsCreateStatus!, $details: JSON) { eventsCreate(action: "data.read", status: $status, principalId: "dr-gql", dataClassification: PHI, details: $details) { id leafIndex treeSize } }',
      { status: 'success', details: { reason: 'graphql' } },
    );
    expect(created.errors).toBeUndefined();
    const id = created.data!.eventsCreate.id;
    const read = await run<{ eventsGetById: { event: { id: string; principalId: string; details: unknown }; inclusionProof: { leafIndex: number } } }>(
      auditor,
      'query One($id: String!) { eventsGetById(id: $id, withProof: true) { event { id principalId details } inclusionProof { leafIndex } } }',
      { id },
    );
    expect(read.errors).toBeUndefined();
    // An auditor sees principals as pseudonyms (docs/privacy.md); the admin below sees the id itself.
    expect(read.data!.eventsGetById.event).toEqual({ id, principalId: expect.stringMatching(/^pseu_[A-Za-z0-9_-]{22}$/), details: { reason: 'graphql' } });
    expect(read.data!.eventsGetById.inclusionProof.leafIndex).toBe(created.data!.eventsCreate.leafIndex);
    // The same record REST returns for the same id.
    const rest = await srv.request('GET', `/api/v1/events/${id}`);
    expect(rest.body.event.principalId).toBe('dr-gql');
  });

  it('applies each operation’s permission: FORBIDDEN for a role that lacks it, nothing executed', async () => {
    const asProducer = await run(producer, '{ eventsStats(groupBy: action) { total } }');
    expect(codes(asProducer)).toEqual(['FORBIDDEN']);
    expect(asProducer.errors![0]!.message).toBe('role producer lacks audit.events:read');
    const keysBefore = (await srv.client().apiKeys.list.query({})).keys.length;
    const asAuditor = await run(auditor, 'mutation { apiKeysCreate(name: "x", role: admin) { id key } }');
    expect(codes(asAuditor)).toEqual(['FORBIDDEN']);
    expect((await srv.client().apiKeys.list.query({})).keys.length).toBe(keysBefore);
    const append = await run(auditor, 'mutation { eventsCreate(action: "data.read", status: success) { id } }');
    expect(codes(append)).toEqual(['FORBIDDEN']);
  });

  it('keeps organizations apart: another organization’s event is NOT_FOUND and absent from its lists and stats', async () => {
    const mine = await srv.client().events.create.mutate({ action: 'data.read', status: 'success', principalId: 'tenant-a-only', dataClassification: 'PHI' });
    const byId = await run(other, `{ eventsGetById(id: "${mine.id}") { event { id } } }`);
    expect(codes(byId)).toEqual(['NOT_FOUND']);
    const list = await run<{ eventsQuery: { items: Array<{ organizationId: string; principalId: string }> } }>(other, '{ eventsQuery(limit: 100) { items { organizationId principalId } } }');
    expect(list.data!.eventsQuery.items.every((e) => e.organizationId === otherOrg)).toBe(true);
    expect(list.data!.eventsQuery.items.map((e) => e.principalId)).not.toContain('tenant-a-only');
    const keys = await run<{ apiKeysList: { keys: Array<{ name: string }> } }>(other, '{ apiKeysList { keys { name } } }');
    expect(keys.data!.apiKeysList.keys.map((k) => k.name)).toEqual(['other admin']);
    const adminKeyId = (await srv.client().apiKeys.list.query({})).keys.find((k) => k.name === 'bootstrap admin')!.id;
    const revoke = await run(other, `mutation { apiKeysRevoke(id: "${adminKeyId}") { revoked } }`);
    expect(codes(revoke)).toEqual(['NOT_FOUND']);
    expect((await srv.request('GET', '/api/v1/api-keys')).status).toBe(200);
    const proof = await run(other, `{ ledgerInclusionProof(eventId: "${mine.id}") { leafIndex } }`);
    expect(codes(proof)).toEqual(['NOT_FOUND']);
  });

  it('refuses a request without a key or with a revoked one (401 in the GraphQL error shape)', async () => {
    const anonymous = await post(srv, { query: '{ ledgerKeys { keys { keyId } } }' }, null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.type).toContain('application/graphql-response+json');
    expect(anonymous.body.errors![0]!.extensions!.code).toBe('UNAUTHORIZED');
    const wrong = await post(srv, { query: '{ ledgerKeys { keys { keyId } } }' }, 'sak_not_a_key_not_a_key_not_a_key_00');
    expect(wrong.status).toBe(401);
  });

  it('names the offending argument in a BAD_REQUEST from the operation’s own input schema', async () => {
    const r = await run(admin, '{ ledgerLeaves(start: 5, end: 2) { leaves { id } } }');
    expect(codes(r)).toEqual(['BAD_REQUEST']);
    expect((r.errors![0]!.extensions as { issues: Array<{ path: string }> }).issues[0]!.path).toBe('end');
    const badId = await run(admin, '{ eventsGetById(id: "not-a-uuid") { event { id } } }');
    expect(codes(badId)).toEqual(['BAD_REQUEST']);
    expect(badId.errors![0]!.message).toContain('id');
  });

  it('refuses mutations over GET and answers queries over GET', async () => {
    const q = encodeURIComponent('{ ledgerKeys { keys { algorithm } } }');
    const get = await fetch(`${srv.url}/graphql?query=${q}`, { headers: { authorization: `Bearer ${srv.adminKey}`, accept: 'application/graphql-response+json' } });
    expect(get.status).toBe(200);
    expect(((await get.json()) as { data: { ledgerKeys: { keys: Array<{ algorithm: string }> } } }).data.ledgerKeys.keys[0]!.algorithm).toBe('ed25519');
    const m = encodeURIComponent('mutation { apiKeysCreate(name: "via-get", role: auditor) { id } }');
    const mut = await fetch(`${srv.url}/graphql?query=${m}`, { headers: { authorization: `Bearer ${srv.adminKey}`, accept: 'application/graphql-response+json' } });
    expect(mut.status).toBe(405);
    expect((await srv.client().apiKeys.list.query({})).keys.map((k) => k.name)).not.toContain('via-get');
  });

  it('refuses documents over the alias and complexity limits (400) with errors naming the limit', async () => {
    const aliases = Array.from({ length: 25 }, (_, i) => `k${i}: ledgerKeys { keys { keyId } }`).join(' ');
    const many = await post(srv, { query: `{ ${aliases} }` });
    expect(many.status).toBe(400);
    const messages = many.body.errors!.map((e) => e.message);
    expect(messages).toContain('the document uses 25 aliases; the limit is 20 (GRAPHQL_MAX_ALIASES)');
    expect(messages).toContain('the operation has complexity 325 (1 per field, 10 per operation called); the limit is 250 (GRAPHQL_MAX_COMPLEXITY)');
    expect(many.body.errors!.every((e) => e.extensions!.code === 'BAD_REQUEST')).toBe(true);
    const brackets = await post(srv, { query: `{ ledgerKeys(x: ${'['.repeat(5000)}${']'.repeat(5000)}) { keys { keyId } } }` });
    expect(brackets.status).toBe(400);
    expect(brackets.body.errors![0]!.message).toBe('the document nests 5002 levels of brackets; the limit is 64');
  });

  it('refuses deeply nested variables before coercion', async () => {
    let deepValue: unknown = 'x';
    for (let i = 0; i < 200; i++) deepValue = { a: deepValue };
    const r = await post(srv, { query: 'mutation($d: JSON) { eventsCreate(action: "data.read", status: success, details: $d) { id } }', variables: { d: deepValue } });
    expect(r.status).toBe(400);
    expect(r.body.errors![0]!.extensions!.code).toBe('BAD_REQUEST');
    expect(r.body.errors![0]!.message).toMatch(/^variables: /);
  });

  it('answers introspection outside production (the explorer page too)', async () => {
    const r = await run<{ __schema: { queryType: { name: string } } }>(admin, '{ __schema { queryType { name } } }');
    expect(r.data!.__schema.queryType.name).toBe('Query');
    const page = await fetch(`${srv.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'sha256-/);
    expect(await page.text()).toContain('GraphQL explorer');
  });
});

describe('GraphQL endpoint in production', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('pglite', { NODE_ENV: 'production' });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('refuses introspection and serves no explorer by default', async () => {
    const r = await post(srv, { query: '{ __schema { queryType { name } } }' });
    expect(r.status).toBe(400);
    expect(r.body.errors![0]!.message).toContain('introspection');
    const page = await fetch(`${srv.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(401);
  });

  it('hides an internal failure behind "internal error" with its code', async () => {
    const events = srv.runtime.services.events;
    const original = events.stats.bind(events);
    events.stats = () => Promise.reject(new Error('relation "secret_table" does not exist'));
    try {
      const r = await post(srv, { query: '{ eventsStats(groupBy: status) { total } }' });
      expect(r.body.errors).toEqual([expect.objectContaining({ message: 'internal error', extensions: { code: 'INTERNAL' } })]);
      expect(JSON.stringify(r.body)).not.toContain('secret_table');
    } finally {
      events.stats = original;
    }
  });
});
