/**
 * `/ready` fails while the Redis the queues live in may evict keys: a private redis-server (on a
 * port the kernel picked) starts with `maxmemory-policy allkeys-lru`, the server reports not
 * ready naming the policy, and turns ready once the policy is switched to noeviction.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import Redis from 'ioredis';
import { freePort } from '../helpers/process';
import { startTestServer } from '../helpers/server';
import { waitFor } from './helpers';

describe('/ready and the Redis eviction policy', () => {
  let redisServer: ChildProcess;
  let url: string;

  beforeAll(async () => {
    const port = await freePort();
    redisServer = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'allkeys-lru'], { stdio: 'ignore' });
    url = `redis://127.0.0.1:${port}/0`;
    await waitFor(async () => {
      const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        r.disconnect();
      }
    }, 'the private redis-server');
  });
  afterAll(async () => {
    if (redisServer.exitCode === null) {
      const gone = new Promise((r) => redisServer.once('exit', r));
      redisServer.kill('SIGTERM');
      await gone;
    }
  });

  it('is not ready under allkeys-lru and ready under noeviction', async () => {
    const srv = await startTestServer('pglite', { REDIS_URL: url, JOBS_KEY_PREFIX: 'test:ready', CACHE_KEY_PREFIX: 'test:ready:' });
    const admin = new Redis(url);
    try {
      let res = await srv.request('GET', '/ready', undefined, null);
      expect(res.status).toBe(503);
      expect(res.body.checks.redis).toBe('failing: maxmemory-policy is allkeys-lru; job queues need noeviction (evicted keys are lost jobs)');
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      res = await srv.request('GET', '/ready', undefined, null);
      expect([res.status, res.body.checks.redis]).toEqual([200, 'ok']);
    } finally {
      admin.disconnect();
      await srv.close();
    }
  });
});
