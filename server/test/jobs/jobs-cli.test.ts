/**
 * `audit-admin jobs list|retry|clean` against the queues in Redis: a job that exhausted its
 * attempts is listed with its reason, retried (a worker then completes it) and cleaned. Without
 * REDIS_URL the command says jobs live inside the server process.
 */
import { randomBytes } from 'node:crypto';
import { BullMqJobQueue } from '../../src/jobs/bullmq-queue';
import { testRedisUrl } from '../helpers/backends';
import { runAdminCli } from '../helpers/process';
import { dropPrefix, waitFor } from './helpers';


const cli = (args: string[], env: Record<string, string>) => runAdminCli(['jobs', ...args], env);

describe('audit-admin jobs without Redis', () => {
  it('says the queue lives inside the server process', async () => {
    const r = await cli(['list'], { AUDIT_DATA_DIR: '/nonexistent' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/without REDIS_URL jobs run inside the server process/);
  });
});

const redis = testRedisUrl();
(redis ? describe : describe.skip)(`audit-admin jobs on Redis${redis ? '' : ' [skipped: TEST_REDIS_URL is not set]'}`, () => {
  const prefix = `test:jobs:${randomBytes(6).toString('hex')}`;
  const env = { REDIS_URL: redis!, JOBS_KEY_PREFIX: prefix, AUDIT_DATA_DIR: '/nonexistent' };
  let queue: BullMqJobQueue;
  let healthy = false;
  let runs = 0;

  beforeAll(async () => {
    queue = new BullMqJobQueue(redis!, prefix);
    queue.define('delivery', () => {
      runs++;
      return healthy ? Promise.resolve() : Promise.reject(new Error('receiver down'));
    }, { attempts: 1 });
    await queue.start();
  });
  afterAll(async () => {
    await queue.close();
    await dropPrefix(redis!, prefix);
  });

  it('lists, retries and cleans a failed job', async () => {
    const id = await queue.enqueue('delivery', { destination: 'd-1' });
    await waitFor(async () => (await queue.counts()).delivery!.failed === 1, 'the job to fail');

    let r = await cli(['list'], env);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ delivery: expect.objectContaining({ failed: 1, waiting: 0 }) });
    r = await cli(['list', '--queue', 'delivery', '--state', 'failed'], env);
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ id, queue: 'delivery', state: 'failed', failedReason: 'receiver down' })]);

    healthy = true;
    r = await cli(['retry', '--queue', 'delivery'], env);
    expect([r.status, JSON.parse(r.stdout)]).toEqual([0, { queue: 'delivery', retried: 1 }]);
    await waitFor(async () => (await queue.counts()).delivery!.completed === 1, 'the retried job to complete');
    expect(runs).toBe(2);

    r = await cli(['clean', '--queue', 'delivery', '--state', 'completed'], env);
    expect([r.status, JSON.parse(r.stdout)]).toEqual([0, { queue: 'delivery', state: 'completed', removed: 1 }]);
    r = await cli(['retry', '--queue', 'nope'], env);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no queue nope/);
  });
});
