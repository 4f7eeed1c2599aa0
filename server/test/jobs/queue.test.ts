/**
 * The job queue's contract, on both implementations: the in-process queue always, BullMQ on a
 * real Redis when TEST_REDIS_URL is set (each run under a key prefix of its own, removed after).
 * Retries back off exponentially, delayed jobs wait, an attempt past its timeout fails with its
 * signal aborted, exhausted jobs land in the failed set and can be retried and cleaned, a job id
 * absorbs duplicates while pending, and a schedule yields runs with distinct ids.
 */
import { randomBytes } from 'node:crypto';
import { MemoryJobQueue, type JobQueue } from '../../src/jobs';
import { BullMqJobQueue } from '../../src/jobs/bullmq-queue';
import { testRedisUrl } from '../helpers/backends';
import { dropPrefix, waitFor } from './helpers';

type Impl = 'memory' | 'bullmq';
const impls: Impl[] = ['memory', 'bullmq'];

for (const impl of impls) {
  const redis = testRedisUrl();
  const skip = impl === 'bullmq' && !redis ? 'TEST_REDIS_URL is not set' : null;
  (skip ? describe.skip : describe)(`job queue (${impl})${skip ? ` [skipped: ${skip}]` : ''}`, () => {
    let queue: JobQueue;
    let prefix: string;
    beforeEach(() => {
      prefix = `test:jobs:${randomBytes(6).toString('hex')}`;
      queue = impl === 'memory' ? new MemoryJobQueue() : new BullMqJobQueue(redis!, prefix);
    });
    afterEach(async () => {
      await queue.close(1000);
      if (impl === 'bullmq') await dropPrefix(redis!, prefix);
    });

    it('retries a failing job with exponential backoff until it succeeds', async () => {
      const at: number[] = [];
      queue.define<{ n: number }>(
        'flaky',
        async (data, ctx) => {
          at.push(Date.now());
          expect(data).toEqual({ n: 7 });
          expect(ctx.attempt).toBe(at.length);
          if (at.length < 3) throw new Error(`attempt ${at.length} fails`);
          return Promise.resolve();
        },
        { attempts: 5, backoffMs: 150 },
      );
      await queue.start();
      await queue.enqueue('flaky', { n: 7 });
      await waitFor(async () => (await queue.counts()).flaky!.completed === 1, 'the third attempt');
      expect(at).toHaveLength(3);
      // Backoff: at least 150 ms before the first retry, 300 ms before the second.
      expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(150 - 5);
      expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(300 - 5);
    });

    it('keeps an exhausted job in the failed set; retry runs it again and clean removes it', async () => {
      let healthy = false;
      let runs = 0;
      queue.define('fragile', async () => {
        runs++;
        if (!healthy) throw new Error('receiver down');
        return Promise.resolve();
      }, { attempts: 2, backoffMs: 20 });
      await queue.start();
      const id = await queue.enqueue('fragile', {});
      await waitFor(async () => (await queue.counts()).fragile!.failed === 1, 'the job to fail');
      expect(runs).toBe(2);
      const [failed] = await queue.list('fragile', 'failed');
      expect(failed).toMatchObject({ id, queue: 'fragile', state: 'failed', attemptsMade: 2, failedReason: 'receiver down' });

      healthy = true;
      expect(await queue.retry('fragile')).toBe(1);
      await waitFor(async () => (await queue.counts()).fragile!.completed === 1, 'the retried job to complete');
      expect((await queue.counts()).fragile!.failed).toBe(0);
      expect(await queue.clean('fragile', 'completed', 0)).toBe(1);
      expect((await queue.counts()).fragile!.completed).toBe(0);
    });

    it('runs a delayed job no earlier than its delay', async () => {
      let ranAt = 0;
      queue.define('later', () => Promise.resolve((ranAt = Date.now())));
      await queue.start();
      const from = Date.now();
      await queue.enqueue('later', null, { delayMs: 400 });
      expect((await queue.counts()).later!.delayed).toBe(1);
      await waitFor(() => ranAt > 0, 'the delayed job');
      expect(ranAt - from).toBeGreaterThanOrEqual(400 - 5);
    });

    it('fails an attempt that runs past its timeout and aborts its signal', async () => {
      let aborted = 0;
      queue.define('stuck', (_data, ctx) => {
        ctx.signal.addEventListener('abort', () => aborted++);
        return new Promise(() => undefined); // never settles: only the timeout ends it
      }, { attempts: 2, backoffMs: 10, timeoutMs: 200 });
      await queue.start();
      await queue.enqueue('stuck', null);
      await waitFor(async () => (await queue.counts()).stuck!.failed === 1, 'the timed-out job to fail');
      expect(aborted).toBe(2);
      expect((await queue.list('stuck', 'failed'))[0]!.failedReason).toBe('job timed out after 200 ms');
    });

    it('absorbs an enqueue with the id of a pending job, and accepts it again once that job finished', async () => {
      let runs = 0;
      queue.define('once', () => Promise.resolve(runs++));
      await queue.enqueue('once', null, { jobId: 'org-1', delayMs: 300 });
      await queue.enqueue('once', null, { jobId: 'org-1' });
      expect((await queue.counts()).once).toMatchObject({ waiting: 0, delayed: 1 });
      await queue.start();
      await waitFor(() => runs === 1, 'the first run');
      await waitFor(async () => (await queue.counts()).once!.completed === 1, 'completion');
      await queue.enqueue('once', null, { jobId: 'org-1' });
      await waitFor(() => runs === 2, 'the second run');
    });

    it('runs a scheduled task repeatedly, each run a job of its own', async () => {
      const ids: string[] = [];
      queue.define('tick', (_d, ctx) => Promise.resolve(ids.push(ctx.id)));
      await queue.schedule('tick', 150);
      await queue.start();
      await waitFor(() => ids.length >= 3, 'three runs');
      expect(new Set(ids).size).toBe(ids.length);
    });
  });
}
