/**
 * The BullMQ queue while its Redis is unreachable: BullMQ itself waits for a connection without a
 * bound, which hung the server's start-up (scheduling), requests (a delivery kick), `/metrics`
 * (queue counts) and shutdown (a worker's close). Every producer call now fails with
 * JobQueueUnavailableError after a bound, close returns, and a worker started while Redis is down
 * schedules its periodic tasks and runs them once a Redis appears on the port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { BullMqJobQueue, JobQueueUnavailableError } from '../../src/jobs/bullmq-queue';
import { registerPeriodicTasks, schedulePeriodicTasks } from '../../src/jobs';
import { freePort } from '../helpers/process';
import { waitFor } from './helpers';

describe('the Redis job queue while Redis is unreachable', () => {
  let redisServer: ChildProcess | null = null;
  afterEach(async () => {
    if (redisServer && redisServer.exitCode === null) {
      const gone = new Promise((r) => redisServer!.once('exit', r));
      redisServer.kill('SIGTERM');
      await gone;
    }
    redisServer = null;
  });

  it('fails every producer call with JobQueueUnavailableError and closes', async () => {
    const port = await freePort(); // nothing listens there
    const queue = new BullMqJobQueue(`redis://127.0.0.1:${port}`, 'down', null, 200);
    queue.define('noop', () => Promise.resolve());
    await queue.start();
    await expect(queue.enqueue('noop', null)).rejects.toBeInstanceOf(JobQueueUnavailableError);
    await expect(queue.schedule('noop', 60_000)).rejects.toBeInstanceOf(JobQueueUnavailableError);
    await expect(queue.counts()).rejects.toThrow("the job queue's Redis did not answer within 200 ms");
    await expect(queue.list('noop', 'failed')).rejects.toBeInstanceOf(JobQueueUnavailableError);
    await expect(queue.retry('noop')).rejects.toBeInstanceOf(JobQueueUnavailableError);
    await expect(queue.clean('noop', 'failed', 0)).rejects.toBeInstanceOf(JobQueueUnavailableError);
    await queue.close(); // resolves: the test would time out otherwise
  });

  it('schedules periodic tasks once Redis appears, and runs them', async () => {
    const port = await freePort();
    const queue = new BullMqJobQueue(`redis://127.0.0.1:${port}`, 'late', null, 200);
    let runs = 0;
    registerPeriodicTasks(queue, [{ name: 'tick', everyMs: 200, run: () => Promise.resolve(++runs) }]);
    await queue.start();
    const failures: unknown[] = [];
    const stop = new AbortController();
    const scheduled = schedulePeriodicTasks(queue, [{ name: 'tick', everyMs: 200, run: () => Promise.resolve() }], {
      signal: stop.signal,
      retryMs: 50,
      maxRetryMs: 200,
      failed: (err) => failures.push(err),
    });
    await waitFor(() => failures.length >= 2, 'two failed scheduling attempts');
    expect(failures.every((f) => f instanceof JobQueueUnavailableError)).toBe(true);
    expect(runs).toBe(0);

    redisServer = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    expect(await scheduled).toBe(true);
    // The worker was created when the connection came up, and takes the scheduled runs.
    await waitFor(() => runs >= 2, 'two runs of the periodic task');
    stop.abort();
    await queue.close(1_000);
  });

  it('stops trying to schedule when aborted', async () => {
    const port = await freePort();
    const queue = new BullMqJobQueue(`redis://127.0.0.1:${port}`, 'abort', null, 100);
    registerPeriodicTasks(queue, [{ name: 'tick', everyMs: 1_000, run: () => Promise.resolve() }]);
    const stop = new AbortController();
    let failures = 0;
    const scheduled = schedulePeriodicTasks(queue, [{ name: 'tick', everyMs: 1_000, run: () => Promise.resolve() }], {
      signal: stop.signal,
      retryMs: 60_000,
      failed: () => void failures++,
    });
    await waitFor(() => failures === 1, 'the first failed attempt');
    stop.abort(); // during the 60 s wait: it ends at once
    expect(await scheduled).toBe(false);
    await queue.close();
  });
});
