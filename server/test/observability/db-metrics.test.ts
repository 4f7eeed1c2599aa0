/**
 * Database metrics: every PostgreSQL query's duration by outcome, and the pool's connections,
 * waiting callers and size at scrape time. PGlite has no pool: no timings, no per-state series.
 */
import { openDatabase } from '../../src/db/client';
import type { Database } from '../../src/db/client';
import { METRIC_NAMES } from '../../src/observability/metric-names';
import { Metrics } from '../../src/observability/metrics';
import { createTestDatabase, describeEachBackend } from '../helpers/backends';

/** Value of one sample line `name{labels} value` in the exposition text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describeEachBackend('database metrics on %s', (backend) => {
  let database: Database;
  let metrics: Metrics;
  let drop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    metrics = new Metrics();
    let url: string | undefined;
    if (backend === 'postgres') {
      const created = await createTestDatabase();
      url = created.url;
      drop = created.drop;
    }
    database = await openDatabase({ url, poolMax: 1, observer: metrics.databaseObserver });
    metrics.observeDatabasePool(() => database.poolStats?.());
  });

  afterAll(async () => {
    await database.close();
    await drop?.();
    metrics.registry.clear();
  });

  if (backend === 'pglite') {
    it('reports no query timings and no pool (one in-process connection)', async () => {
      await database.ping();
      const text = await metrics.registry.metrics();
      expect(sample(text, `${METRIC_NAMES.dbQueryDurationSeconds}_count{outcome="ok"}`)).toBeUndefined();
      expect(sample(text, `${METRIC_NAMES.dbPoolConnections}{state="idle"}`)).toBeUndefined();
    });
    return;
  }

  it('times every query by outcome', async () => {
    await database.ping();
    const c = await database.connect();
    try {
      await expect(c.query('SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/);
    } finally {
      c.release();
    }
    const text = await metrics.registry.metrics();
    expect(sample(text, `${METRIC_NAMES.dbQueryDurationSeconds}_count{outcome="ok"}`)).toBeGreaterThanOrEqual(1);
    expect(sample(text, `${METRIC_NAMES.dbQueryDurationSeconds}_count{outcome="error"}`)).toBe(1);
  });

  it('shows a caller waiting while the only pooled connection is checked out', async () => {
    const held = await database.connect();
    const pending = database.ping();
    let text = await metrics.registry.metrics();
    expect(sample(text, METRIC_NAMES.dbPoolWaiting)).toBe(1);
    expect(sample(text, `${METRIC_NAMES.dbPoolConnections}{state="active"}`)).toBe(1);
    expect(sample(text, METRIC_NAMES.dbPoolMax)).toBe(1);
    held.release();
    await pending;
    text = await metrics.registry.metrics();
    expect(sample(text, METRIC_NAMES.dbPoolWaiting)).toBe(0);
    expect(sample(text, `${METRIC_NAMES.dbPoolConnections}{state="idle"}`)).toBe(1);
  });
});
