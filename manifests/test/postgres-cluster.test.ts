/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON */
import { Testing } from 'cdk8s';
import { PostgresCluster } from '../src/postgres-cluster';
import type { PostgresClusterProps } from '../src/postgres-cluster';
import { validateManifests } from '../src/validate';
import { crdSchemaErrors } from './support/crd-schema';

const PROPS: PostgresClusterProps = { backupDestinationPath: 's3://audit-backups/prod', backupEndpointUrl: 'https://s3.eu-central-1.example.net', podMonitorEnabled: true };

function synth(props: PostgresClusterProps = PROPS): any[] {
  const chart = Testing.chart();
  new PostgresCluster(chart, 'Postgres', props);
  return Testing.synth(chart);
}
const get = (objects: any[], kind: string): any => {
  const o = objects.find((x) => x.kind === kind);
  if (!o) throw new Error(`no ${kind}`);
  return o;
};

describe('PostgresCluster', () => {
  const objects = synth();
  const cluster = get(objects, 'Cluster');

  it('matches the snapshot', () => {
    expect(objects).toMatchSnapshot();
  });

  it('runs three instances across zones with quorum synchronous replication', () => {
    expect(cluster.spec.instances).toBe(3);
    expect(cluster.spec.affinity).toEqual({ enablePodAntiAffinity: true, podAntiAffinityType: 'required', topologyKey: 'topology.kubernetes.io/zone' });
    expect(cluster.spec.postgresql.synchronous).toEqual({ method: 'any', number: 1, dataDurability: 'required' });
    expect(cluster.spec.imageName).toBe(PostgresCluster.DEFAULT_IMAGE);
  });

  it('creates the two roles of the audit server from basic-auth Secrets, never the superuser', () => {
    expect(cluster.spec.bootstrap.initdb).toMatchObject({ database: 'audit', owner: 'audit_migrator', secret: { name: 'postgres-migrator' } });
    expect(cluster.spec.managed.roles).toEqual([{ name: 'audit_runtime', ensure: 'present', login: true, passwordSecret: { name: 'postgres-runtime' } }]);
    expect(cluster.spec.enableSuperuserAccess).toBe(false);
    expect(cluster.spec.bootstrap.initdb.postInitApplicationSQL).toContain('GRANT USAGE ON SCHEMA public TO audit_runtime');
  });

  it('archives WAL and takes daily base backups to the object store, encrypted, kept 30 days', () => {
    expect(cluster.spec.backup.retentionPolicy).toBe('30d');
    expect(cluster.spec.backup.barmanObjectStore).toMatchObject({
      destinationPath: 's3://audit-backups/prod',
      wal: { compression: 'gzip', encryption: 'AES256' },
      data: { compression: 'gzip', encryption: 'AES256' },
      s3Credentials: { accessKeyId: { name: 'postgres-backup-credentials', key: 'ACCESS_KEY_ID' }, secretAccessKey: { name: 'postgres-backup-credentials', key: 'ACCESS_SECRET_KEY' } },
    });
    expect(get(objects, 'ScheduledBackup').spec).toEqual({ schedule: '0 0 2 * * *', backupOwnerReference: 'self', cluster: { name: 'postgres' }, method: 'barmanObjectStore', immediate: true });
    expect(cluster.spec.monitoring).toEqual({ enablePodMonitor: true });
  });

  it('admits the audit server on 5432, the instances to each other and the operator on the status port', () => {
    const policy = get(objects, 'NetworkPolicy').spec;
    expect(policy.podSelector).toEqual({ matchLabels: { 'cnpg.io/cluster': 'postgres' } });
    expect(policy.ingress[0]).toEqual({ from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'audit-server' } } }], ports: [{ protocol: 'TCP', port: 5432 }] });
    expect(policy.ingress[2].from).toEqual([{ podSelector: {}, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'cnpg-system' } } }]);
  });

  it.each([
    ['Cluster', 'postgresql.cnpg.io/v1'],
    ['ScheduledBackup', 'postgresql.cnpg.io/v1'],
  ])('the %s validates against the CloudNativePG CRD schema', (kind) => {
    expect(crdSchemaErrors(get(objects, kind))).toEqual([]);
  });

  it('the CRD schema check catches a field CloudNativePG does not have', () => {
    const broken = { ...cluster, spec: { ...cluster.spec, replicas: 3 } };
    expect(crdSchemaErrors(broken)).toContain("/spec must NOT have additional properties 'replicas'");
  });

  it('passes the structural schema and every policy rule', () => {
    expect(validateManifests(objects)).toEqual([]);
  });

  it('exposes the read-write Service as host and the instance pods as peer', () => {
    const chart = Testing.chart();
    const pg = new PostgresCluster(chart, 'Postgres', { ...PROPS, namespace: 'audit-prod' });
    expect(pg.host).toBe('postgres-rw.audit-prod.svc.cluster.local');
    expect(pg.peer).toEqual({ podLabels: { 'cnpg.io/cluster': 'postgres' }, namespace: 'audit-prod', port: 5432 });
  });

  it('fails when there is no backup destination', () => {
    expect(() => synth({})).toThrow('missing backupDestinationPath: a production cluster archives WAL for point-in-time recovery (or set backupRequired: false)');
    expect(synth({ backupRequired: false }).map((o) => o.kind).sort()).toEqual(['Cluster', 'NetworkPolicy']);
  });

  it('fails when more synchronous standbys are asked than exist', () => {
    expect(() => synth({ ...PROPS, replicas: 2, synchronousReplicas: 2 })).toThrow('invalid synchronousReplicas: 2 (expected at most replicas - 1 = 1 standbys)');
  });

  it('fails when the backup schedule is a five-field cron', () => {
    expect(() => synth({ ...PROPS, backupSchedule: '0 2 * * *' })).toThrow("invalid backupSchedule: '0 2 * * *' (expected six cron fields, seconds first)");
  });
});
