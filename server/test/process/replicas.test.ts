/**
 * Three server processes append to one organization on one PostgreSQL at the same time: the
 * head-row lock keeps leaf indexes contiguous and unique, every receipt verifies, and the
 * checkpoints the clients saw all lie on one tree (no fork). SIGTERM draining is drain.test.ts.
 */
import { randomBytes } from 'node:crypto';
import {
  openCheckpoint,
  parseVerifierKey,
  verifyConsistency,
  verifyInclusion,
  generateSignerKey,
} from '../../src/ledger';
import { createTestDatabase, describePostgres, testRedisUrl } from '../helpers/backends';
import { getJson, killServer, postJson, spawnServer, type ServerProcess } from '../helpers/process';
import { TEST_ADMIN_KEY } from '../helpers/server';

jest.setTimeout(400_000);
const b = (s: string) => Buffer.from(s, 'base64');

describePostgres('several replicas on one PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const servers: ServerProcess[] = [];
  const { signerKey, verifierKey } = generateSignerKey('replicas.audit');
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase();
    const redis = testRedisUrl();
    env = {
      DATABASE_URL: db.url,
      AUDIT_SIGNING_KEY: signerKey,
      AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
      AUDIT_LOG_ORIGIN: 'replicas.audit',
      RATE_LIMIT_PER_MINUTE: '0',
      // Redis db 15 is shared by every test run: a cache key prefix of its own.
      ...(redis ? { REDIS_URL: redis, CACHE_KEY_PREFIX: `test:${randomBytes(6).toString('hex')}:` } : {}),
    };
    // Started together: migrations and bootstrap must each happen exactly once.
    servers.push(...(await Promise.all([spawnServer(env), spawnServer(env), spawnServer(env)])));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => killServer(s, 'SIGKILL')));
    await db?.drop();
  });

  it('never forks the tree when three processes append concurrently', async () => {
    const acks: Array<{
      leafIndex: number;
      leafHash: string;
      treeSize: number;
      checkpoint: string;
      inclusionProof: { hashes: string[] };
    }> = [];
    await Promise.all(
      servers.flatMap((s, si) =>
        Array.from({ length: 4 }, async (_, c) => {
          for (let i = 0; i < 25; i++) {
            if (i % 5 === 4) {
              const res = await postJson(`${s.url}/api/v1/events/bulk`, TEST_ADMIN_KEY, {
                events: Array.from({ length: 10 }, () => ({
                  action: 'replica.bulk',
                  status: 'success',
                  principalId: `s${si}`,
                })),
              });
              expect(res.status).toBe(200);
              for (const r of res.body.results) acks.push(r.receipt);
            } else {
              const res = await postJson(`${s.url}/api/v1/events`, TEST_ADMIN_KEY, {
                action: 'replica.single',
                status: 'success',
                principalId: `s${si}-c${c}`,
              });
              expect(res.status).toBe(201);
              acks.push(res.body);
            }
          }
        }),
      ),
    );
    const n = acks.length;
    expect(n).toBe(3 * 4 * (20 + 5 * 10));
    expect(acks.map((a) => a.leafIndex).sort((x, y) => x - y)).toEqual(
      Array.from({ length: n }, (_, i) => i),
    );

    const verifier = parseVerifierKey(verifierKey);
    const final = openCheckpoint(
      (await getJson(`${servers[0]!.url}/api/v1/ledger/checkpoint`, TEST_ADMIN_KEY)).body.note,
      [verifier],
    ).checkpoint;
    expect(final.size).toBe(n);
    const seen = new Map<number, Buffer>();
    for (const a of acks) {
      const cp = openCheckpoint(a.checkpoint, [verifier]).checkpoint;
      verifyInclusion(b(a.leafHash), a.leafIndex, cp.size, a.inclusionProof.hashes.map(b), cp.rootHash);
      // Two checkpoints of the same size from different replicas must agree: otherwise a fork.
      const prior = seen.get(cp.size);
      if (prior) expect(prior.equals(cp.rootHash)).toBe(true);
      seen.set(cp.size, cp.rootHash);
    }
    // Every checkpoint any client saw, from any replica, is a prefix of the final tree.
    for (const [size, root] of seen) {
      const s = servers[size % servers.length]!;
      const proof = await getJson(
        `${s.url}/api/v1/ledger/proofs/consistency?fromSize=${size}&toSize=${final.size}`,
        TEST_ADMIN_KEY,
      );
      verifyConsistency(size, final.size, proof.body.hashes.map(b), root, final.rootHash);
    }
  });
});
