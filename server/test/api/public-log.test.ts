/**
 * AUDIT_PUBLIC_LOG: verifiers and witnesses fetch an organization's latest checkpoint and the
 * verifier keys without an API key, rate limited per client address; off by default.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { openCheckpoint, parseVerifierKey } from '../../src/ledger';
import { backends } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

/** An anonymous GET from a client address of its own (the test is the trusted loopback proxy). */
async function anonymous(
  srv: TestServer,
  path: string,
  address: string,
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(srv.url + path, { headers: { 'x-forwarded-for': address } });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

const freshAddress = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;

describe.each(backends())('the public log on %s', (backend) => {
  describe('by default', () => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await startTestServer(backend);
    });
    afterAll(() => srv?.close());

    it('answers 401 to an anonymous checkpoint or keys request', async () => {
      expect(
        (
          await anonymous(
            srv,
            `/api/v1/ledger/checkpoint?organizationId=${srv.organizationId}`,
            freshAddress(),
          )
        ).status,
      ).toBe(401);
      expect((await anonymous(srv, '/api/v1/ledger/keys', freshAddress())).status).toBe(401);
    });
  });

  describe('with AUDIT_PUBLIC_LOG=true', () => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await startTestServer(backend, {
        AUDIT_PUBLIC_LOG: 'true',
        AUDIT_PUBLIC_LOG_RATE_PER_MINUTE: '3',
      });
      expect(
        (await srv.request('POST', '/api/v1/events', { action: 'data.read', status: 'success' })).status,
      ).toBe(201);
    });
    afterAll(() => srv?.close());

    it('serves the latest checkpoint and the keys without a key, and the note verifies with them', async () => {
      const address = freshAddress();
      const keys = await anonymous(srv, '/api/v1/ledger/keys', address);
      expect(keys.status).toBe(200);
      expect(keys.body.keys.map((k: { verifierKey: string }) => k.verifierKey)).toEqual([srv.verifierKey]);
      const cp = await anonymous(
        srv,
        `/api/v1/ledger/checkpoint?organizationId=${srv.organizationId}`,
        address,
      );
      expect(cp.status).toBe(200);
      const authed = await srv.request('GET', '/api/v1/ledger/checkpoint');
      expect(cp.body).toEqual(authed.body);
      expect(cp.body.treeSize).toBe(1);
      const opened = openCheckpoint(cp.body.note, [parseVerifierKey(keys.body.keys[0].verifierKey)]);
      expect(opened.checkpoint.size).toBe(1);
    });

    it('names the bad parameter, answers 404 for a log without checkpoints, and opens nothing else', async () => {
      const bad = await anonymous(srv, '/api/v1/ledger/checkpoint?organizationId=nope', freshAddress());
      expect(bad.status).toBe(400);
      expect(bad.body.error.issues[0].path).toBe('organizationId');
      const extra = await anonymous(
        srv,
        `/api/v1/ledger/checkpoint?organizationId=${srv.organizationId}&treeSize=1`,
        freshAddress(),
      );
      expect(extra.status).toBe(400);
      const unknown = await anonymous(
        srv,
        `/api/v1/ledger/checkpoint?organizationId=${randomUUID()}`,
        freshAddress(),
      );
      expect(unknown.status).toBe(404);
      for (const path of [
        '/api/v1/events',
        '/api/v1/ledger/leaves?start=0&end=1',
        '/api/v1/api-keys',
        `/api/v1/ledger/proofs/inclusion?leafIndex=0`,
      ]) {
        expect((await anonymous(srv, path, freshAddress())).status).toBe(401);
      }
      // With a key, the authenticated routes answer as before.
      expect((await srv.request('GET', '/api/v1/ledger/keys')).status).toBe(200);
    });

    it('limits each client address (429 with Retry-After), independently of other addresses', async () => {
      const address = freshAddress();
      const path = `/api/v1/ledger/checkpoint?organizationId=${srv.organizationId}`;
      // Three per minute; should a minute window turn mid-test, a few more requests still hit it.
      let limited: { status: number; headers: Headers } | null = null;
      for (let i = 0; i < 7 && !limited; i++) {
        const r = await anonymous(srv, path, address);
        if (r.status === 429) limited = r;
        else expect(r.status).toBe(200);
      }
      expect(limited).not.toBeNull();
      expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(limited!.headers.get('ratelimit-limit')).toBe('3');
      expect((await anonymous(srv, path, freshAddress())).status).toBe(200);
    });
  });
});
