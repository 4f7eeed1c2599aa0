/**
 * Every declared metric name is registered (alerts in the manifests reference METRIC_NAMES), and
 * the tree-size gauge follows each organization's appends.
 */
import { METRIC_NAMES } from '../../src/observability/metric-names';
import { Metrics } from '../../src/observability/metrics';
import { startTestServer } from '../helpers/server';
import { bulkItems } from '../helpers/events';

describe('metrics', () => {
  it('registers every declared metric name', async () => {
    const registered = new Set((await new Metrics().registry.getMetricsAsJSON()).map((m) => m.name));
    expect(Object.values(METRIC_NAMES).filter((name) => !registered.has(name))).toEqual([]);
  });

  it('reports each organization\'s tree size after an append', async () => {
    const srv = await startTestServer('pglite');
    try {
      await srv.runtime.services.events.bulkCreate(srv.organizationId, bulkItems([1, 2, 3].map((i) => ({ action: 'record.read', status: 'success', principalId: `u${i}` }))));
      const res = await srv.request('GET', '/metrics', undefined, null);
      expect(res.status).toBe(200);
      expect(String(res.body)).toContain(`${METRIC_NAMES.ledgerTreeSize}{organization="${srv.organizationId}"} 3`);
    } finally {
      await srv.close();
    }
  }, 60_000);
});
