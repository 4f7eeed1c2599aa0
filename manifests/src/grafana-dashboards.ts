// The Grafana dashboards of the audit server, built with Grafana's typed Foundation SDK
// (@grafana/grafana-foundation-sdk) rather than hand-written JSON, so a misspelt field is a
// compile error. Every query reads only metrics the server registers
// (server/src/observability/metric-names.ts, server/src/alerts/metrics.ts); a test parses each
// with promtool. Windows are fixed ([5m]) so the expressions are plain PromQL. Internal to the
// library: ObservabilityStack wraps them into ConfigMaps for the Grafana sidecar.
import { DashboardBuilder, DatasourceVariableBuilder, RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanelBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesPanelBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

/** Every panel queries the Prometheus the viewer picks (a `datasource` variable). */
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

/** One query of a panel: PromQL and its legend. */
export interface PanelQuery {
  readonly expr: string;
  readonly legend: string;
}

/** A panel before it is built: what it shows, in which unit, from which queries. */
interface PanelSpec {
  readonly title: string;
  readonly description: string;
  readonly unit: string;
  readonly queries: readonly PanelQuery[];
  /** A single current value instead of a time series. */
  readonly stat?: boolean;
}

const q = (expr: string, legend: string): PanelQuery => ({ expr, legend });

/** The rows of the overview dashboard, in order. */
const ROWS: ReadonlyArray<{ readonly title: string; readonly panels: readonly PanelSpec[] }> = [
  {
    title: 'Ingest',
    panels: [
      { title: 'Events ingested', description: 'Events appended per second, and events refused.', unit: 'ops', queries: [q('sum(rate(audit_events_ingested_total[5m]))', 'ingested'), q('sum(rate(audit_events_rejected_total[5m]))', 'rejected')] },
      {
        title: 'Append latency',
        description: 'POST /api/v1/events latency (acknowledged after COMMIT), 50th and 99th percentile.',
        unit: 's',
        queries: [
          q('histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{method="POST", route=~"/api/v1/events.*"}[5m])))', 'p50'),
          q('histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{method="POST", route=~"/api/v1/events.*"}[5m])))', 'p99'),
        ],
      },
      { title: 'Group commit size', description: 'Events per group-commit transaction, 99th percentile.', unit: 'short', queries: [q('histogram_quantile(0.99, sum by (le) (rate(audit_ingest_batch_size_bucket[5m])))', 'p99')] },
    ],
  },
  {
    title: 'Errors',
    panels: [
      { title: 'HTTP errors', description: 'Responses per second with a 5xx status, by route.', unit: 'reqps', queries: [q('sum by (route) (rate(http_requests_total{status=~"5.."}[5m]))', '{{route}}')] },
      { title: 'Error ratio', description: 'Share of responses with a 5xx status.', unit: 'percentunit', queries: [q('sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))', '5xx')] },
    ],
  },
  {
    title: 'Database',
    panels: [
      {
        title: 'Query duration',
        description: 'PostgreSQL query duration, 50th and 99th percentile (absent on PGlite).',
        unit: 's',
        queries: [
          q('histogram_quantile(0.5, sum by (le) (rate(audit_db_query_duration_seconds_bucket[5m])))', 'p50'),
          q('histogram_quantile(0.99, sum by (le) (rate(audit_db_query_duration_seconds_bucket[5m])))', 'p99'),
        ],
      },
      {
        title: 'Pool usage',
        description: 'Active connections against the pool limit, and callers waiting for one (saturation).',
        unit: 'short',
        queries: [q('sum(audit_db_pool_connections{state="active"})', 'active'), q('sum(audit_db_pool_max_connections)', 'limit'), q('sum(audit_db_pool_waiting_clients)', 'waiting')],
      },
      { title: 'Database reachable', description: 'Replicas whose last readiness check reached PostgreSQL.', unit: 'short', stat: true, queries: [q('sum(audit_database_up)', 'up')] },
    ],
  },
  {
    title: 'Cache and queue',
    panels: [
      {
        title: 'Cache hit ratio',
        description: 'Read-cache hits over look-ups, by cache.',
        unit: 'percentunit',
        queries: [q('sum by (cache) (rate(audit_cache_requests_total{result="hit"}[5m])) / sum by (cache) (rate(audit_cache_requests_total[5m]))', '{{cache}}')],
      },
      { title: 'Queue length', description: 'Jobs waiting or delayed, by queue (every replica reports the shared queues: max, not sum).', unit: 'short', queries: [q('max by (queue) (audit_job_queue_depth{state=~"waiting|delayed"})', '{{queue}}')] },
      { title: 'Job failures', description: 'Failed job attempts per second, by queue and outcome (retry, failed).', unit: 'ops', queries: [q('sum by (queue, outcome) (rate(audit_job_failures_total[5m]))', '{{queue}} {{outcome}}')] },
    ],
  },
  {
    title: 'Ledger',
    panels: [
      { title: 'Tree size', description: 'Leaves in each organization\'s log.', unit: 'short', queries: [q('max by (organization) (audit_ledger_tree_size)', '{{organization}}')] },
      { title: 'Since the last passed self-audit', description: 'Seconds since the worker\'s self-audit last verified every log.', unit: 's', stat: true, queries: [q('time() - max(audit_ledger_last_verification_success_timestamp_seconds)', 'age')] },
      { title: 'Self-audit failures', description: 'Verification failures of the self-audit in the last hour (any is a tamper signal).', unit: 'short', stat: true, queries: [q('sum(increase(audit_ledger_verification_failures_total[1h]))', 'failures')] },
    ],
  },
  {
    title: 'Alerts',
    panels: [
      { title: 'Security alerts raised', description: 'Alerts raised by the detectors on ingest, by detector.', unit: 'short', queries: [q('sum by (detector) (increase(audit_alerts_raised_total[1h]))', '{{detector}}')] },
    ],
  },
];

/** The panels of the overview dashboard, flattened (for tests). */
export function dashboardQueries(): PanelQuery[] {
  return ROWS.flatMap((r) => r.panels.flatMap((p) => p.queries));
}

function panel(spec: PanelSpec): StatPanelBuilder | TimeseriesPanelBuilder {
  const builder = spec.stat ? new StatPanelBuilder() : new TimeseriesPanelBuilder();
  builder.title(spec.title).description(spec.description).unit(spec.unit).datasource(DATASOURCE).height(8).span(8);
  spec.queries.forEach((query, i) => {
    builder.withTarget(new DataqueryBuilder().datasource(DATASOURCE).expr(query.expr).legendFormat(query.legend).refId(String.fromCharCode(65 + i)));
  });
  return builder;
}

/** The overview dashboard of the audit server (uid `smedrec-audit-overview`). */
export function overviewDashboard(): Dashboard {
  const builder = new DashboardBuilder('SMEDREC Audit')
    .uid('smedrec-audit-overview')
    .description('Ingest, errors, database, cache and queue, ledger self-audit and security alerts of the audit server.')
    .tags(['smedrec-audit'])
    .refresh('30s')
    .time({ from: 'now-6h', to: 'now' })
    .timezone('utc')
    .readonly()
    .withVariable(new DatasourceVariableBuilder('datasource').label('Prometheus').type('prometheus'));
  for (const row of ROWS) {
    builder.withRow(new RowBuilder(row.title));
    for (const spec of row.panels) builder.withPanel(panel(spec));
  }
  return builder.build();
}
