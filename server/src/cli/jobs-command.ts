/**
 * `audit-admin jobs list|retry|clean`: the job queues in Redis (BullMQ under JOBS_KEY_PREFIX).
 * The queues are found in Redis itself, so the CLI needs no list of job kinds. Without REDIS_URL
 * jobs live inside the server process and there is nothing here to act on (its /metrics shows
 * `audit_job_queue_depth`).
 */
import Redis from 'ioredis';
import type { Config } from '../config';
import { JOB_STATES, type JobState } from '../jobs';
import { BullMqJobQueue } from '../jobs/bullmq-queue';
import { redisConnectionOptions, redisEndpointOf, type RedisEndpoint } from '../cache/redis';

/** Flags of the jobs commands. */
export interface JobsFlags {
  queue?: string | undefined;
  state?: string | undefined;
  id?: string | undefined;
  'grace-seconds'?: string | undefined;
}

/** A usage mistake (exit 2). */
export class JobsUsageError extends Error {}

/** Names of the queues stored under `prefix` (BullMQ keeps a `<prefix>:<queue>:meta` hash per queue). */
async function queueNames(url: RedisEndpoint, prefix: string): Promise<string[]> {
  const r = new Redis({ ...redisConnectionOptions(url), maxRetriesPerRequest: 1 });
  try {
    const names = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*:meta`, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) names.add(k.slice(prefix.length + 1, -':meta'.length));
    } while (cursor !== '0');
    return [...names].sort();
  } finally {
    r.disconnect();
  }
}

/** Runs one jobs command; resolves with the exit status. */
export async function jobsCommand(config: Config, command: string | undefined, flags: JobsFlags, out: (s: string) => void): Promise<number> {
  if (!config.REDIS_URL) {
    process.stderr.write('audit-admin: without REDIS_URL jobs run inside the server process (in memory): there is no queue to act on from here; its /metrics shows audit_job_queue_depth\n');
    return 2;
  }
  const endpoint = redisEndpointOf(config)!;
  const names = await queueNames(endpoint, config.JOBS_KEY_PREFIX);
  const queue = new BullMqJobQueue(endpoint, config.JOBS_KEY_PREFIX);
  const pick = (required: boolean): string[] => {
    if (flags.queue === undefined) {
      if (required) throw new JobsUsageError(`--queue is required (one of: ${names.join(', ') || 'none yet'})`);
      return names;
    }
    if (!names.includes(flags.queue)) throw new JobsUsageError(`no queue ${flags.queue} under ${config.JOBS_KEY_PREFIX} (queues: ${names.join(', ') || 'none yet'})`);
    return [flags.queue];
  };
  try {
    for (const n of names) queue.define(n, () => Promise.resolve());
    if (command === 'list') {
      const selected = pick(false);
      if (flags.state === undefined) {
        const counts = await queue.counts();
        out(JSON.stringify(Object.fromEntries(selected.map((n) => [n, counts[n]])), null, 2));
        return 0;
      }
      if (!(JOB_STATES as readonly string[]).includes(flags.state)) throw new JobsUsageError(`--state must be one of ${JOB_STATES.join(', ')}`);
      const jobs = [];
      for (const n of selected) jobs.push(...(await queue.list(n, flags.state as JobState, 100)));
      out(JSON.stringify(jobs, null, 2));
      return 0;
    }
    if (command === 'retry') {
      const [name] = pick(true);
      out(JSON.stringify({ queue: name, retried: await queue.retry(name!, flags.id) }));
      return 0;
    }
    if (command === 'clean') {
      const [name] = pick(true);
      const state = flags.state ?? 'completed';
      if (state !== 'completed' && state !== 'failed') throw new JobsUsageError('--state must be completed or failed');
      const grace = Number(flags['grace-seconds'] ?? '0');
      if (!Number.isInteger(grace) || grace < 0) throw new JobsUsageError('--grace-seconds must be a whole number of seconds');
      out(JSON.stringify({ queue: name, state, removed: await queue.clean(name!, state, grace * 1000) }));
      return 0;
    }
    throw new JobsUsageError(`unknown command: jobs ${command ?? ''}`);
  } finally {
    await queue.close();
  }
}
