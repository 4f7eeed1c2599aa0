/**
 * The `redis` services of both compose files under the real redis-server, started as compose
 * starts them (support/compose.ts): compose/redis.conf (development) and compose/redis.prod.conf
 * through compose/redis-start.sh with the password from a secret file (production). They demand
 * the password, never evict (queues must not lose jobs), persist with AOF every second, and both
 * the server's Redis driver (ioredis) and the audit server itself work with the password. The
 * production password appears in no process's command line or environment.
 */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { REPO_ROOT, freePort, makeTempDir, requireBinary, run, stopAll } from './support/tools';
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
  ['dev', undefined],
  ['prod', PROD_PASSWORD],
] as const)("the %s compose file's redis under redis-server", (file, password) => {
  const temp = makeTempDir(`redis-${file}`);
  let redis: RedisInstance;

  beforeAll(async () => {
    redis = await startRedis(file, temp.dir, password);
  }, 180_000);

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
    const server = await startAuditServer(`server-on-${file}-redis`, await freePort(), {
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
      // A graceful stop, however slow the machine is (SIGKILL only after a minute).
      expect(await server.process.stop(60_000)).toBe(0);
    }
  }, 300_000);

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

describe('the production redis password', () => {
  const temp = makeTempDir('redis-secret');
  let redis: RedisInstance;

  beforeAll(async () => {
    redis = await startRedis('prod', temp.dir, PROD_PASSWORD);
  }, 180_000);

  afterAll(async () => {
    await stopAll();
    temp.remove();
  });

  const pid = () => redis.process.child.pid!;

  it("is on no command line: not redis-server's, not any process's in `ps`", () => {
    const cmdline = readFileSync(`/proc/${pid()}/cmdline`, 'utf8').split('\0').join(' ');
    // The start script exec'ed redis-server in place: same process, now redis-server.
    expect(cmdline).toMatch(/^redis-server /);
    expect(cmdline).not.toContain(PROD_PASSWORD);
    const ps = run(requireBinary('ps', 'procps'), ['-eo', 'pid,args', '--no-headers']);
    expect(ps.status).toBe(0);
    expect(ps.stdout).toContain(String(pid()));
    expect(ps.stdout).not.toContain(PROD_PASSWORD);
  });

  it("is in no environment variable: not the container's (`docker inspect` shows them), not the process's", () => {
    expect(Object.values(redis.command.env).join('\n')).not.toContain(PROD_PASSWORD);
    expect(redis.command.argv.join(' ')).not.toContain(PROD_PASSWORD);
    expect(readFileSync(`/proc/${pid()}/environ`, 'utf8')).not.toContain(PROD_PASSWORD);
  });

  it('lives only in the secret file and a generated file on the tmpfs that only its owner can read', () => {
    const generated = readdirSync(redis.tmpDir).map((f) => join(redis.tmpDir, f));
    expect(generated).toHaveLength(1);
    expect(statSync(generated[0]!).mode & 0o777).toBe(0o600);
    expect(readFileSync(generated[0]!, 'utf8')).toContain(`requirepass ${PROD_PASSWORD}`);
  });
});

describe('compose/redis-start.sh refuses a password it cannot pass on safely', () => {
  const temp = makeTempDir('redis-start');
  const start = (password: string | null) => {
    const file = join(temp.dir, 'redis-password');
    if (password !== null) writeFileSync(file, password);
    return run('/bin/sh', [join(REPO_ROOT, 'compose', 'redis-start.sh'), '--port', '0'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        REDIS_PASSWORD_FILE: password === null ? join(temp.dir, 'missing') : file,
        REDIS_CONFIG: join(REPO_ROOT, 'compose', 'redis.prod.conf'),
        REDIS_RUNTIME_DIR: temp.dir,
      },
      timeoutMs: 10_000,
    });
  };
  afterAll(() => temp.remove());

  it.each([
    ['a missing file', null, /cannot read the password file/],
    ['an empty file', '', /is empty/],
    ['a blank', `${'a'.repeat(40)} b`, /only letters, digits and \. _ ~ -/],
    ['a quote', `${'a'.repeat(40)}"`, /only letters, digits and \. _ ~ -/],
    ['a short password', 'abc123', /shorter than 32 characters/],
  ])('%s: exit 1 with a clear message, redis-server never started', (_what, password, message) => {
    const result = start(password);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/Redis version|Server initialized/);
  });
});
