/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON and the promtool test file */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Testing } from 'cdk8s';
import { parse, stringify } from 'yaml';
import { AuditServer } from '../src/audit-server';
import { ObservabilityStack } from '../src/observability-stack';
import { crdSchemaErrors } from './support/crd-schema';
import { hasBinary, run } from './support/processes';

const TESTS = path.join(__dirname, '..', '..', 'ops', 'monitoring', 'alert-rules.test.yml');

/** The PrometheusRule the stack synthesizes for the audit server. */
function prometheusRule(): any {
  const chart = Testing.chart();
  const stack = new ObservabilityStack(chart, 'Observability');
  const server = new AuditServer(chart, 'AuditServer', { otlpCollector: stack.otlpPeer });
  stack.addPrometheusMonitoring(chart, server);
  return Testing.synth(chart).find((o) => o.kind === 'PrometheusRule');
}

describe('PrometheusRule of the audit server', () => {
  const rule = prometheusRule();
  const alerts: string[] = rule.spec.groups.flatMap((g: any) => g.rules.map((r: any) => r.alert));
  const tests: any[] = parse(fs.readFileSync(TESTS, 'utf8')).tests;

  it('validates against the PrometheusRule CRD schema of prometheus-operator', () => {
    expect(crdSchemaErrors(rule)).toEqual([]);
  });

  it('keeps the namespace label on every alert (prometheus-operator routes AlertmanagerConfigs by it)', () => {
    for (const r of rule.spec.groups.flatMap((g: any) => g.rules)) {
      expect({ alert: r.alert, keepsNamespace: /\b(by \([^)]*namespace|absent\()/.test(r.expr) }).toEqual({ alert: r.alert, keepsNamespace: true });
    }
  });

  it('has a promtool case where each alert fires and one where it stays quiet', () => {
    const cases = tests.flatMap((t) => t.alert_rule_test.map((c: any) => ({ alert: c.alertname as string, fires: c.exp_alerts.length > 0 })));
    for (const alert of alerts) {
      expect({ alert, fires: cases.some((c) => c.alert === alert && c.fires), quiet: cases.some((c) => c.alert === alert && !c.fires) }).toEqual({ alert, fires: true, quiet: true });
    }
    expect([...new Set(cases.map((c) => c.alert))].filter((a) => !alerts.includes(a))).toEqual([]);
  });

  const describePromtool = hasBinary('promtool') ? describe : describe.skip;
  describePromtool('with promtool', () => {
    let dir: string;
    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alert-rules-'));
      fs.writeFileSync(path.join(dir, 'rules.yml'), stringify({ groups: rule.spec.groups }));
      fs.copyFileSync(TESTS, path.join(dir, 'alert-rules.test.yml'));
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('passes promtool check rules', () => {
      const r = run('promtool', ['check', 'rules', path.join(dir, 'rules.yml')]);
      expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({ status: 0, out: expect.stringContaining(`SUCCESS: ${alerts.length} rules found`) });
    });

    it('passes promtool test rules (each alert fires just past its threshold, not at or below it)', () => {
      const r = run('promtool', ['test', 'rules', path.join(dir, 'alert-rules.test.yml')]);
      expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
    });

    it('promtool test rules fails when a threshold moves', () => {
      const moved = { groups: rule.spec.groups.map((g: any) => ({ ...g, rules: g.rules.map((r: any) => ({ ...r, expr: String(r.expr).replace('> 0.05', '>= 0.05') })) })) };
      fs.writeFileSync(path.join(dir, 'rules.yml'), stringify(moved));
      try {
        const r = run('promtool', ['test', 'rules', path.join(dir, 'alert-rules.test.yml')]);
        expect(r.status).toBe(1);
        expect(r.stdout + r.stderr).toContain('AuditServerHighErrorRate');
      } finally {
        fs.writeFileSync(path.join(dir, 'rules.yml'), stringify({ groups: rule.spec.groups }));
      }
    });
  });
});
