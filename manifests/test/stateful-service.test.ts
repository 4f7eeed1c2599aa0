/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON, whose shape the assertions themselves check */
/**
 * The one building block behind RedisCache, PgVectorDb and OpenObserve: a single-instance
 * StatefulSet with its two Services and its disruption budget.
 */
import { Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { StatefulService } from '../src/stateful-service';
import type { StatefulServiceProps } from '../src/stateful-service';

const selector = { 'app.kubernetes.io/name': 'store', 'app.kubernetes.io/instance': 'store', 'app.kubernetes.io/component': 'db' };
const props: StatefulServiceProps = {
  name: 'store',
  namespace: 'ns',
  labels: { ...selector, 'app.kubernetes.io/part-of': 'x' },
  selector,
  port: { name: 'db', port: 1234, targetPort: k8s.IntOrString.fromString('db'), protocol: 'TCP' },
  containers: [{ name: 'db', image: 'db:1.0.0' }],
  volumes: [],
  storageGiB: 3,
};

function synth(p: StatefulServiceProps): any[] {
  const chart = Testing.chart();
  new StatefulService(chart, 'Store', p);
  return Testing.synth(chart);
}

describe('StatefulService', () => {
  it('creates the StatefulSet, its ClusterIP and headless Services and a PDB, in that order, in the data wave', () => {
    const objects = synth(props);
    expect(objects.map((o) => [o.kind, o.metadata.name, o.metadata.annotations['argocd.argoproj.io/sync-wave']])).toEqual([
      ['StatefulSet', 'store', '-1'],
      ['Service', 'store', '-1'],
      ['Service', 'store-headless', '-1'],
      ['PodDisruptionBudget', 'store', '-1'],
    ]);
    const [sts, service, headless] = objects;
    expect(sts.spec).toMatchObject({ replicas: 1, serviceName: 'store-headless', persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' } });
    expect(sts.spec.volumeClaimTemplates[0].spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '3Gi' } } });
    expect(sts.spec.template.spec).toMatchObject({ automountServiceAccountToken: false, enableServiceLinks: false, securityContext: { runAsNonRoot: true } });
    expect(service.spec).toEqual({ type: 'ClusterIP', selector, ports: [{ name: 'db', port: 1234, targetPort: 'db', protocol: 'TCP' }] });
    expect(headless.spec).toEqual({ clusterIP: 'None', selector, ports: [{ name: 'db', port: 1234, targetPort: 'db', protocol: 'TCP' }] });
  });

  it('sets the optional StatefulSet fields only when given', () => {
    const plain = synth(props)[0];
    for (const field of ['podManagementPolicy', 'updateStrategy']) expect(plain.spec[field]).toBeUndefined();
    expect(plain.spec.template.metadata.annotations).toBeUndefined();
    expect(plain.spec.template.spec.terminationGracePeriodSeconds).toBeUndefined();
    const tuned = synth({
      ...props,
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'OnDelete' },
      podAnnotations: { a: 'b' },
      terminationGracePeriodSeconds: 90,
      storageClassName: 'fast',
    })[0];
    expect(tuned.spec).toMatchObject({ podManagementPolicy: 'Parallel', updateStrategy: { type: 'OnDelete' } });
    expect(tuned.spec.template.metadata.annotations).toEqual({ a: 'b' });
    expect(tuned.spec.template.spec.terminationGracePeriodSeconds).toBe(90);
    expect(tuned.spec.volumeClaimTemplates[0].spec.storageClassName).toBe('fast');
  });
});
