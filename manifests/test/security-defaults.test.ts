/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON, whose shape the assertions themselves check */
/**
 * The security defaults every workload of the library is built from (workload-defaults.ts), the
 * Pod Security Admission namespace and the NetworkPolicy shape, each synthesized in a small chart
 * of its own and compared whole: a default that changes, or a field that appears or disappears,
 * fails a test here before it reaches a cluster.
 */
import { Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { AuditServer, MigrationMode } from '../src/audit-server';
import { PodNetworkPolicy } from '../src/pod-network-policy';
import { RestrictedNamespace } from '../src/restricted-namespace';
import {
  checkDnsLabel,
  checkImage,
  checkInteger,
  checkQuantity,
  contentHash,
  disruptionBudgetSpec,
  dnsEgressRule,
  egressTo,
  emptyDirVolume,
  hardenedContainer,
  hardenedPodSpec,
  ingressFrom,
  objectMeta,
  recommendedLabels,
  secretEnv,
  selectorLabels,
  setSyncWave,
  SyncWaves,
  toPolicyPeer,
  toResourceRequirements,
} from '../src/workload-defaults';
import { RESTRICTED_CONTAINER_CONTEXT, RESTRICTED_POD_CONTEXT } from './support/restricted-contexts';

/** Synthesizes whatever `build` adds to a fresh chart. */
function synth(build: (chart: ReturnType<typeof Testing.chart>) => void): any[] {
  const chart = Testing.chart();
  build(chart);
  return Testing.synth(chart);
}

const RESOURCES = {
  cpuRequest: '250m',
  cpuLimit: '1',
  memoryRequest: '256Mi',
  memoryLimit: '512Mi',
  ephemeralStorageRequest: '64Mi',
  ephemeralStorageLimit: '1Gi',
};

describe('RestrictedNamespace', () => {
  it('enforces, audits and warns with the restricted profile at the latest version, in the first sync wave', () => {
    expect(synth((chart) => new RestrictedNamespace(chart, 'Ns', { name: 'audit' }))).toEqual([
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: 'audit',
          labels: {
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
            'pod-security.kubernetes.io/audit': 'restricted',
            'pod-security.kubernetes.io/warn': 'restricted',
            'app.kubernetes.io/part-of': 'smedrec-audit',
          },
          annotations: { 'argocd.argoproj.io/sync-wave': '-3' },
        },
      },
    ]);
  });
});

describe('PodNetworkPolicy', () => {
  const metadata = objectMeta('p', 'ns', { a: 'b' });

  it('without selector or rules selects every pod and drops all traffic both ways, synced with the configuration', () => {
    expect(synth((chart) => new PodNetworkPolicy(chart, 'Deny', { metadata }))).toEqual([
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'p', namespace: 'ns', labels: { a: 'b' }, annotations: { 'argocd.argoproj.io/sync-wave': '-2' } },
        spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
      },
    ]);
  });

  it('selects the given pods and allows exactly the given rules, still governing both directions', () => {
    const [policy] = synth(
      (chart) =>
        new PodNetworkPolicy(chart, 'Api', {
          metadata,
          podSelector: { app: 'api' },
          ingress: ingressFrom([{ podLabels: { app: 'edge' }, port: 1 }], 3000),
          egress: [dnsEgressRule()],
        }),
    );
    expect(policy.spec).toEqual({
      podSelector: { matchLabels: { app: 'api' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: { matchLabels: { app: 'edge' } } }], ports: [{ protocol: 'TCP', port: 3000 }] }],
      egress: [
        {
          to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    });
  });

  it('keeps an explicitly empty rule list: the selected pods accept nothing', () => {
    const [policy] = synth((chart) => new PodNetworkPolicy(chart, 'Migrate', { metadata, podSelector: { app: 'm' }, ingress: [], egress: [] }));
    expect(policy.spec).toEqual({ podSelector: { matchLabels: { app: 'm' } }, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] });
  });
});

describe('network peers', () => {
  it('selects by cidr alone, by pod labels, by namespace, or both (one peer: those pods in that namespace)', () => {
    const ns = (name: string) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': name } } });
    expect(toPolicyPeer({ cidr: '10.0.0.0/8', podLabels: { ignored: 'yes' }, namespace: 'ignored', port: 1 })).toEqual({ ipBlock: { cidr: '10.0.0.0/8' } });
    expect(toPolicyPeer({ podLabels: { app: 'pg' }, port: 1 })).toEqual({ podSelector: { matchLabels: { app: 'pg' } } });
    expect(toPolicyPeer({ namespace: 'monitoring', port: 1 })).toEqual({ podSelector: {}, ...ns('monitoring') });
    expect(toPolicyPeer({ podLabels: { app: 'otel' }, namespace: 'obs', port: 1 })).toEqual({ podSelector: { matchLabels: { app: 'otel' } }, ...ns('obs') });
  });

  it('opens egress to one peer on its TCP port only', () => {
    const [policy] = synth(
      (chart) =>
        new PodNetworkPolicy(chart, 'P', {
          metadata: objectMeta('p', 'ns', {}),
          egress: [egressTo({ podLabels: { app: 'redis' }, port: 6379 }), egressTo({ cidr: '203.0.113.10/32', port: 443 })],
        }),
    );
    expect(policy.spec.egress).toEqual([
      { to: [{ podSelector: { matchLabels: { app: 'redis' } } }], ports: [{ protocol: 'TCP', port: 6379 }] },
      { to: [{ ipBlock: { cidr: '203.0.113.10/32' } }], ports: [{ protocol: 'TCP', port: 443 }] },
    ]);
  });

  it('makes no ingress rule from no peers, since a rule without `from` would admit every source', () => {
    expect(ingressFrom([], 3000)).toEqual([]);
    const [policy] = synth(
      (chart) =>
        new PodNetworkPolicy(chart, 'P', {
          metadata: objectMeta('p', 'ns', {}),
          ingress: ingressFrom([{ podLabels: { app: 'a' }, port: 1 }, { namespace: 'monitoring', port: 2 }], 8080),
        }),
    );
    expect(policy.spec.ingress).toEqual([
      {
        from: [{ podSelector: { matchLabels: { app: 'a' } } }, { podSelector: {}, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
  });
});

describe('hardened pods and containers', () => {
  it('give a pod no service account token, no service links and the restricted pod context, and each container the restricted container context', () => {
    const [pod] = synth(
      (chart) =>
        new k8s.KubePod(chart, 'Pod', {
          metadata: objectMeta('p', 'ns', { app: 'p' }),
          spec: hardenedPodSpec({
            containers: [hardenedContainer({ name: 'c', image: 'img:1.0.0', resources: toResourceRequirements(RESOURCES), volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }] })],
            volumes: [emptyDirVolume('tmp', '64Mi')],
          }),
        }),
    );
    expect(pod).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'ns', labels: { app: 'p' } },
      spec: {
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        securityContext: RESTRICTED_POD_CONTEXT,
        containers: [
          {
            name: 'c',
            image: 'img:1.0.0',
            imagePullPolicy: 'IfNotPresent',
            securityContext: RESTRICTED_CONTAINER_CONTEXT,
            resources: {
              requests: { cpu: '250m', memory: '256Mi', 'ephemeral-storage': '64Mi' },
              limits: { cpu: '1', memory: '512Mi', 'ephemeral-storage': '1Gi' },
            },
            volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
          },
        ],
        volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }],
      },
    });
  });

  it('cannot be weakened by a spec or container that sets the hardened fields', () => {
    // Typed wider, as a spec built elsewhere could be: the parameter types refuse these fields only
    // in an object literal, so the helpers apply the hardening after the caller's fields.
    const spec: k8s.PodSpec = { containers: [], automountServiceAccountToken: true, enableServiceLinks: true, securityContext: { runAsUser: 0 } };
    const container: k8s.Container = { name: 'c', imagePullPolicy: 'Always', securityContext: { privileged: true, allowPrivilegeEscalation: true } };
    expect(hardenedPodSpec(spec)).toEqual({ containers: [], automountServiceAccountToken: false, enableServiceLinks: false, securityContext: RESTRICTED_POD_CONTEXT });
    // The pull policy is no security field: a container may ask for another.
    expect(hardenedContainer(container)).toEqual({ name: 'c', imagePullPolicy: 'Always', securityContext: RESTRICTED_CONTAINER_CONTEXT });
  });

  it('keeps emptyDir volumes on disk unless a medium is given', () => {
    const [pod] = synth(
      (chart) =>
        new k8s.KubePod(chart, 'Pod', {
          metadata: { name: 'p' },
          spec: { containers: [{ name: 'c' }], volumes: [emptyDirVolume('disk', '1Gi'), emptyDirVolume('shm', '128Mi', 'Memory')] },
        }),
    );
    expect(pod.spec.volumes).toEqual([
      { name: 'disk', emptyDir: { sizeLimit: '1Gi' } },
      { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: '128Mi' } },
    ]);
    expect(Object.keys(emptyDirVolume('disk', '1Gi').emptyDir!)).toEqual(['sizeLimit']);
  });

  it('reads a Secret key into the environment, optional only when asked', () => {
    const ref = { secretName: 's', key: 'k' };
    expect(secretEnv('A', ref)).toStrictEqual({ name: 'A', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } });
    expect(secretEnv('B', ref, false)).toStrictEqual({ name: 'B', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } });
    expect(secretEnv('C', ref, true)).toStrictEqual({ name: 'C', valueFrom: { secretKeyRef: { name: 's', key: 'k', optional: true } } });
  });

  it('in every pod of an AuditServer, init containers included, in each migration mode', () => {
    for (const migrations of Object.values(MigrationMode)) {
      const objects = synth((chart) => new AuditServer(chart, 'AuditServer', { migrations }));
      const pods = objects.map((o) => o.spec?.template?.spec).filter((spec) => spec !== undefined);
      expect(pods.length).toBe(migrations === MigrationMode.INIT_CONTAINER ? 2 : 3);
      for (const pod of pods) {
        expect([pod.automountServiceAccountToken, pod.enableServiceLinks, pod.securityContext]).toEqual([false, false, RESTRICTED_POD_CONTEXT]);
        for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
          expect([c.name, c.imagePullPolicy, c.securityContext]).toEqual([c.name, 'IfNotPresent', RESTRICTED_CONTAINER_CONTEXT]);
        }
      }
    }
  });
});

describe('labels, sync waves and disruption budgets', () => {
  it('labels with the recommended labels, the version only when known', () => {
    expect(recommendedLabels('n', 'i', 'c', 'p', '1.2.3')).toStrictEqual({
      'app.kubernetes.io/name': 'n',
      'app.kubernetes.io/instance': 'i',
      'app.kubernetes.io/component': 'c',
      'app.kubernetes.io/part-of': 'p',
      'app.kubernetes.io/version': '1.2.3',
      'app.kubernetes.io/managed-by': 'cdk8s',
    });
    expect(recommendedLabels('n', 'i', 'c', 'p')).toStrictEqual({
      'app.kubernetes.io/name': 'n',
      'app.kubernetes.io/instance': 'i',
      'app.kubernetes.io/component': 'c',
      'app.kubernetes.io/part-of': 'p',
      'app.kubernetes.io/managed-by': 'cdk8s',
    });
    expect(selectorLabels('n', 'i', 'c')).toStrictEqual({ 'app.kubernetes.io/name': 'n', 'app.kubernetes.io/instance': 'i', 'app.kubernetes.io/component': 'c' });
  });

  it('orders an Argo CD sync: namespace, configuration, data, migrations, application, edge', () => {
    expect(SyncWaves).toEqual({ namespace: -3, config: -2, data: -1, migrations: 0, app: 1, edge: 2 });
    const [map] = synth((chart) => setSyncWave(new k8s.KubeConfigMap(chart, 'M', { metadata: { name: 'm' } }), 7));
    expect(map.metadata.annotations).toEqual({ 'argocd.argoproj.io/sync-wave': '7' });
  });

  it('lets one pod of the selected ones be evicted at a time, and unhealthy ones always', () => {
    const [pdb] = synth((chart) => new k8s.KubePodDisruptionBudget(chart, 'B', { metadata: { name: 'b' }, spec: disruptionBudgetSpec({ app: 'a' }) }));
    expect(pdb.spec).toEqual({ maxUnavailable: 1, unhealthyPodEvictionPolicy: 'AlwaysAllow', selector: { matchLabels: { app: 'a' } } });
  });
});

describe('prop checks', () => {
  it('accepts integers from the minimum up and refuses fractions and smaller values, naming the prop', () => {
    expect(() => checkInteger('replicas', 2, 2)).not.toThrow();
    expect(() => checkInteger('replicas', 9, 2)).not.toThrow();
    expect(() => checkInteger('replicas', 1, 2)).toThrow(new Error('invalid replicas: 1 (expected an integer >= 2)'));
    expect(() => checkInteger('storageGiB', 2.5, 1)).toThrow(new Error('invalid storageGiB: 2.5 (expected an integer >= 1)'));
  });

  it('accepts Kubernetes quantities and refuses anything else, naming the prop', () => {
    // Every suffix, and the digits 0 and 9 in the integer and the fractional part.
    for (const ok of ['1', '90', '0.5', '1.09', '500m', '1k', '64Ki', '2M', '256Mi', '1G', '1.5Gi', '1T', '2Ti']) expect(() => checkQuantity('q', ok)).not.toThrow();
    for (const bad of ['', 'half', 'x1', '1x', '1Mi ', ' 1', '.5', '1.', '1,5', '1.5.5', '-1', '1e3', '1mi', '1Ei', '1MiB']) {
      expect(() => checkQuantity('q', bad)).toThrow(new Error(`invalid q: '${bad}' (expected a kubernetes quantity such as 256Mi or 500m)`));
    }
  });

  it('refuses an image without a pinned version, saying why and what a pin looks like', () => {
    expect(() => checkImage('image', 'redis:7.2.7-alpine')).not.toThrow();
    expect(() => checkImage('image', 'redis:alpine')).toThrow(
      new Error("invalid image: 'redis:alpine' (tag alpine has no version number; expected a tag with a version number such as 1.2.3, or an @sha256 digest)"),
    );
  });

  it('accepts DNS labels of up to 63 characters and refuses anything else, naming the prop', () => {
    // a, z, 0 and 9 first, last and in between, and a hyphen in between.
    for (const ok of ['a', 'z0', '9-za09-a', 'a-z', '0-9', 'a'.repeat(63)]) expect(() => checkDnsLabel('namespace', ok)).not.toThrow();
    for (const bad of ['', '-a', 'a-', 'A', 'a_b', 'a.b', 'a b', 'a'.repeat(64)]) {
      expect(() => checkDnsLabel('namespace', bad)).toThrow(new Error(`invalid namespace: '${bad}' (expected a dns label: lower-case letters, digits and -, at most 63)`));
    }
  });

  it('hashes configuration text to the first 16 hex digits of its SHA-256', () => {
    // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad (FIPS 180-2, B.1)
    expect(contentHash('abc')).toBe('ba7816bf8f01cfea');
  });
});
