/* eslint-disable @typescript-eslint/no-unsafe-return --
   maps synthesized AlertmanagerConfig JSON, whose shape the CRD schema test checks */
import { stringify } from 'yaml';

/**
 * The Alertmanager configuration prometheus-operator generates from one AlertmanagerConfig
 * (matcher strategy `OnNamespace`, the default): receivers are renamed `<namespace>/<name>/<receiver>`,
 * the config's route becomes a child of the root route that matches `namespace="<namespace>"`
 * (with `continue: true`), and every inhibit rule is limited to that namespace. Secret references are
 * resolved from `secrets` (`<secret>/<key>` → value), as the operator does from the API server.
 */
export function alertmanagerYaml(config: any, secrets: Record<string, string>): string {
  const ns: string = config.metadata.namespace;
  const prefix = `${ns}/${config.metadata.name}/`;
  const secret = (ref: { name: string; key: string }): string => {
    const v = secrets[`${ref.name}/${ref.key}`];
    if (v === undefined) throw new Error(`secret ${ref.name}/${ref.key} not given`);
    return v;
  };
  const matchers = (ms: any[] | undefined): string[] => (ms ?? []).map((m) => `${m.name}${m.matchType ?? '='}${JSON.stringify(m.value)}`);
  const nsMatcher = `namespace=${JSON.stringify(ns)}`;
  const route = (r: any, top: boolean): any => ({
    receiver: prefix + r.receiver,
    ...(r.groupBy ? { group_by: r.groupBy } : {}),
    ...(r.groupWait ? { group_wait: r.groupWait } : {}),
    ...(r.groupInterval ? { group_interval: r.groupInterval } : {}),
    ...(r.repeatInterval ? { repeat_interval: r.repeatInterval } : {}),
    matchers: top ? [nsMatcher, ...matchers(r.matchers)] : matchers(r.matchers),
    ...(top ? { continue: true } : r.continue ? { continue: true } : {}),
    ...(r.routes ? { routes: r.routes.map((c: any) => route(c, false)) } : {}),
  });
  const receiver = (r: any): any => ({
    name: prefix + r.name,
    ...(r.webhookConfigs ? { webhook_configs: r.webhookConfigs.map((w: any) => ({ url: w.url ?? secret(w.urlSecret), send_resolved: w.sendResolved ?? true })) } : {}),
    ...(r.emailConfigs
      ? {
          email_configs: r.emailConfigs.map((e: any) => ({
            to: e.to,
            from: e.from,
            smarthost: e.smarthost,
            require_tls: e.requireTLS,
            send_resolved: e.sendResolved ?? false,
            ...(e.authUsername ? { auth_username: e.authUsername, auth_password: secret(e.authPassword) } : {}),
          })),
        }
      : {}),
    ...(r.pagerdutyConfigs ? { pagerduty_configs: r.pagerdutyConfigs.map((p: any) => ({ routing_key: secret(p.routingKey), send_resolved: p.sendResolved ?? true })) } : {}),
  });
  return stringify({
    route: { receiver: 'null', group_by: ['namespace'], routes: [route(config.spec.route, true)] },
    receivers: [{ name: 'null' }, ...config.spec.receivers.map(receiver)],
    inhibit_rules: (config.spec.inhibitRules ?? []).map((i: any) => ({
      source_matchers: [...matchers(i.sourceMatch), nsMatcher],
      target_matchers: [...matchers(i.targetMatch), nsMatcher],
      equal: i.equal ?? [],
    })),
  });
}
