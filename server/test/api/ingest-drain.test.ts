/**
 * Shutdown drains the append queues: a bulk request whose every item is invalid appends nothing
 * and leaves nothing behind, so close() (SIGTERM) finishes instead of waiting forever.
 */
import { startTestServer } from '../helpers/server';
import { bulkItems } from '../helpers/events';

it('closes after a bulk append of only invalid events', async () => {
  const srv = await startTestServer('pglite', { INGEST_MAX_WAIT_MS: '0' });
  let closed = false;
  try {
    const results = await srv.runtime.services.events.bulkCreate(srv.organizationId, bulkItems([{ status: 'success' }, { action: 'x' }]));
    expect(results.map((r) => r.ok)).toEqual([false, false]);
  } finally {
    const close = srv.close().then(() => (closed = true));
    // A deadline instead of hanging the suite: close() either finishes or the test fails.
    await Promise.race([close, new Promise((r) => setTimeout(r, 20_000).unref())]);
  }
  expect(closed).toBe(true);
}, 60_000);
