/**
 * The alerting path end to end with the real binaries (docs/operations.md "Alert routing"): a real
 * Prometheus scrapes a real audit server on PostgreSQL and evaluates the PrometheusRule's alerts;
 * a real Alertmanager, configured as prometheus-operator renders the AlertmanagerConfig, delivers
 * to a test webhook. Tampering with a stored event makes the server's self-audit fail, and
 * `AuditLedgerVerificationFailed` must reach the critical webhook with its namespace and severity.
 */
import * as http from 'node:http';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { Testing } from 'cdk8s';
import { AlertRouting } from '../src/alert-routing';
import { auditServerAlertRules } from '../src/observability-stack';
import { alertmanagerYaml } from './support/alertmanager';
import { createThrowawayDatabase, dropDatabase, fetchOnce, postgresForTests, withClient } from '../../server/test/deploy/support/services';
import type { ThrowawayDatabase } from '../../server/test/deploy/support/services';
import { newApiKey, startAuditServer } from '../../server/test/deploy/support/server';
import { freePort, makeTempDir, requireBinary, startProcess, stopAll, waitFor } from '../../server/test/deploy/support/tools';

jest.setTimeout(600_000);

const NAMESPACE = 'smedrec-audit';
const pg = postgresForTests();
const describeWithPostgres = pg.url === undefined ? describe.skip : describe;

interface Delivery {
  path: string;
  body: { alerts: { status: string; labels: Record<string, string> }[] };
}

describeWithPostgres('Prometheus → Alertmanager → webhook with a real server', () => {
  const temp = makeTempDir('alert-pipeline');
  const received: Delivery[] = [];
  let webhook: http.Server;
  let db: ThrowawayDatabase;
  let promUrl: string;
  let serverPort: number;
  let apiKey: string;

  const query = async (promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const port = Number(new URL(promUrl).port);
    const r = await fetchOnce({ port, path: `/api/v1/query?query=${encodeURIComponent(promql)}` });
    if (r.status !== 200) throw new Error(`prometheus query ${r.status}: ${r.body}`);
    return (JSON.parse(r.body) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
  };

  beforeAll(async () => {
    const prometheus = requireBinary('prometheus');
    // Debian names the binary prometheus-alertmanager.
    const alertmanager = requireBinary('prometheus-alertmanager');

    webhook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body: JSON.parse(body) as Delivery['body'] });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    const hookPort = (webhook.address() as { port: number }).port;

    // Alertmanager, configured as prometheus-operator renders the production AlertmanagerConfig.
    const chart = Testing.chart();
    const secret = (key: string) => ({ secretName: 'alert-receivers', key });
    new AlertRouting(chart, 'AlertRouting', {
      namespace: NAMESPACE,
      groupWaitSeconds: 0,
      critical: { webhookUrlSecret: secret('critical-webhook-url') },
      warning: { webhookUrlSecret: secret('warning-webhook-url') },
    });
    writeFileSync(
      join(temp.dir, 'alertmanager.yml'),
      alertmanagerYaml(Testing.synth(chart)[0], {
        'alert-receivers/critical-webhook-url': `http://127.0.0.1:${hookPort}/critical`,
        'alert-receivers/warning-webhook-url': `http://127.0.0.1:${hookPort}/warning`,
      }),
    );
    const amPort = await freePort();
    startProcess('alertmanager', alertmanager, [
      `--config.file=${join(temp.dir, 'alertmanager.yml')}`,
      `--storage.path=${join(temp.dir, 'alertmanager')}`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      '--cluster.listen-address=',
    ], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });

    // The audit server on a throwaway database, self-auditing every half second.
    db = await createThrowawayDatabase(pg.url!, 'alerts');
    apiKey = newApiKey();
    serverPort = await freePort();
    await startAuditServer('alerting-server', serverPort, {
      NODE_ENV: 'test',
      DATABASE_URL: db.url,
      AUDIT_BOOTSTRAP_API_KEY: apiKey,
      AUDIT_DATA_DIR: join(temp.dir, 'server-data'),
      AUDIT_SELF_AUDIT_INTERVAL_MS: '500',
      RATE_LIMIT_PER_MINUTE: '0',
    });

    // Prometheus scrapes it every second with the labels the ServiceMonitor gives the api pods and
    // evaluates the PrometheusRule's alerts every second.
    const rules = auditServerAlertRules(NAMESPACE, 'audit-server').map((r) => ({
      alert: r.alert,
      expr: r.expr,
      for: r.forDuration,
      labels: { severity: r.severity },
      annotations: { summary: r.summary },
    }));
    writeFileSync(join(temp.dir, 'rules.yml'), stringify({ groups: [{ name: 'smedrec-audit.rules', interval: '1s', rules }] }));
    writeFileSync(
      join(temp.dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [join(temp.dir, 'rules.yml')],
        alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
        scrape_configs: [
          {
            job_name: 'audit-server',
            static_configs: [{ targets: [`127.0.0.1:${serverPort}`], labels: { namespace: NAMESPACE, service: 'audit-server', pod: 'audit-server-0' } }],
          },
        ],
      }),
    );
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    startProcess('prometheus', prometheus, [
      `--config.file=${join(temp.dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(temp.dir, 'prometheus')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  });

  afterAll(async () => {
    await stopAll();
    await new Promise<void>((resolve) => (webhook ? webhook.close(() => resolve()) : resolve()));
    if (db) await dropDatabase(pg.url!, db.name).catch(() => undefined);
    temp.remove();
  });

  it('delivers AuditLedgerVerificationFailed to the critical webhook after a stored event is changed', async () => {
    for (let i = 0; i < 8; i++) {
      const r = await fetchOnce({
        port: serverPort,
        path: '/api/v1/events',
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ action: 'record.read', status: 'success', principalId: `user-${i}` }),
      });
      expect(r.status).toBe(201);
    }
    // A clean self-audit first, scraped twice with no failure counted: increase() needs a baseline.
    await waitFor('two clean scrapes after a successful self-audit', async () => {
      const ok = await query(`audit_ledger_last_verification_success_timestamp_seconds{namespace="${NAMESPACE}"} > 0`);
      const samples = await query(`count_over_time(audit_ledger_verification_failures_total{namespace="${NAMESPACE}"}[1m])`);
      const failures = await query(`max(audit_ledger_verification_failures_total{namespace="${NAMESPACE}"})`);
      return ok.length === 1 && Number(samples[0]?.value[1] ?? 0) >= 2 && failures[0]?.value[1] === '0' ? true : undefined;
    }, { attempts: 600, intervalMs: 500 });
    expect(received.filter((d) => d.path === '/critical')).toEqual([]);

    // The attacker: a superuser bypassing the append-only triggers.
    await withClient(db.url, async (c) => {
      await c.query('SET session_replication_role = replica');
      await c.query(`UPDATE events SET principal_id = 'mallory' WHERE leaf_index = 3`);
    });

    const delivery = await waitFor('the critical webhook to receive the alert', () =>
      received.find((d) => d.path === '/critical' && d.body.alerts.some((a) => a.labels.alertname === 'AuditLedgerVerificationFailed')),
      { attempts: 1500, intervalMs: 200 },
    );
    const alert = delivery.body.alerts.find((a) => a.labels.alertname === 'AuditLedgerVerificationFailed')!;
    expect(alert.status).toBe('firing');
    expect(alert.labels).toMatchObject({ namespace: NAMESPACE, severity: 'critical' });
    expect(received.filter((d) => d.path === '/warning').flatMap((d) => d.body.alerts.map((a) => a.labels.alertname))).not.toContain('AuditLedgerVerificationFailed');
  });
});
