/**
 * The job functions, served to an Inngest server at `/api/inngest` (only when
 * `INNGEST_SIGNING_KEY` is set; this module, and the SDK, are not even loaded otherwise). Each job
 * kind of the queue becomes one Inngest function with the same handler, triggered by the event
 * `audit/job.<name>` with the job's data as `event.data`, so an operator running an Inngest
 * server can trigger a job by hand and watch its runs there. The schedules stay with the queue:
 * Inngest gets no cron triggers, so a periodic task never runs twice per interval.
 */
import type { RequestHandler } from 'express';
import { Inngest, type InngestFunction, type Logger } from 'inngest';
import { serve } from 'inngest/express';
import { DEFAULT_JOB_OPTIONS, runAttempt, type JobQueue } from './queue';

/** How the Inngest endpoint is set up (INNGEST_*). */
export interface InngestOptions {
  /** Signs and verifies the requests between the Inngest server and this app. */
  signingKey: string;
  /** The Inngest server (self-hosted: `http://inngest:8288`); unset = Inngest Cloud. */
  baseUrl?: string;
  /** App id shown by Inngest. */
  appId?: string;
  /** Where the SDK logs (default: the console). */
  logger?: Logger;
}

/** The event name that triggers job `name`. */
export function inngestEventName(name: string): string {
  return `audit/job.${name}`;
}

/** The Inngest client and one function per job kind of `queue`. */
export function inngestFunctions(queue: JobQueue, options: InngestOptions): { client: Inngest; functions: InngestFunction.Any[] } {
  const client = new Inngest({ id: options.appId ?? 'smedrec-audit', signingKey: options.signingKey, ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}), ...(options.logger ? { logger: options.logger } : {}) });
  const functions = queue.names().map((name) => {
    const def = queue.definition(name);
    const limits = { ...DEFAULT_JOB_OPTIONS, ...def.options };
    const retries = Math.min(20, Math.max(0, limits.attempts - 1)) as 0;
    return client.createFunction({ id: name, name: `audit job ${name}`, retries, triggers: [{ event: inngestEventName(name) }] }, async ({ event, step, runId, attempt }) => {
      const data: unknown = (event as { data?: unknown }).data ?? null;
      await step.run(name, async () => {
        await runAttempt(def.handler, data as never, { id: runId, attempt: attempt + 1 }, limits.timeoutMs);
        return null;
      });
      return { job: name, ok: true };
    });
  });
  return { client, functions };
}

/** The Express handler of `/api/inngest` (registration, introspection, runs), signature-checked by the SDK. */
export function inngestHandler(queue: JobQueue, options: InngestOptions): RequestHandler {
  const { client, functions } = inngestFunctions(queue, options);
  return serve({ client, functions }) as RequestHandler;
}
