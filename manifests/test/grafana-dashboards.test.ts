/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON */
/**
 * The Grafana dashboards ObservabilityStack ships: a ConfigMap the Grafana sidecar loads, one
 * dashboard built with the Foundation SDK covering what operations watch, every panel's PromQL
 * accepted by the real promtool (as recording rules of a rule file: `promtool check rules` parses
 * each expression with Prometheus' own parser), and every metric it reads registered by a live
 * server metrics registry.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Testing } from 'cdk8s';
import { stringify } from 'yaml';
import { alertMetrics } from '../../server/src/alerts/metrics';
import { Metrics } from '../../server/src/observability/metrics';
import { AuditServer } from '../src/audit-server';
import { dashboardQueries } from '../src/grafana-dashboards';
import { ObservabilityStack } from '../src/observability-stack';
import { hasBinary, run } from './support/processes';

function dashboardConfigMap(): any {
  const chart = Testing.chart();
  const stack = new ObservabilityStack(chart, 'Observability');
  const server = new AuditServer(chart, 'AuditServer', { otlpCollector: stack.otlpPeer });
  stack.addPrometheusMonitoring(chart, server);
  return Testing.synth(chart).find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'audit-server-dashboard');
}

const configMap = dashboardConfigMap();
const dashboard = JSON.parse(configMap.data['smedrec-audit-overview.json']);
const panels: any[] = dashboard.panels.filter((p: any) => p.type !== 'row');
const exprs: string[] = panels.flatMap((p) => p.targets.map((t: any) => t.expr));

/** PromQL keywords and aggregation modifiers: not metric names. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset']);

/** Metric names an expression reads: identifiers that are neither functions, keywords, label names nor inside strings. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"[^"]*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\[[^\]]*\]/g, '');
  return [...stripped.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(?![a-zA-Z0-9_:]|\s*\()/g)]
    .map((m) => m[1]!)
    .filter((name) => !KEYWORDS.has(name) && !/^[0-9]/.test(name));
}

describe('Grafana dashboards', () => {
  it('are a ConfigMap the Grafana sidecar picks up, in the server namespace', () => {
    expect(configMap.metadata).toMatchObject({ namespace: 'smedrec-audit', labels: { grafana_dashboard: '1', 'app.kubernetes.io/part-of': 'smedrec-audit' } });
    expect(dashboard).toMatchObject({ uid: 'smedrec-audit-overview', title: 'SMEDREC Audit', editable: false });
  });

  it('cover ingest, errors, the database, cache, queue, the ledger self-audit and alerts', () => {
    expect(panels.map((p) => p.title)).toEqual([
      'Events ingested',
      'Append latency',
      'Group commit size',
      'HTTP errors',
      'Error ratio',
      'Query duration',
      'Pool usage',
      'Database reachable',
      'Cache hit ratio',
      'Queue length',
      'Job failures',
      'Tree size',
      'Since the last passed self-audit',
      'Self-audit failures',
      'Security alerts raised',
    ]);
    expect(dashboard.panels.filter((p: any) => p.type === 'row').map((p: any) => p.title)).toEqual(['Ingest', 'Errors', 'Database', 'Cache and queue', 'Ledger', 'Alerts']);
  });

  it('query the Prometheus the viewer picks, every panel and target', () => {
    expect(dashboard.templating.list).toEqual([expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' })]);
    for (const p of panels) {
      expect({ title: p.title, datasource: p.datasource }).toEqual({ title: p.title, datasource: { type: 'prometheus', uid: '${datasource}' } });
      expect(p.targets.length).toBeGreaterThan(0);
      for (const t of p.targets) expect(t.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
    expect(exprs).toEqual(dashboardQueries().map((q) => q.expr));
  });

  it('read only metrics a live server registry exposes (histograms through _bucket)', async () => {
    const metrics = new Metrics();
    alertMetrics(metrics.registry, () => undefined);
    const registered = await metrics.registry.getMetricsAsJSON();
    const exposed = new Set(registered.flatMap((m) => (String(m.type) === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name])));
    const used = [...new Set(exprs.flatMap(metricNames))].sort();
    expect(used).toEqual(expect.arrayContaining(['audit_events_ingested_total', 'audit_db_pool_waiting_clients', 'audit_alerts_raised_total', 'audit_job_queue_depth']));
    expect(used.filter((name) => !exposed.has(name))).toEqual([]);
    metrics.registry.clear();
  });

  it('finds metric names the way it claims (functions, keywords, labels and strings are not names)', () => {
    expect(metricNames('sum by (le, route) (rate(x_bucket{route=~"/a.*", le="1"}[5m])) / on (job) group_left y')).toEqual(['x_bucket', 'y']);
    expect(metricNames('time() - max(z)')).toEqual(['z']);
  });

  const describePromtool = hasBinary('promtool') ? describe : describe.skip;
  describePromtool('with promtool', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dashboards-'));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    /** A rule file with one recording rule per expression: promtool parses each with Prometheus' parser. */
    const check = (expressions: string[]) => {
      const file = path.join(dir, `rules-${expressions.length}.yml`);
      fs.writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: expressions.map((expr, i) => ({ record: `dashboard:panel_query_${i}`, expr })) }] }));
      return run('promtool', ['check', 'rules', file]);
    };

    it('parse every panel query', () => {
      const r = check(exprs);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`SUCCESS: ${exprs.length} rules found`);
    });

    it('and promtool does refuse a query that does not parse (the check is real)', () => {
      const r = check([...exprs, 'sum(rate(audit_events_ingested_total[5m])']);
      expect(r.status).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/parse error|unclosed left parenthesis/);
    });
  });
});
