/**
 * compose/redis.conf and compose/redis.prod.conf under the real redis-server: they start, demand
 * the password, never evict (queues must not lose jobs), persist with AOF every second, and both
 * the server's Redis driver (ioredis) and the audit server itself work with the password.
 */
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort, makeTempDir, requireBinary, run, stopAll } from './support/tools';
import { fetchOnce, startRedis } from './support/services';
import type { RedisInstance } from './support/services';
import { newApiKey, startAuditServer } from './support/server';

jest.setTimeout(120_000);

const PROD_PASSWORD = 'prod-test-password-5f0c2a9e71d34b8b';

function cli(instance: RedisInstance, args: string[], withPassword = true): string {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  if (withPassword && instance.password !== undefined) env.REDISCLI_AUTH = instance.password;
  const result = run(
    requireBinary('redis-cli', 'redis-tools'),
    ['-h', '127.0.0.1', '-p', String(instance.port), ...args],
    {
      env,
      timeoutMs: 10_000,
    },
  );
  return `${result.stdout}${result.stderr}`.trim();
}

describe.each([
  ['redis.conf', undefined],
  ['redis.prod.conf', PROD_PASSWORD],
] as const)('compose/%s under redis-server', (confFile, password) => {
  const temp = makeTempDir(`redis-${confFile}`);
  let redis: RedisInstance;

  beforeAll(async () => {
    redis = await startRedis(confFile, temp.dir, password);
  }, 60_000);

  afterAll(async () => {
    await stopAll();
    temp.remove();
  });

  it('rejects commands without the password', () => {
    expect(redis.password).toBeDefined();
    expect(cli(redis, ['set', 'k', 'v'], false)).toContain('NOAUTH');
  });

  it('never evicts keys: maxmemory-policy is noeviction with a memory ceiling', () => {
    expect(cli(redis, ['config', 'get', 'maxmemory-policy'])).toBe('maxmemory-policy\nnoeviction');
    const maxmemory = Number(cli(redis, ['config', 'get', 'maxmemory']).split('\n')[1]);
    expect(maxmemory).toBeGreaterThan(0);
  });

  it('persists with an append-only file fsynced every second', () => {
    expect(cli(redis, ['config', 'get', 'appendonly'])).toBe('appendonly\nyes');
    expect(cli(redis, ['config', 'get', 'appendfsync'])).toBe('appendfsync\neverysec');
    expect(cli(redis, ['info', 'persistence'])).toMatch(/aof_enabled:1/);
  });

  it('answers OOM instead of evicting when full', () => {
    // Shrink the ceiling below current usage: with noeviction every write must now fail.
    const original = cli(redis, ['config', 'get', 'maxmemory']).split('\n')[1] ?? '0';
    expect(cli(redis, ['config', 'set', 'maxmemory', '1'])).toBe('OK');
    try {
      expect(cli(redis, ['set', 'queue:job', 'payload'])).toMatch(/OOM/);
      expect(cli(redis, ['lrange', 'bull:test:wait', '0', '-1'])).not.toMatch(/OOM/);
    } finally {
      expect(cli(redis, ['config', 'set', 'maxmemory', original])).toBe('OK');
    }
  });

  it('serves an ioredis client (the server driver) that authenticates through REDIS_URL', async () => {
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      await client.rpush('bull:test:wait', 'job-1', 'job-2');
      expect(await client.lrange('bull:test:wait', 0, -1)).toEqual(['job-1', 'job-2']);
    } finally {
      client.disconnect();
    }
  });

  it('serves the audit server itself: /ready checks Redis and rate-limit windows land in it', async () => {
    // The embedded database keeps this about Redis; REDIS_URL carries the password as compose does.
    const apiKey = newApiKey();
    const server = await startAuditServer(`server-on-${confFile}`, await freePort(), {
      NODE_ENV: 'test',
      AUDIT_DATA_DIR: join(temp.dir, 'server-data'),
      REDIS_URL: redis.url,
      AUDIT_BOOTSTRAP_API_KEY: apiKey,
    });
    try {
      const ready = await fetchOnce({ port: server.port, path: '/ready' });
      expect(JSON.parse(ready.body)).toEqual(
        expect.objectContaining({ checks: expect.objectContaining({ redis: 'ok' }) }),
      );
      const write = await fetchOnce({
        port: server.port,
        path: '/api/v1/events',
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ action: 'data.read', status: 'success' }),
      });
      expect(write.status).toBe(201);
      expect(cli(redis, ['--scan', '--pattern', 'audit:rl:*'])).toMatch(/^audit:rl:/m);
    } finally {
      expect(await server.process.stop()).toBe(0);
    }
  });

  it('rejects a wrong password', () => {
    // redis-cli rather than an ioredis client: a client whose AUTH failed keeps a handle open.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', REDISCLI_AUTH: 'wrong-password' };
    const result = run(
      requireBinary('redis-cli', 'redis-tools'),
      ['-h', '127.0.0.1', '-p', String(redis.port), 'ping'],
      {
        env,
        timeoutMs: 10_000,
      },
    );
    expect(`${result.stdout}${result.stderr}`).toMatch(/WRONGPASS|invalid username-password/i);
  });
});
