/**
 * An erasure interrupted between batches (here: a derived-copy hook fails, which rolls its batch
 * back, as a crash would) stays `running` with the progress of its committed batches; nothing is
 * half erased; once its lease has expired the worker's resumption finishes it, and every event is
 * reported to the hooks exactly once. Erasure hooks run inside each batch's transaction.
 */
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';
import { exportNdjson, verifyNdjson, waitForErasure } from './helpers';

jest.setTimeout(180_000);

const SUBJECT = 'patient-resume-0c4d';

describeEachBackend('erasure resumption on %s', (backend) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(backend, {
      PRIVACY_ERASURE_BATCH_SIZE: '5',
      PRIVACY_ERASURE_WAIT_MS: '0',
      PRIVACY_ERASURE_LEASE_MS: '1000',
      PRIVACY_RESUME_INTERVAL_MS: '0',
      INGEST_MAX_WAIT_MS: '0',
    });
    const events = Array.from({ length: 23 }, (_, i) => ({
      action: 'data.read',
      status: 'success',
      principalId: `dr-${i}`,
      patientId: SUBJECT,
      details: { i },
    }));
    expect((await srv.request('POST', '/api/v1/events/bulk', { events })).body.accepted).toBe(23);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('keeps committed batches, erases nothing by halves, and completes on resumption', async () => {
    const seen: string[] = [];
    let batches = 0;
    let failing = true;
    srv.runtime.services.privacy.erasures.onErased({
      inTransaction: async (batch, tx) => {
        // The hook's own statement runs on the batch's transaction.
        await tx.execute('SELECT 1');
        if (batch.eventIds.length === 0) return;
        batches++;
        if (failing && batches === 3) throw new Error('derived store unavailable');
        seen.push(...batch.eventIds);
      },
    });
    const res = await srv.request('POST', '/api/v1/privacy/erasures', {
      patientId: SUBJECT,
      reason: 'resume test',
    });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    await srv.runtime.services.privacy.erasures.drain();

    const partial = (await srv.request('GET', '/api/v1/privacy/erasures')).body.erasures.find(
      (e: { id: string }) => e.id === id,
    );
    expect(partial).toMatchObject({ state: 'running', eventsErased: 10, batches: 2 });
    const rows = (await srv.request('GET', '/api/v1/events?actions=data.read&limit=100')).body.items as Array<
      Record<string, unknown>
    >;
    const erased = rows.filter((e) => e.patientId === undefined);
    const intact = rows.filter((e) => e.patientId === SUBJECT);
    expect(erased).toHaveLength(10);
    expect(intact).toHaveLength(13);
    for (const e of erased) expect([e.principalId, e.details]).toEqual([undefined, undefined]);
    for (const e of intact) expect(e.principalId).toBeDefined();
    expect(verifyNdjson(await exportNdjson(srv), srv.verifierKey).ok).toBe(true);

    failing = false;
    // The worker's resumption takes the request over once the failed run's lease has expired.
    for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
      await srv.runtime.services.privacy.erasures.resumePending();
      const state = (await srv.request('GET', '/api/v1/privacy/erasures')).body.erasures.find(
        (e: { id: string }) => e.id === id,
      ).state;
      if (state === 'completed') break;
      await new Promise((r) => setTimeout(r, delay));
    }
    const done = await waitForErasure(srv, id);
    expect(done.eventsErased).toBe(23);
    expect(new Set(seen).size).toBe(23);
    expect(seen).toHaveLength(23);
    expect((await srv.request('GET', `/api/v1/events?patientIds=${SUBJECT}`)).body.items).toEqual([]);
    expect(verifyNdjson(await exportNdjson(srv), srv.verifierKey).ok).toBe(true);
  });
});
