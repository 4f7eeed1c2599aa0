/**
 * Redis Sentinel failover under load: a real group (one primary, two replicas, three sentinels,
 * passwords on data nodes and sentinels, noeviction) and a real server configured with
 * REDIS_SENTINELS. While clients ingest through the Redis-backed rate limiter and read through the
 * Redis cache, and a delayed BullMQ job waits in the queue, the primary is SIGKILLed. The sentinels
 * promote a replica; the server must follow it: requests keep being answered (no 500), appends
 * and rate-limited traffic work after the failover, and the queued job runs.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { generateSignerKey } from '../../src/ledger';
import { createLogger } from '../../src/observability/logger';
import { startRuntime, type Runtime } from '../../src/runtime';
import { waitFor } from '../deploy/support/tools';
import { TEST_ADMIN_KEY } from '../helpers/server';
import { startSentinelGroup, type SentinelGroup } from './support/redis-sentinel';

jest.setTimeout(600_000);

describe('Redis Sentinel failover (private group)', () => {
  let group: SentinelGroup;
  let runtime: Runtime | undefined;
  let dataDir: string;

  beforeAll(async () => {
    group = await startSentinelGroup('sentinel');
    dataDir = mkdtempSync(join(tmpdir(), 'audit-sentinel-'));
    const config = loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      AUDIT_DATA_DIR: dataDir,
      AUDIT_SIGNING_KEY: generateSignerKey('sentinel.audit').signerKey,
      AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
      AUDIT_LOG_ORIGIN: 'sentinel.audit',
      // The host of REDIS_URL is not used: the sentinels name the primary.
      REDIS_URL: `redis://:${group.password}@unused.invalid:6379/0`,
      REDIS_SENTINELS: group.sentinels.join(','),
      REDIS_SENTINEL_MASTER: group.masterName,
      REDIS_SENTINEL_PASSWORD: group.sentinelPassword,
      RATE_LIMIT_PER_MINUTE: '100000',
      CACHE_KEY_PREFIX: `sentinel:${randomBytes(4).toString('hex')}:`,
      JOBS_KEY_PREFIX: `sentinel-jobs-${randomBytes(4).toString('hex')}`,
    });
    runtime = await startRuntime(config, createLogger('silent'));
  });

  afterAll(async () => {
    await runtime?.close();
    await group?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps answering through a primary crash and follows the promoted replica; a queued job survives', async () => {
    const rt = runtime!;
    const first = group.primaryPort();
    expect(first).toBe(group.nodePorts[0]);

    // A job queued before the crash, due after it.
    const ran: string[] = [];
    rt.jobs.define<{ token: string }>('ops-sentinel-probe', async (data) => {
      ran.push(data.token);
      return Promise.resolve();
    });
    const token = randomBytes(6).toString('hex');
    await rt.jobs.enqueue('ops-sentinel-probe', { token }, { delayMs: 4_000 });
    // Replication is asynchronous: the crash must not come before the replicas hold the job.
    await waitFor('the replicas to hold the queued job', () =>
      group.nodePorts.slice(1).every((port) => Number(group.cli(port, 'dbsize')) === Number(group.cli(first, 'dbsize'))) ? true : undefined,
    );

    const statuses: number[] = [];
    const rateLimited: boolean[] = [];
    let acked = 0;
    let stop = false;
    const client = async (c: number) => {
      for (let i = 0; !stop; i++) {
        const res = await fetch(`${rt.url}/api/v1/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ action: 'sentinel.ingest', status: 'success', correlationId: `c${c}-${i}` }),
        });
        statuses.push(res.status);
        // The limiter answered from Redis (or its local fallback): the headers are always there.
        rateLimited.push(res.headers.get('ratelimit-limit') === '100000');
        if (res.status === 201) acked++;
        const read = await fetch(`${rt.url}/api/v1/events?limit=3`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
        statuses.push(read.status);
      }
    };
    const clients = [client(0), client(1), client(2)];
    try {
      await waitFor('steady ingest', () => (acked >= 20 ? true : undefined), { intervalMs: 50, timeoutMs: 120_000 });
      await group.kill(first);
      await waitFor('the sentinels to promote a replica', () => {
        const now = group.primaryPort();
        return now !== first ? now : undefined;
      }, { intervalMs: 200, timeoutMs: 120_000 });
      const promoted = group.primaryPort();
      // The server talks to the new primary: it processes the server's commands.
      const commands = () => Number(/total_commands_processed:(\d+)/.exec(group.cli(promoted, 'info', 'stats'))?.[1] ?? 0);
      const commandsBefore = commands();
      const ackedAtPromotion = acked;
      await waitFor('appends to go on after the failover', () => (acked >= ackedAtPromotion + 20 ? true : undefined), { intervalMs: 50, timeoutMs: 120_000 });
      await waitFor('the server to use the promoted primary', () => (commands() > commandsBefore + 50 ? true : undefined), {
        intervalMs: 100,
        timeoutMs: 60_000,
      });
      await waitFor('the queued job to run', () => (ran.includes(token) ? true : undefined), { intervalMs: 100, timeoutMs: 120_000 });
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    expect(statuses.filter((s) => s !== 200 && s !== 201)).toEqual([]);
    expect(rateLimited.every(Boolean)).toBe(true);
    expect(ran).toEqual([token]);
  });
});
