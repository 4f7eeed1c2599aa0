/**
 * Two worker processes on one PostgreSQL and one Redis: every periodic task is a repeatable job
 * with one owner, so each interval's run happens exactly once across both. The self-audit runs
 * every 500 ms; the test reads the completed self-audit jobs from the queue and each worker's
 * /metrics: every completed job belongs to a distinct interval, and the runs both workers report
 * add up to exactly the completed jobs (a task run by per-process timers would run twice).
 */
import { randomBytes } from 'node:crypto';
import { BullMqJobQueue } from '../../src/jobs/bullmq-queue';
import { generateSignerKey } from '../../src/ledger';
import { createTestDatabase, testRedisUrl } from '../helpers/backends';
import { killServer, spawnServer, type ServerProcess } from '../helpers/process';
import { dropPrefix, waitFor } from './helpers';

jest.setTimeout(400_000);

const redis = testRedisUrl();
const skip = !process.env.TEST_DATABASE_URL ? 'TEST_DATABASE_URL is not set' : !redis ? 'TEST_REDIS_URL is not set' : null;

(skip ? describe.skip : describe)(`two workers on one Redis${skip ? ` [skipped: ${skip}]` : ''}`, () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const workers: ServerProcess[] = [];
  const prefix = `test:jobs:${randomBytes(6).toString('hex')}`;
  let queue: BullMqJobQueue;

  beforeAll(async () => {
    db = await createTestDatabase();
    const { signerKey } = generateSignerKey('workers.audit');
    const env = {
      AUDIT_ROLE: 'worker',
      DATABASE_URL: db.url,
      REDIS_URL: redis!,
      JOBS_KEY_PREFIX: prefix,
      CACHE_KEY_PREFIX: `${prefix}:cache:`,
      AUDIT_SIGNING_KEY: signerKey,
      AUDIT_LOG_ORIGIN: 'workers.audit',
      AUDIT_SELF_AUDIT_INTERVAL_MS: '500',
    };
    workers.push(...(await Promise.all([spawnServer(env), spawnServer(env)])));
    queue = new BullMqJobQueue(redis!, prefix);
    queue.define('self-audit', () => Promise.resolve());
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => killServer(w, 'SIGTERM')));
    await queue?.close();
    await db?.drop();
    await dropPrefix(redis!, prefix);
  });

  /** Completed self-audit runs each worker reports. */
  async function runsReported(w: ServerProcess): Promise<number> {
    const text = await (await fetch(`${w.url}/metrics`)).text();
    const m = /^audit_job_duration_seconds_count\{queue="self-audit",outcome="ok"\} (\d+)$/m.exec(text);
    return m ? Number(m[1]) : 0;
  }

  it('runs each interval of a periodic task once across both workers', async () => {
    await waitFor(async () => (await queue.counts())['self-audit']!.completed >= 8, 'eight self-audit runs', 300_000);
    // The runs both workers report equal the completed jobs: read the metrics, the queue, and the
    // metrics again until no run finished in between (a run is counted just before BullMQ marks
    // it completed, so a snapshot across that instant is read again).
    let seen = '';
    await waitFor(async () => {
      const before = (await Promise.all(workers.map(runsReported))).reduce((a, b) => a + b, 0);
      const completed = (await queue.counts())['self-audit']!.completed;
      const after = (await Promise.all(workers.map(runsReported))).reduce((a, b) => a + b, 0);
      seen = `${before} runs reported, ${completed} jobs completed`;
      return before === after && before === completed;
    }, `reported runs to equal completed jobs (last: ${seen})`, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}; last: ${seen}`);
    });
    // Both workers took part or not, but no interval ran twice: scheduler jobs are named after
    // their interval (repeat:<scheduler>:<interval start in ms>).
    const completed = await queue.list('self-audit', 'completed', 1000);
    const slots = completed.map((j) => /^repeat:[^:]+:(\d+)$/.exec(j.id)?.[1]);
    expect(slots.every((s) => s !== undefined)).toBe(true);
    expect(new Set(slots).size).toBe(completed.length);
  });
});
