/**
 * The Inngest endpoint: each job kind is served as an Inngest function that runs the queue's own
 * handler (checked with the SDK's test engine, @inngest/test), `/api/inngest` answers only when
 * INNGEST_SIGNING_KEY is set, and a request without Inngest's signature is refused.
 */
import { createHmac } from 'node:crypto';
import { InngestTestEngine } from '@inngest/test';
import { canonicalize } from '../../src/ledger/jcs';
import { inngestEventName, inngestFunctions } from '../../src/jobs/inngest';
import { MemoryJobQueue } from '../../src/jobs';
import { createLogger } from '../../src/observability/logger';
import { startTestServer } from '../helpers/server';

const SIGNING_KEY = 'signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';

describe('Inngest functions', () => {
  it('runs the same handler as the queue, with the event data as the job data', async () => {
    const queue = new MemoryJobQueue();
    const seen: unknown[] = [];
    queue.define('retention', (data, ctx) => {
      seen.push({ data, attempt: ctx.attempt });
      return Promise.resolve();
    });
    queue.define('other', () => Promise.reject(new Error('not this one')));
    const { functions } = inngestFunctions(queue, { signingKey: SIGNING_KEY, logger: createLogger('silent') });
    expect(functions.map((f) => f.id())).toEqual(['retention', 'other']);

    const t = new InngestTestEngine({ function: functions[0]! });
    const { result, ctx } = await t.execute({ events: [{ name: inngestEventName('retention'), data: { organizationId: 'o-1' } }] });
    expect(result).toEqual({ job: 'retention', ok: true });
    expect(seen).toEqual([{ data: { organizationId: 'o-1' }, attempt: 1 }]);
    expect(ctx.step.run).toHaveBeenCalledWith('retention', expect.any(Function));
  });

  it('reports a failing handler as the run\'s error', async () => {
    const queue = new MemoryJobQueue();
    queue.define('broken', () => Promise.reject(new Error('receiver down')));
    const { functions } = inngestFunctions(queue, { signingKey: SIGNING_KEY, logger: createLogger('silent') });
    const t = new InngestTestEngine({ function: functions[0]! });
    const { error } = await t.execute({ events: [{ name: inngestEventName('broken'), data: {} }] });
    expect(String((error as Error | undefined)?.message ?? error)).toMatch(/receiver down/);
  });
});

describe('/api/inngest', () => {
  it('is not served without INNGEST_SIGNING_KEY', async () => {
    const srv = await startTestServer('pglite');
    try {
      expect((await srv.request('GET', '/api/inngest', undefined, null)).status).toBe(404);
    } finally {
      await srv.close();
    }
  });

  it('serves the job functions with INNGEST_SIGNING_KEY: a signed run request runs the job, an unsigned one is refused', async () => {
    const srv = await startTestServer('pglite', { INNGEST_SIGNING_KEY: SIGNING_KEY, NODE_ENV: 'production', AUTH_SECRET: 'x'.repeat(32) });
    try {
      const path = '/api/inngest?fnId=smedrec-audit-partition-upkeep&stepId=step';
      const body = { event: { name: inngestEventName('partition-upkeep'), data: {}, ts: Date.now() }, events: [], steps: {}, ctx: { run_id: '01JRUN', attempt: 0, stack: { stack: [], current: 0 } }, version: 2 };
      const unsigned = await srv.request('POST', path, body, null);
      expect(unsigned.status).toBe(401);
      // Inngest's request signature: t=<unix seconds>&s=hex(HMAC-SHA256(key without its prefix, canonical JSON body || t)).
      const t = String(Math.floor(Date.now() / 1000));
      const s = createHmac('sha256', SIGNING_KEY.replace(/^signkey-\w+-/, '')).update(canonicalize(body) + t).digest('hex');
      const signed = await srv.request('POST', path, body, null, { 'x-inngest-signature': `t=${t}&s=${s}` });
      // 206: the step ran here (the job's handler) and its outcome goes back to the Inngest server.
      expect(signed.status).toBe(206);
      expect(signed.body).toEqual([expect.objectContaining({ op: 'StepRun', name: 'partition-upkeep', data: null })]);
    } finally {
      await srv.close();
    }
  });
});
