import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import type { SecretKeyReference } from './secret-reference';
import { PART_OF } from './version';
import { checkDnsLabel, recommendedLabels } from './workload-defaults';

/** Props of {@link AlertRouting}. */
export interface AlertRoutingProps {
  /**
   * Namespace of the AlertmanagerConfig. prometheus-operator only routes alerts whose
   * `namespace` label equals it, so it must be the namespace the alert rules select.
   * @default 'smedrec-audit'
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/
   * @see https://prometheus-operator.dev/docs/developer/alerting/
   */
  readonly namespace?: string;
  /**
   * Name of the AlertmanagerConfig.
   * @default 'smedrec-audit-alerts'
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
   */
  readonly name?: string;
  /**
   * Labels the Alertmanager resource selects AlertmanagerConfigs by
   * (`alertmanagerConfigSelector`).
   * @default - none
   * @see https://prometheus-operator.dev/docs/api-reference/api/#monitoring.coreos.com/v1.AlertmanagerSpec
   */
  readonly selectorLabels?: { [key: string]: string };
  /**
   * Where `severity="critical"` alerts go (the ledger may have been tampered with, the
   * database is down, no api replica is up).
   */
  readonly critical: AlertReceiverOptions;
  /** Where every other alert goes (`severity="warning"` and anything unlabelled). */
  readonly warning: AlertReceiverOptions;
  /**
   * Wait before the first notification of a new group, seconds.
   * @default 30
   * @see https://prometheus.io/docs/alerting/latest/configuration/#route
   */
  readonly groupWaitSeconds?: number;
  /**
   * Repeat a notification for an alert still firing after this many hours.
   * @default 4
   * @see https://prometheus.io/docs/alerting/latest/configuration/#route
   */
  readonly repeatIntervalHours?: number;
}

/** One receiver: any combination of a webhook, e-mail and a PagerDuty (Events API v2) service. */
export interface AlertReceiverOptions {
  /**
   * Secret key holding the webhook URL (a URL often carries a token, so never inline).
   * @default - no webhook
   * @see https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
   * @see https://kubernetes.io/docs/concepts/configuration/secret/
   */
  readonly webhookUrlSecret?: SecretKeyReference;
  /**
   * E-mail recipients.
   * @default - no e-mail
   * @see https://prometheus.io/docs/alerting/latest/configuration/#email_config
   */
  readonly emailTo?: string[];
  /**
   * Sender address of the e-mails (required with `emailTo`).
   * @default - none
   */
  readonly emailFrom?: string;
  /**
   * SMTP server `host:port` (required with `emailTo`).
   * @default - none
   */
  readonly emailSmarthost?: string;
  /**
   * SMTP user name.
   * @default - no SMTP authentication
   */
  readonly emailAuthUsername?: string;
  /**
   * Secret key holding the SMTP password (with `emailAuthUsername`).
   * @default - no SMTP authentication
   * @see https://kubernetes.io/docs/concepts/configuration/secret/
   */
  readonly emailAuthPasswordSecret?: SecretKeyReference;
  /**
   * Secret key holding a PagerDuty Events API v2 routing (integration) key.
   * @default - no PagerDuty
   * @see https://prometheus.io/docs/alerting/latest/configuration/#pagerduty_config
   * @see https://kubernetes.io/docs/concepts/configuration/secret/
   */
  readonly pagerDutyRoutingKeySecret?: SecretKeyReference;
}

/** Receiver names inside the AlertmanagerConfig. */
export const RECEIVER_CRITICAL = 'critical';
/** Receiver names inside the AlertmanagerConfig. */
export const RECEIVER_WARNING = 'warning';

/**
 * Alert routing for prometheus-operator's Alertmanager: an `AlertmanagerConfig` that sends
 * critical alerts and everything else to separately configured receivers, and inhibits the
 * warnings of a namespace while a critical alert of the same namespace fires (a database outage
 * also raises error-rate and latency warnings; the operator needs the cause, not the echo).
 */
export class AlertRouting extends Construct {
  /** Namespace. */
  public readonly namespace: string;
  /** Name of the AlertmanagerConfig. */
  public readonly name: string;
  /** The AlertmanagerConfig. */
  public readonly resource: ApiObject;

  constructor(scope: Construct, id: string, props: AlertRoutingProps) {
    super(scope, id);
    this.namespace = props.namespace ?? 'smedrec-audit';
    this.name = props.name ?? 'smedrec-audit-alerts';
    checkDnsLabel('namespace', this.namespace);
    checkDnsLabel('name', this.name);
    const groupWait = props.groupWaitSeconds ?? 30;
    const repeatHours = props.repeatIntervalHours ?? 4;
    if (!Number.isInteger(groupWait) || groupWait < 0) throw new Error(`invalid groupWaitSeconds: ${groupWait} (expected an integer >= 0)`);
    if (!Number.isInteger(repeatHours) || repeatHours < 1) throw new Error(`invalid repeatIntervalHours: ${repeatHours} (expected an integer >= 1)`);
    const severity = (value: string) => [{ name: 'severity', value, matchType: '=' }];

    this.resource = new ApiObject(this, 'Resource', {
      apiVersion: 'monitoring.coreos.com/v1alpha1',
      kind: 'AlertmanagerConfig',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: { ...recommendedLabels('alertmanager-config', this.name, 'monitoring', PART_OF), ...(props.selectorLabels ?? {}) },
        // The CRD comes with prometheus-operator; Argo CD must not fail the dry run before it exists.
        annotations: { 'argocd.argoproj.io/sync-options': 'SkipDryRunOnMissingResource=true' },
      },
      spec: {
        route: {
          receiver: RECEIVER_WARNING,
          groupBy: ['alertname', 'namespace'],
          groupWait: `${groupWait}s`,
          groupInterval: '5m',
          repeatInterval: `${repeatHours}h`,
          routes: [{ matchers: severity('critical'), receiver: RECEIVER_CRITICAL }],
        },
        receivers: [receiver(RECEIVER_CRITICAL, props.critical), receiver(RECEIVER_WARNING, props.warning)],
        inhibitRules: [{ sourceMatch: severity('critical'), targetMatch: severity('warning'), equal: ['namespace'] }],
      },
    });
  }
}

/** An AlertmanagerConfig receiver from its options; fails when it would deliver nowhere. */
function receiver(name: string, o: AlertReceiverOptions): Record<string, unknown> {
  const r: Record<string, unknown> = { name };
  if (o.webhookUrlSecret) r.webhookConfigs = [{ urlSecret: { name: o.webhookUrlSecret.secretName, key: o.webhookUrlSecret.key }, sendResolved: true }];
  if (o.emailTo && o.emailTo.length > 0) {
    for (const to of o.emailTo) {
      if (!/^[^@\s,]+@[^@\s,]+$/.test(to)) throw new Error(`invalid ${name}.emailTo: '${to}' (expected one e-mail address per entry)`);
    }
    if (!o.emailFrom || !o.emailSmarthost) throw new Error(`invalid ${name}: emailTo needs emailFrom and emailSmarthost`);
    if (!/^[^:\s]+:[0-9]+$/.test(o.emailSmarthost)) throw new Error(`invalid ${name}.emailSmarthost: '${o.emailSmarthost}' (expected host:port)`);
    if (Boolean(o.emailAuthUsername) !== Boolean(o.emailAuthPasswordSecret)) {
      throw new Error(`invalid ${name}: emailAuthUsername and emailAuthPasswordSecret go together`);
    }
    r.emailConfigs = [
      {
        to: o.emailTo.join(', '),
        from: o.emailFrom,
        smarthost: o.emailSmarthost,
        requireTLS: true,
        sendResolved: true,
        ...(o.emailAuthUsername && o.emailAuthPasswordSecret
          ? { authUsername: o.emailAuthUsername, authPassword: { name: o.emailAuthPasswordSecret.secretName, key: o.emailAuthPasswordSecret.key } }
          : {}),
      },
    ];
  }
  if (o.pagerDutyRoutingKeySecret) {
    r.pagerdutyConfigs = [{ routingKey: { name: o.pagerDutyRoutingKeySecret.secretName, key: o.pagerDutyRoutingKeySecret.key }, sendResolved: true }];
  }
  if (Object.keys(r).length === 1) throw new Error(`invalid ${name}: no receiver configured (expected webhookUrlSecret, emailTo or pagerDutyRoutingKeySecret)`);
  return r;
}
