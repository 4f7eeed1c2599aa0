/**
 * Authentication, roles and tenant isolation: the organization always comes from the key, and
 * no endpoint but /health, /ready and /metrics answers without one.
 */
import type { TRPCClientError } from '@trpc/client';
import { createOrganization } from '../../src/auth/organizations';
import { createOperations } from '../../src/api/operations';
import { DEFAULT_EVENT_LIMITS } from '../../src/events/limits';

const operations = createOperations({ event: DEFAULT_EVENT_LIMITS });
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

describeEachBackend('authentication and tenancy on %s', (backend) => {
  let srv: TestServer;
  let producer: string;
  let auditor: string;
  let otherOrgKey: string;
  beforeAll(async () => {
    srv = await startTestServer(backend);
    producer = (await srv.client().apiKeys.create.mutate({ name: 'producer', role: 'producer' })).key;
    auditor = (await srv.client().apiKeys.create.mutate({ name: 'auditor', role: 'auditor' })).key;
    const other = await createOrganization(srv.runtime.database, 'other');
    otherOrgKey = (await srv.runtime.services.apiKeys.create(other.id, 'other admin', 'admin')).key;
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('serves /health, /ready and /metrics without a key', async () => {
    expect((await srv.request('GET', '/health', undefined, null)).status).toBe(200);
    const ready = await srv.request('GET', '/ready', undefined, null);
    expect(ready.status).toBe(200);
    expect(ready.body.checks.database).toBe('ok');
    expect(ready.body.checks.migrations).toBe('ok');
    expect((await srv.request('GET', '/metrics', undefined, null)).status).toBe(200);
  });

  it('answers 401 on every REST operation without a key', async () => {
    for (const op of Object.values(operations)) {
      const path = '/api/v1' + op.rest.path.replace(':id', '00000000-0000-4000-8000-000000000000');
      const res = await srv.request(
        op.rest.method.toUpperCase(),
        path,
        op.rest.method === 'post' ? {} : undefined,
        null,
      );
      expect({ path, status: res.status }).toEqual({ path, status: 401 });
      expect(res.body.error.code).toBe('UNAUTHORIZED');
    }
  });

  it('answers 401 to a wrong key, a malformed Authorization header, and tRPC without a key', async () => {
    expect(
      (await srv.request('GET', '/api/v1/events', undefined, 'sak_wrong_key_wrong_key_wrong_key_000')).status,
    ).toBe(401);
    const res = await fetch(`${srv.url}/api/v1/events`, { headers: { authorization: 'Basic abc' } });
    expect(res.status).toBe(401);
    const trpc = await fetch(`${srv.url}/trpc/events.query?input=${encodeURIComponent('{}')}`);
    expect(trpc.status).toBe(401);
  });

  it('accepts the key in x-api-key as well as Bearer', async () => {
    const res = await fetch(`${srv.url}/api/v1/events?limit=1`, { headers: { 'x-api-key': srv.adminKey } });
    expect(res.status).toBe(200);
  });

  it('enforces roles: producers write but cannot read events; auditors read but cannot write', async () => {
    const write = await srv.request(
      'POST',
      '/api/v1/events',
      { action: 'role.check', status: 'success' },
      producer,
    );
    expect(write.status).toBe(201);
    expect((await srv.request('GET', '/api/v1/events', undefined, producer)).status).toBe(403);
    expect(
      (
        await srv.request(
          'GET',
          `/api/v1/ledger/proofs/inclusion?leafIndex=${write.body.leafIndex}`,
          undefined,
          producer,
        )
      ).status,
    ).toBe(200);
    expect(
      (await srv.request('POST', '/api/v1/events', { action: 'role.check', status: 'success' }, auditor))
        .status,
    ).toBe(403);
    expect((await srv.request('GET', `/api/v1/events/${write.body.id}`, undefined, auditor)).status).toBe(
      200,
    );
    const err = await srv
      .client(auditor)
      .apiKeys.list.query()
      .catch((e: unknown) => e);
    expect((err as TRPCClientError<any>).data.httpStatus).toBe(403);
  });

  it('scopes every read to the key’s organization', async () => {
    const mine = await srv.request('POST', '/api/v1/events', {
      action: 'tenant.check',
      status: 'success',
      patientId: 'shared-patient',
    });
    const theirs = await srv.request(
      'POST',
      '/api/v1/events',
      { action: 'tenant.check', status: 'success', patientId: 'shared-patient' },
      otherOrgKey,
    );
    expect(theirs.body.leafIndex).toBe(0); // the other organization has its own log
    expect((await srv.request('GET', `/api/v1/events/${mine.body.id}`, undefined, otherOrgKey)).status).toBe(
      404,
    );
    const page = await srv.request('GET', '/api/v1/events?patientIds=shared-patient', undefined, otherOrgKey);
    expect(page.body.items.map((e: { id: string }) => e.id)).toEqual([theirs.body.id]);
    const cp = await srv.request('GET', '/api/v1/ledger/checkpoint', undefined, otherOrgKey);
    expect(cp.body.origin).toMatch(/^test\.audit\//);
    expect(cp.body.origin).not.toContain(srv.organizationId);
  });

  it('ignores an organizationId in the body instead of trusting it', async () => {
    const res = await srv.request('POST', '/api/v1/events', {
      action: 'tenant.spoof',
      status: 'success',
      organizationId: 'x',
    });
    expect(res.status).toBe(400);
    expect(res.body.error.issues).toEqual([{ path: 'organizationId', message: 'unknown field' }]);
  });

  it('creates, lists and revokes keys; a revoked key stops working; a key cannot revoke itself', async () => {
    const created = await srv.client().apiKeys.create.mutate({ name: 'temp', role: 'producer' });
    expect(created.key).toMatch(/^sak_/);
    const { keys } = await srv.client().apiKeys.list.query();
    expect(keys.find((k) => k.id === created.id)).toMatchObject({
      name: 'temp',
      role: 'producer',
      revokedAt: null,
    });
    expect(JSON.stringify(keys)).not.toContain(created.key);
    expect(
      (await srv.request('POST', '/api/v1/events', { action: 'a.b', status: 'success' }, created.key)).status,
    ).toBe(201);
    expect((await srv.request('DELETE', `/api/v1/api-keys/${created.id}`)).status).toBe(200);
    expect(
      (await srv.request('POST', '/api/v1/events', { action: 'a.b', status: 'success' }, created.key)).status,
    ).toBe(401);
    expect((await srv.request('DELETE', `/api/v1/api-keys/${created.id}`)).status).toBe(404);
    const self = (await srv.client().apiKeys.list.query()).keys.find((k) => k.name === 'bootstrap admin')!;
    expect((await srv.request('DELETE', `/api/v1/api-keys/${self.id}`)).status).toBe(409);
  });
});
