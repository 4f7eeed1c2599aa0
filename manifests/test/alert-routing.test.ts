/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON and Alertmanager's API answers */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Testing } from 'cdk8s';
import { AlertRouting } from '../src/alert-routing';
import type { AlertRoutingProps } from '../src/alert-routing';
import { validateManifests } from '../src/validate';
import { alertmanagerYaml } from './support/alertmanager';
import { crdSchemaErrors } from './support/crd-schema';
import { freePort, hasBinary, run, start, stopStarted, waitUntil } from './support/processes';

const PROPS: AlertRoutingProps = {
  critical: { webhookUrlSecret: { secretName: 'alert-receivers', key: 'critical-webhook-url' }, pagerDutyRoutingKeySecret: { secretName: 'alert-receivers', key: 'pagerduty-routing-key' } },
  warning: {
    webhookUrlSecret: { secretName: 'alert-receivers', key: 'warning-webhook-url' },
    emailTo: ['oncall@example.org'],
    emailFrom: 'alertmanager@example.org',
    emailSmarthost: 'smtp.example.org:587',
    emailAuthUsername: 'alertmanager',
    emailAuthPasswordSecret: { secretName: 'alert-receivers', key: 'smtp-password' },
  },
};

function synth(props: AlertRoutingProps = PROPS): any[] {
  const chart = Testing.chart();
  new AlertRouting(chart, 'AlertRouting', props);
  return Testing.synth(chart);
}

describe('AlertRouting', () => {
  const objects = synth();
  const config = objects[0];

  it('matches the snapshot', () => {
    expect(objects).toMatchSnapshot();
  });

  it('routes critical alerts to their own receiver, everything else to the warning receiver', () => {
    expect(config.kind).toBe('AlertmanagerConfig');
    expect(config.spec.route.receiver).toBe('warning');
    expect(config.spec.route.routes).toEqual([{ matchers: [{ name: 'severity', value: 'critical', matchType: '=' }], receiver: 'critical' }]);
    expect(config.spec.receivers.map((r: any) => [r.name, Object.keys(r).filter((k) => k !== 'name').sort()])).toEqual([
      ['critical', ['pagerdutyConfigs', 'webhookConfigs']],
      ['warning', ['emailConfigs', 'webhookConfigs']],
    ]);
  });

  it('takes the webhook URL, the PagerDuty key and the SMTP password from Secrets, never inline', () => {
    const [critical, warning] = config.spec.receivers;
    expect(critical.webhookConfigs[0]).toEqual({ urlSecret: { name: 'alert-receivers', key: 'critical-webhook-url' }, sendResolved: true });
    expect(critical.pagerdutyConfigs[0].routingKey).toEqual({ name: 'alert-receivers', key: 'pagerduty-routing-key' });
    expect(warning.emailConfigs[0].authPassword).toEqual({ name: 'alert-receivers', key: 'smtp-password' });
    expect(JSON.stringify(config)).not.toMatch(/https?:\/\//);
  });

  it('inhibits the warnings of a namespace while a critical alert of the same namespace fires', () => {
    expect(config.spec.inhibitRules).toEqual([
      { sourceMatch: [{ name: 'severity', value: 'critical', matchType: '=' }], targetMatch: [{ name: 'severity', value: 'warning', matchType: '=' }], equal: ['namespace'] },
    ]);
  });

  it('validates against the AlertmanagerConfig CRD schema of prometheus-operator', () => {
    expect(crdSchemaErrors(config)).toEqual([]);
  });

  it('the CRD schema check catches a misspelt field', () => {
    const broken = { ...config, spec: { ...config.spec, route: { ...config.spec.route, reciever: 'x' } } };
    expect(crdSchemaErrors(broken)).toContain("/spec/route must NOT have additional properties 'reciever'");
  });

  it('passes the structural schema and every policy rule', () => {
    expect(validateManifests(objects)).toEqual([]);
  });

  it('fails when a receiver delivers nowhere', () => {
    expect(() => synth({ ...PROPS, warning: {} })).toThrow('invalid warning: no receiver configured (expected webhookUrlSecret, emailTo or pagerDutyRoutingKeySecret)');
  });

  it('fails when e-mail lacks its sender or server', () => {
    expect(() => synth({ ...PROPS, critical: { emailTo: ['a@example.org'] } })).toThrow('invalid critical: emailTo needs emailFrom and emailSmarthost');
  });

  it('fails when an e-mail recipient is not one address', () => {
    expect(() => synth({ ...PROPS, critical: { emailTo: ['a@example.org, b@example.org'], emailFrom: 'x@example.org', emailSmarthost: 'smtp:25' } })).toThrow(
      "invalid critical.emailTo: 'a@example.org, b@example.org' (expected one e-mail address per entry)",
    );
  });

  it('fails when the repeat interval is not a whole number of hours', () => {
    expect(() => synth({ ...PROPS, repeatIntervalHours: 0.5 })).toThrow('invalid repeatIntervalHours: 0.5 (expected an integer >= 1)');
  });
});

const SECRETS = {
  'alert-receivers/pagerduty-routing-key': 'test-routing-key',
  'alert-receivers/smtp-password': 'test-smtp-password',
};

const describeAmtool = hasBinary('amtool') ? describe : describe.skip;

describeAmtool('AlertRouting as prometheus-operator renders it, checked by amtool', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alert-routing-'));
    const yaml = alertmanagerYaml(synth()[0], { ...SECRETS, 'alert-receivers/critical-webhook-url': 'http://127.0.0.1:9/critical', 'alert-receivers/warning-webhook-url': 'http://127.0.0.1:9/warning' });
    fs.writeFileSync(path.join(dir, 'alertmanager.yml'), yaml);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const routesTo = (...labels: string[]) => {
    const r = run('amtool', ['config', 'routes', 'test', `--config.file=${path.join(dir, 'alertmanager.yml')}`, ...labels]);
    if (r.status !== 0) throw new Error(r.stderr);
    return r.stdout.trim();
  };

  it('is a valid Alertmanager configuration', () => {
    const r = run('amtool', ['check-config', path.join(dir, 'alertmanager.yml')]);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout).toContain('SUCCESS');
  });

  it('routes by severity inside the namespace and ignores other namespaces', () => {
    expect(routesTo('alertname=AuditLedgerVerificationFailed', 'namespace=smedrec-audit', 'severity=critical')).toBe('smedrec-audit/smedrec-audit-alerts/critical');
    expect(routesTo('alertname=AuditServerHighLatency', 'namespace=smedrec-audit', 'severity=warning')).toBe('smedrec-audit/smedrec-audit-alerts/warning');
    expect(routesTo('alertname=Unlabelled', 'namespace=smedrec-audit')).toBe('smedrec-audit/smedrec-audit-alerts/warning');
    expect(routesTo('alertname=AuditServerDown', 'namespace=other', 'severity=critical')).toBe('null');
  });
});

const alertmanagerBinary = ['prometheus-alertmanager', 'alertmanager'].find(hasBinary);
const describeAlertmanager = alertmanagerBinary && hasBinary('amtool') ? describe : describe.skip;

describeAlertmanager('AlertRouting in a real Alertmanager', () => {
  let dir: string;
  let url: string;
  let webhook: http.Server;
  const received: { path: string; body: any }[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alertmanager-'));
    webhook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body: JSON.parse(body) });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    const hookPort = (webhook.address() as { port: number }).port;
    const yaml = alertmanagerYaml(synth({ ...PROPS, groupWaitSeconds: 0 })[0], {
      ...SECRETS,
      'alert-receivers/critical-webhook-url': `http://127.0.0.1:${hookPort}/critical`,
      'alert-receivers/warning-webhook-url': `http://127.0.0.1:${hookPort}/warning`,
    })
      // No PagerDuty or SMTP here: keep only the webhooks of the rendered receivers.
      .replace(/^ {4}(pagerduty|email)_configs:\n( {6}.*\n)+/gm, '');
    fs.writeFileSync(path.join(dir, 'alertmanager.yml'), yaml);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    start(alertmanagerBinary!, [
      `--config.file=${path.join(dir, 'alertmanager.yml')}`,
      `--storage.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=warn',
    ], {});
    await waitUntil(() => run('amtool', ['config', 'show', `--alertmanager.url=${url}`]).status === 0, 300);
  });

  afterAll(async () => {
    await stopStarted();
    await new Promise<void>((resolve) => webhook.close(() => resolve()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const addAlert = (...labels: string[]) => {
    const r = run('amtool', ['alert', 'add', `--alertmanager.url=${url}`, ...labels]);
    if (r.status !== 0) throw new Error(r.stderr);
  };
  const alerts = (): any[] => JSON.parse(run('curl', ['-sf', `${url}/api/v2/alerts`]).stdout || '[]');

  it('delivers a warning to the warning webhook while nothing critical fires', async () => {
    addAlert('alertname=AuditServerHighLatency', 'namespace=smedrec-audit', 'severity=warning');
    await waitUntil(() => received.some((r) => r.path === '/warning'), 300);
    expect(received.find((r) => r.path === '/warning')!.body.alerts.map((a: any) => a.labels.alertname)).toEqual(['AuditServerHighLatency']);
  });

  it('delivers a critical alert to the critical webhook and inhibits the warnings of its namespace', async () => {
    addAlert('alertname=AuditDatabaseDown', 'namespace=smedrec-audit', 'severity=critical');
    addAlert('alertname=AuditServerHighErrorRate', 'namespace=smedrec-audit', 'severity=warning');
    await waitUntil(() => received.some((r) => r.path === '/critical'), 300);
    expect(received.find((r) => r.path === '/critical')!.body.alerts.map((a: any) => a.labels.alertname)).toEqual(['AuditDatabaseDown']);
    await waitUntil(() => alerts().filter((a) => a.labels.severity === 'warning' && a.status.inhibitedBy.length > 0).length === 2, 300);
    const inhibited = alerts().filter((a) => a.status.state === 'suppressed').map((a) => a.labels.alertname).sort();
    expect(inhibited).toEqual(['AuditServerHighErrorRate', 'AuditServerHighLatency']);
    expect(received.filter((r) => r.path === '/warning').flatMap((r) => r.body.alerts.map((a: any) => a.labels.alertname))).not.toContain('AuditServerHighErrorRate');
  });

  it('does not route alerts of another namespace to the audit receivers', async () => {
    addAlert('alertname=SomethingElse', 'namespace=other', 'severity=critical');
    await waitUntil(() => alerts().some((a) => a.labels.alertname === 'SomethingElse'), 300);
    const other = alerts().find((a) => a.labels.alertname === 'SomethingElse');
    expect(other.receivers.map((r: any) => r.name)).toEqual(['null']);
  });
});
