// Policy rules in the spirit of Pod Security Standards, kube-score and kube-linter, applied to
// the whole set of objects at once so cross-object rules (PDB per workload, NetworkPolicy per
// pod, selectors that match, HPA targets) can be checked offline.
import { PINNED_IMAGE_HINT, unpinnedImageReason } from '../image-reference';
import type { KubeObject, Violation } from './types';
import { describeObject } from './types';

type Json = Record<string, unknown>;

interface PodTemplate {
  readonly owner: KubeObject;
  readonly namespace: string;
  readonly labels: Record<string, string>;
  readonly spec: Json;
  /** Deployments, StatefulSets, DaemonSets and bare pods run until stopped; Jobs finish. */
  readonly longRunning: boolean;
}

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'PersistentVolume',
  'StorageClass',
  'IngressClass',
  'CustomResourceDefinition',
  'PriorityClass',
]);

/** Env var names whose value must come from a Secret, never be written inline. */
const SECRET_ENV_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY|SIGNING_KEY|CREDENTIAL|DATABASE_URL|REDIS_URL|_AUTH$)/i;
/** ConfigMap keys that look like credentials. */
const SECRET_KEY_NAME = /(password|passwd|secret|token|api[-_]?key|private[-_]?key|signing[-_]?key|credential)/i;
/** A URL with a password in its userinfo (RFC 3986 §3.2.1), e.g. postgres://u:p@host. */
const URL_WITH_PASSWORD = /[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:[^/\s@]+@/i;
/** Volume types Pod Security Standards `restricted` allows. */
const RESTRICTED_VOLUME_TYPES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

const asRecord = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const asArray = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const meta = (o: KubeObject) => asRecord(o.metadata) as { name?: string; namespace?: string; labels?: Record<string, string> };
const nsOf = (o: KubeObject): string => meta(o).namespace ?? '';

/** True when every `matchLabels` pair is present in `labels` (and there is at least one). */
function selects(matchLabels: unknown, labels: Record<string, string>): boolean {
  const sel = asRecord(matchLabels) as Record<string, string>;
  const entries = Object.entries(sel);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

function podTemplates(objects: readonly KubeObject[]): PodTemplate[] {
  const out: PodTemplate[] = [];
  for (const o of objects) {
    const spec = asRecord(o.spec);
    let template: Json | undefined;
    let longRunning = true;
    switch (o.kind) {
      case 'Deployment':
      case 'StatefulSet':
      case 'DaemonSet':
      case 'ReplicaSet':
        template = asRecord(spec.template);
        break;
      case 'Job':
        template = asRecord(spec.template);
        longRunning = false;
        break;
      case 'CronJob':
        template = asRecord(asRecord(asRecord(spec.jobTemplate).spec).template);
        longRunning = false;
        break;
      case 'Pod':
        template = { metadata: o.metadata, spec: o.spec };
        break;
      default:
        break;
    }
    if (!template) continue;
    out.push({
      owner: o,
      namespace: nsOf(o),
      labels: (asRecord(asRecord(template.metadata).labels) as Record<string, string>) ?? {},
      spec: asRecord(template.spec),
      longRunning,
    });
  }
  return out;
}

function containersOf(spec: Json): { container: Json; kind: 'container' | 'initContainer' | 'ephemeralContainer' }[] {
  return [
    ...asArray(spec.initContainers).map((container) => ({ container, kind: 'initContainer' as const })),
    ...asArray(spec.containers).map((container) => ({ container, kind: 'container' as const })),
    ...asArray(spec.ephemeralContainers).map((container) => ({ container, kind: 'ephemeralContainer' as const })),
  ];
}

type Rule = (objects: readonly KubeObject[], pods: readonly PodTemplate[]) => Violation[];

const ruleNamespace: Rule = (objects) => {
  const out: Violation[] = [];
  for (const o of objects) {
    const ns = meta(o).namespace;
    const clusterScoped = CLUSTER_SCOPED.has(String(o.kind));
    if (clusterScoped && ns !== undefined) {
      out.push({ rule: 'namespace', object: describeObject(o), message: `cluster-scoped ${String(o.kind)} must not set metadata.namespace` });
    }
    if (!clusterScoped && (ns === undefined || ns === '')) {
      out.push({ rule: 'namespace', object: describeObject(o), message: 'metadata.namespace is missing' });
    }
  }
  return out;
};

const ruleUniqueNames: Rule = (objects) => {
  const seen = new Set<string>();
  const out: Violation[] = [];
  for (const o of objects) {
    const key = `${String(o.apiVersion)}/${describeObject(o)}`;
    if (seen.has(key)) out.push({ rule: 'unique-names', object: describeObject(o), message: 'another object has the same kind, namespace and name' });
    seen.add(key);
  }
  return out;
};

const rulePss: Rule = (_objects, pods) => {
  const out: Violation[] = [];
  for (const pod of pods) {
    const object = describeObject(pod.owner);
    const v = (message: string) => out.push({ rule: 'pss-restricted', object, message });
    const spec = pod.spec;
    const podSc = asRecord(spec.securityContext);
    for (const host of ['hostNetwork', 'hostPID', 'hostIPC'] as const) if (spec[host] === true) v(`spec.${host} must not be true`);
    for (const vol of asArray(spec.volumes)) {
      const type = Object.keys(vol).find((k) => k !== 'name');
      if (type !== undefined && !RESTRICTED_VOLUME_TYPES.has(type)) v(`volume ${String(vol.name)} uses ${type}, not allowed by restricted`);
    }
    if (podSc.runAsUser === 0) v('securityContext.runAsUser must not be 0');
    const podSeccomp = asRecord(podSc.seccompProfile).type;
    for (const { container, kind } of containersOf(spec)) {
      const name = `${kind} ${String(container.name)}`;
      const sc = asRecord(container.securityContext);
      if (sc.privileged === true) v(`${name}: privileged must not be true`);
      if (sc.allowPrivilegeEscalation !== false) v(`${name}: securityContext.allowPrivilegeEscalation must be false`);
      if (sc.runAsNonRoot !== true && podSc.runAsNonRoot !== true) v(`${name}: runAsNonRoot must be true (pod or container)`);
      if (sc.runAsUser === 0) v(`${name}: securityContext.runAsUser must not be 0`);
      const seccomp = asRecord(sc.seccompProfile).type ?? podSeccomp;
      if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') v(`${name}: seccompProfile.type must be RuntimeDefault or Localhost`);
      const caps = asRecord(sc.capabilities);
      const drop = Array.isArray(caps.drop) ? (caps.drop as string[]) : [];
      if (!drop.includes('ALL')) v(`${name}: capabilities.drop must include ALL`);
      const add = Array.isArray(caps.add) ? (caps.add as string[]) : [];
      for (const c of add) if (c !== 'NET_BIND_SERVICE') v(`${name}: capability ${c} may not be added (only NET_BIND_SERVICE)`);
      for (const p of asArray(container.ports)) if (p.hostPort !== undefined && p.hostPort !== 0) v(`${name}: hostPort must not be set`);
    }
  }
  return out;
};

const ruleReadOnlyRoot: Rule = (_o, pods) =>
  pods.flatMap((pod) =>
    containersOf(pod.spec)
      .filter(({ container }) => asRecord(container.securityContext).readOnlyRootFilesystem !== true)
      .map(({ container, kind }) => ({
        rule: 'read-only-root-filesystem',
        object: describeObject(pod.owner),
        message: `${kind} ${String(container.name)}: securityContext.readOnlyRootFilesystem must be true`,
      })),
  );

const ruleNoTokenAutomount: Rule = (_o, pods) =>
  pods
    .filter((pod) => pod.spec.automountServiceAccountToken !== false)
    .map((pod) => ({ rule: 'no-token-automount', object: describeObject(pod.owner), message: 'spec.automountServiceAccountToken must be false' }));

const ruleResources: Rule = (_o, pods) => {
  const out: Violation[] = [];
  for (const pod of pods) {
    for (const { container, kind } of containersOf(pod.spec)) {
      if (kind === 'ephemeralContainer') continue;
      const res = asRecord(container.resources);
      for (const side of ['requests', 'limits'] as const) {
        const values = asRecord(res[side]);
        for (const r of ['cpu', 'memory', 'ephemeral-storage']) {
          if (values[r] === undefined) {
            out.push({ rule: 'resources', object: describeObject(pod.owner), message: `${kind} ${String(container.name)}: resources.${side}.${r} is missing` });
          }
        }
      }
    }
  }
  return out;
};

/** The part of a probe that decides what is checked (timings aside). */
function probeHandler(probe: Json): string {
  return JSON.stringify({ exec: probe.exec, httpGet: probe.httpGet, tcpSocket: probe.tcpSocket, grpc: probe.grpc });
}

const ruleProbes: Rule = (_o, pods) => {
  const out: Violation[] = [];
  for (const pod of pods.filter((p) => p.longRunning)) {
    for (const container of asArray(pod.spec.containers)) {
      const v = (message: string) => out.push({ rule: 'probes', object: describeObject(pod.owner), message: `container ${String(container.name)}: ${message}` });
      const liveness = container.livenessProbe === undefined ? undefined : asRecord(container.livenessProbe);
      const readiness = container.readinessProbe === undefined ? undefined : asRecord(container.readinessProbe);
      if (!liveness) v('livenessProbe is missing');
      if (!readiness) v('readinessProbe is missing');
      // Identical checks make a slow dependency restart the pod instead of only taking it out of
      // rotation (kube-score "container-probes-identical").
      if (liveness && readiness && probeHandler(liveness) === probeHandler(readiness)) {
        v('livenessProbe and readinessProbe perform the same check');
      }
    }
  }
  return out;
};

const ruleNoLatest: Rule = (_o, pods) => {
  const out: Violation[] = [];
  for (const pod of pods) {
    for (const { container, kind } of containersOf(pod.spec)) {
      const image = typeof container.image === 'string' ? container.image : '';
      const reason = unpinnedImageReason(image);
      if (reason !== undefined) {
        out.push({
          rule: 'no-latest-tag',
          object: describeObject(pod.owner),
          message: `${kind} ${String(container.name)}: image '${image}' is not pinned (${reason}; use ${PINNED_IMAGE_HINT})`,
        });
      }
    }
  }
  return out;
};

function* strings(value: unknown, path: string): Generator<[string, string]> {
  if (typeof value === 'string') yield [path, value];
  else if (Array.isArray(value)) for (let i = 0; i < value.length; i++) yield* strings(value[i], `${path}[${i}]`);
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) yield* strings(v, path ? `${path}.${k}` : k);
}

/**
 * `<NAME>_FILE` naming a file in a read-only mount of the container (the Docker and Kubernetes
 * secrets convention, server/src/config.ts): the value is a path, the secret stays in the volume.
 */
function isSecretFilePath(env: Json, container: Json): boolean {
  if (!String(env.name).endsWith('_FILE')) return false;
  const file = String(env.value);
  return asArray(container.volumeMounts).some(
    (m) => m.readOnly === true && typeof m.mountPath === 'string' && file.startsWith(`${m.mountPath.replace(/\/+$/, '')}/`),
  );
}

const ruleNoLiteralSecrets: Rule = (objects, pods) => {
  const out: Violation[] = [];
  for (const o of objects) {
    const object = describeObject(o);
    if (o.kind === 'Secret') {
      for (const field of ['data', 'stringData']) {
        if (Object.keys(asRecord(o[field])).length > 0) {
          out.push({ rule: 'no-literal-secrets', object, message: `Secret carries literal ${field}; reference an externally managed Secret instead` });
        }
      }
    }
    if (o.kind === 'ConfigMap') {
      for (const key of Object.keys(asRecord(o.data))) {
        if (SECRET_KEY_NAME.test(key)) out.push({ rule: 'no-literal-secrets', object, message: `ConfigMap key '${key}' looks like a credential` });
      }
    }
    for (const [path, s] of strings(o, '')) {
      if (URL_WITH_PASSWORD.test(s)) out.push({ rule: 'no-literal-secrets', object, message: `${path} contains a URL with a password` });
    }
  }
  for (const pod of pods) {
    for (const { container, kind } of containersOf(pod.spec)) {
      for (const env of asArray(container.env)) {
        if (typeof env.value === 'string' && env.value !== '' && SECRET_ENV_NAME.test(String(env.name)) && !isSecretFilePath(env, container)) {
          out.push({
            rule: 'no-literal-secrets',
            object: describeObject(pod.owner),
            message: `${kind} ${String(container.name)}: env ${String(env.name)} has a literal value; use valueFrom.secretKeyRef`,
          });
        }
      }
    }
  }
  return out;
};

const rulePdb: Rule = (objects, pods) => {
  const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
  return pods
    .filter((pod) => pod.owner.kind === 'Deployment' || pod.owner.kind === 'StatefulSet')
    .filter((pod) => !pdbs.some((p) => nsOf(p) === pod.namespace && selects(asRecord(asRecord(p.spec).selector).matchLabels, pod.labels)))
    .map((pod) => ({ rule: 'pdb-per-workload', object: describeObject(pod.owner), message: 'no PodDisruptionBudget selects its pods' }));
};

const ruleNetworkPolicy: Rule = (objects, pods) => {
  // A namespace-wide default deny (empty podSelector) is the baseline, not a policy "of its
  // own": each pod must also be selected by a specific allow-list.
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  return pods
    .filter((pod) => !policies.some((p) => nsOf(p) === pod.namespace && selects(asRecord(asRecord(p.spec).podSelector).matchLabels, pod.labels)))
    .map((pod) => ({ rule: 'network-policy-per-pod', object: describeObject(pod.owner), message: 'no NetworkPolicy with a specific podSelector selects its pods' }));
};

const ruleNetworkPolicyOpen: Rule = (objects) => {
  const out: Violation[] = [];
  for (const np of objects.filter((o) => o.kind === 'NetworkPolicy')) {
    const spec = asRecord(np.spec);
    // A rule whose from/to is missing or empty matches all peers (NetworkPolicyIngressRule.from,
    // NetworkPolicyEgressRule.to): an allow-list must name its peers.
    for (const [field, peers] of [['ingress', 'from'], ['egress', 'to']] as const) {
      asArray(spec[field]).forEach((rule, i) => {
        if (asArray(rule[peers]).length === 0) {
          out.push({ rule: 'network-policy-open', object: describeObject(np), message: `spec.${field}[${i}] has no ${peers} peers and admits everything` });
        }
      });
    }
  }
  return out;
};

const ruleSelectors: Rule = (objects, pods) => {
  const out: Violation[] = [];
  const v = (o: KubeObject, message: string) => out.push({ rule: 'selectors-match', object: describeObject(o), message });
  const find = (kind: string, ns: string, name: unknown) => objects.find((o) => o.kind === kind && nsOf(o) === ns && meta(o).name === name);
  for (const pod of pods) {
    const o = pod.owner;
    if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet'].includes(String(o.kind))) {
      const sel = asRecord(asRecord(o.spec).selector);
      if (!selects(sel.matchLabels, pod.labels)) v(o, 'spec.selector.matchLabels is empty or does not match the pod template labels');
    }
    if (o.kind === 'StatefulSet') {
      const svc = find('Service', pod.namespace, asRecord(o.spec).serviceName);
      if (!svc) v(o, `spec.serviceName '${String(asRecord(o.spec).serviceName)}' names no Service`);
      else if (asRecord(svc.spec).clusterIP !== 'None') v(o, `spec.serviceName '${String(asRecord(o.spec).serviceName)}' is not a headless Service`);
    }
  }
  for (const o of objects) {
    const ns = nsOf(o);
    const spec = asRecord(o.spec);
    const inNs = pods.filter((p) => p.namespace === ns);
    if (o.kind === 'Service' && spec.selector !== undefined) {
      const selected = inNs.filter((p) => selects(spec.selector, p.labels));
      if (selected.length === 0) v(o, 'spec.selector selects no pod template');
      for (const port of asArray(spec.ports)) {
        const target = port.targetPort;
        if (typeof target === 'string' && selected.length > 0) {
          const named = selected.every((p) => asArray(p.spec.containers).some((c) => asArray(c.ports).some((cp) => cp.name === target)));
          if (!named) v(o, `targetPort '${target}' is not a named container port of every selected pod`);
        }
      }
    }
    if (o.kind === 'PodDisruptionBudget' && !inNs.some((p) => selects(asRecord(spec.selector).matchLabels, p.labels))) {
      v(o, 'spec.selector selects no pod template');
    }
    if (o.kind === 'NetworkPolicy') {
      const ml = asRecord(asRecord(spec.podSelector).matchLabels);
      // Pods an operator creates carry labels known from the custom resource: a CloudNativePG
      // Cluster's instances are labelled cnpg.io/cluster=<name>.
      const operatorPods = objects
        .filter((c) => c.kind === 'Cluster' && String(c.apiVersion).startsWith('postgresql.cnpg.io/') && nsOf(c) === ns)
        .map((c) => ({ 'cnpg.io/cluster': String(meta(c).name) }));
      const selectsSome = inNs.some((p) => selects(ml, p.labels)) || operatorPods.some((labels) => selects(ml, labels));
      if (Object.keys(ml).length > 0 && !selectsSome) v(o, 'spec.podSelector selects no pod template');
    }
    if (o.kind === 'HorizontalPodAutoscaler') {
      const ref = asRecord(spec.scaleTargetRef);
      if (!find(String(ref.kind), ns, ref.name)) v(o, `scaleTargetRef ${String(ref.kind)}/${String(ref.name)} does not exist`);
    }
    if (o.kind === 'Ingress') {
      for (const r of asArray(spec.rules)) {
        for (const p of asArray(asRecord(r.http).paths)) {
          const svcRef = asRecord(asRecord(p.backend).service);
          const svc = find('Service', ns, svcRef.name);
          const port = asRecord(svcRef.port);
          if (!svc) v(o, `backend service '${String(svcRef.name)}' does not exist`);
          else if (!asArray(asRecord(svc.spec).ports).some((sp) => (port.name !== undefined ? sp.name === port.name : sp.port === port.number))) {
            v(o, `backend service '${String(svcRef.name)}' has no port ${String(port.name ?? port.number)}`);
          }
        }
      }
    }
  }
  return out;
};

const hpas = (objects: readonly KubeObject[]) => objects.filter((o) => o.kind === 'HorizontalPodAutoscaler');

const ruleHpaMin: Rule = (objects) =>
  hpas(objects)
    // minReplicas defaults to 1 when omitted.
    .filter((h) => ((asRecord(h.spec).minReplicas as number | undefined) ?? 1) < 2)
    .map((h) => ({ rule: 'hpa-min-replicas', object: describeObject(h), message: `minReplicas ${JSON.stringify(asRecord(h.spec).minReplicas ?? 1)} is below 2` }));

const ruleHpaNoReplicas: Rule = (objects) => {
  const out: Violation[] = [];
  for (const h of hpas(objects)) {
    const ref = asRecord(asRecord(h.spec).scaleTargetRef);
    const target = objects.find((o) => o.kind === ref.kind && nsOf(o) === nsOf(h) && meta(o).name === ref.name);
    if (target && asRecord(target.spec).replicas !== undefined) {
      out.push({
        rule: 'hpa-no-replicas',
        object: describeObject(target),
        message: `spec.replicas is set although ${describeObject(h)} scales it (every apply would reset the scale)`,
      });
    }
  }
  return out;
};

/** The rules in reporting order. */
const RULES: readonly Rule[] = [
  ruleNamespace,
  ruleUniqueNames,
  rulePss,
  ruleReadOnlyRoot,
  ruleNoTokenAutomount,
  ruleResources,
  ruleProbes,
  ruleNoLatest,
  ruleNoLiteralSecrets,
  rulePdb,
  ruleNetworkPolicy,
  ruleNetworkPolicyOpen,
  ruleSelectors,
  ruleHpaMin,
  ruleHpaNoReplicas,
];

/** Applies every policy rule to one deployable set of objects (an environment). */
export function checkPolicies(objects: readonly KubeObject[]): Violation[] {
  const pods = podTemplates(objects);
  return RULES.flatMap((rule) => rule(objects, pods));
}
