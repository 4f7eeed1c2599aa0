/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON, whose shape the assertions themselves check */
/**
 * `AuditServer` with `retention.s3` (docs/privacy.md §6): the worker alone gets the archive
 * bucket's settings, its credentials (a static key from the Secret as files, or a web identity:
 * its own ServiceAccount and an STS-only projected token) and the egress to the bucket; the api
 * gets none of it; without the prop nothing changes. The values are ones the server accepts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Testing } from 'cdk8s';
import { loadConfig } from '../../server/src/config';
import { ArchiveEncryption, AuditServer } from '../src/audit-server';
import type { AuditServerProps } from '../src/audit-server';
import { validateManifests } from '../src/validate';

function synth(props: AuditServerProps = {}): any[] {
  const chart = Testing.chart();
  new AuditServer(chart, 'AuditServer', props);
  return Testing.synth(chart);
}
const get = (objects: any[], kind: string, name: string): any => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};
const podOf = (objects: any[], deployment: string): any => get(objects, 'Deployment', deployment).spec.template.spec;
const envOf = (c: any): Record<string, unknown> => Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
const egressOf = (objects: any[], name: string): any[] => get(objects, 'NetworkPolicy', name).spec.egress;

const MINIO = { podLabels: { app: 'minio' }, namespace: 'storage', port: 9000 };
const STATIC: AuditServerProps = {
  retention: {
    s3: {
      bucketUrl: 's3://audit-archive/prod',
      region: 'us-east-1',
      endpoint: 'http://minio.storage:9000',
      forcePathStyle: true,
      encryption: ArchiveEncryption.AES256,
      objectLockDays: 2190,
      staticAccessKey: true,
      peer: MINIO,
    },
  },
};
const IRSA: AuditServerProps = {
  retention: {
    s3: {
      bucketUrl: 's3://audit-archive',
      region: 'eu-central-1',
      encryption: ArchiveEncryption.KMS,
      kmsKeyId: 'alias/audit-archive',
      webIdentity: { roleArn: 'arn:aws:iam::111122223333:role/audit-archive-writer' },
    },
  },
};

describe('AuditServer retention.s3', () => {
  it('changes nothing without the prop: no archive settings, one ServiceAccount, no HTTPS egress', () => {
    const objects = synth();
    for (const d of ['audit-server', 'audit-server-worker']) {
      const env = envOf(podOf(objects, d).containers[0]);
      expect(Object.keys(env).filter((k) => k.startsWith('RETENTION_') || k.startsWith('AWS_'))).toEqual([]);
      expect(podOf(objects, d).serviceAccountName).toBe('audit-server');
    }
    expect(objects.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name)).toEqual(['audit-server']);
  });

  it('gives the worker alone the bucket settings, the static key as files, and egress to the store', () => {
    const objects = synth(STATIC);
    const worker = podOf(objects, 'audit-server-worker');
    expect(envOf(worker.containers[0])).toMatchObject({
      RETENTION_ARCHIVE_S3_URL: 's3://audit-archive/prod',
      RETENTION_ARCHIVE_S3_REGION: 'us-east-1',
      RETENTION_ARCHIVE_S3_ENDPOINT: 'http://minio.storage:9000',
      RETENTION_ARCHIVE_S3_FORCE_PATH_STYLE: 'true',
      RETENTION_ARCHIVE_S3_SSE: 'AES256',
      RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS: '2190',
      RETENTION_ARCHIVE_S3_ACCESS_KEY_ID_FILE: '/run/secrets/audit-server/retention-s3-access-key-id',
      RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY_FILE: '/run/secrets/audit-server/retention-s3-secret-access-key',
    });
    const items = worker.volumes.find((v: any) => v.name === 'worker-secrets').secret.items.map((i: any) => i.key);
    expect(items).toEqual(expect.arrayContaining(['retention-s3-access-key-id', 'retention-s3-secret-access-key']));
    const api = podOf(objects, 'audit-server');
    expect(Object.keys(envOf(api.containers[0])).filter((k) => k.startsWith('RETENTION_'))).toEqual([]);
    expect(JSON.stringify(api.volumes)).not.toContain('retention-s3');
    const minioRule = { to: [{ podSelector: { matchLabels: { app: 'minio' } }, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'storage' } } }], ports: [{ protocol: 'TCP', port: 9000 }] };
    expect(egressOf(objects, 'audit-server-worker')).toContainEqual(minioRule);
    expect(egressOf(objects, 'audit-server')).not.toContainEqual(minioRule);
    expect(validateManifests(objects)).toEqual([]);
  });

  it('with a web identity: the worker\'s own ServiceAccount, an STS-only projected token, the SDK\'s variables, HTTPS egress', () => {
    const objects = synth(IRSA);
    const sa = get(objects, 'ServiceAccount', 'audit-server-worker');
    expect(sa.automountServiceAccountToken).toBe(false);
    const worker = podOf(objects, 'audit-server-worker');
    expect(worker.serviceAccountName).toBe('audit-server-worker');
    expect(worker.automountServiceAccountToken).toBe(false);
    expect(podOf(objects, 'audit-server').serviceAccountName).toBe('audit-server');
    expect(worker.volumes).toContainEqual({
      name: 'web-identity-token',
      projected: { defaultMode: 0o440, sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' } }] },
    });
    const c = worker.containers[0];
    expect(c.volumeMounts).toContainEqual({ name: 'web-identity-token', mountPath: '/var/run/secrets/audit-server/web-identity', readOnly: true });
    expect(envOf(c)).toMatchObject({
      AWS_ROLE_ARN: 'arn:aws:iam::111122223333:role/audit-archive-writer',
      AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/audit-server/web-identity/token',
      RETENTION_ARCHIVE_S3_SSE: 'aws:kms',
      RETENTION_ARCHIVE_S3_KMS_KEY_ID: 'alias/audit-archive',
    });
    expect(Object.keys(envOf(c)).filter((k) => k.includes('ACCESS_KEY'))).toEqual([]);
    // The init container (migrations) of the pod, if any, and the api get no token.
    expect(JSON.stringify(podOf(objects, 'audit-server'))).not.toContain('web-identity');
    expect(egressOf(objects, 'audit-server-worker')).toContainEqual({ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ protocol: 'TCP', port: 443 }] });
    expect(egressOf(objects, 'audit-server').filter((r) => r.ports[0].port === 443)).toEqual([]);
    expect(validateManifests(objects)).toEqual([]);
  });

  it('sets values the server\'s configuration accepts in the worker', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'archive-bucket-'));
    try {
      for (const props of [STATIC, IRSA]) {
        const objects = synth(props);
        const c = podOf(objects, 'audit-server-worker').containers[0];
        const env: Record<string, string> = { ...get(objects, 'ConfigMap', 'audit-server-config').data, AUDIT_VERIFIER_KEY: 'k+01020304+AQ==' };
        for (const e of c.env) if (typeof e.value === 'string' && !e.name.endsWith('_FILE')) env[e.name] = e.value;
        for (const name of ['RETENTION_ARCHIVE_S3_ACCESS_KEY_ID', 'RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY']) {
          if (!c.env.some((e: any) => e.name === `${name}_FILE`)) continue;
          fs.writeFileSync(path.join(dir, name), 'stand-in\n');
          env[`${name}_FILE`] = path.join(dir, name);
        }
        const config = loadConfig(env);
        expect(config.AUDIT_ROLE).toBe('worker');
        expect(config.RETENTION_ARCHIVE_S3_URL).toBe(props.retention!.s3!.bucketUrl);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each<[string, Partial<NonNullable<NonNullable<AuditServerProps['retention']>['s3']>>, string]>([
    ['a bucket URL that is not s3://', { bucketUrl: 'https://audit-archive/x' }, "invalid retention.s3.bucketUrl: 'https://audit-archive/x' (expected s3://bucket or s3://bucket/prefix)"],
    ['a region with spaces', { region: 'eu central' }, "invalid retention.s3.region: 'eu central' (expected a region name such as eu-central-1)"],
    ['an endpoint without scheme', { endpoint: 'minio:9000' }, "invalid retention.s3.endpoint: 'minio:9000' (expected an http(s) URL)"],
    ['a KMS key without KMS encryption', { kmsKeyId: 'alias/x', encryption: ArchiveEncryption.AES256 }, 'invalid retention.s3.kmsKeyId: needs encryption ArchiveEncryption.KMS or KMS_DSSE'],
    ['zero lock days', { objectLockDays: 0 }, 'invalid retention.s3.objectLockDays'],
    ['both credential kinds', { staticAccessKey: true, webIdentity: { roleArn: 'arn:aws:iam::111122223333:role/x' } }, 'invalid retention.s3: staticAccessKey and webIdentity are exclusive'],
    ['a role ARN that is not one', { webIdentity: { roleArn: 'audit-archive-writer' } }, "invalid retention.s3.webIdentity.roleArn: 'audit-archive-writer' (expected arn:aws:iam::<account>:role/<name>)"],
  ])('refuses %s, naming the prop', (_what, change, message) => {
    expect(() => synth({ retention: { s3: { bucketUrl: 's3://audit-archive', region: 'eu-central-1', ...change } } })).toThrow(message);
  });
});
