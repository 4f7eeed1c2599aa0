import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Testing } from 'cdk8s';
import { RedisCache, RedisEvictionPolicy } from '../src/redis-cache';
import type { RedisCacheProps } from '../src/redis-cache';
import { validateManifests } from '../src/validate';
import { freePort, hasBinary, run, start, stopStarted, waitUntil } from './support/processes';

function synth(props: RedisCacheProps = {}): { objects: any[]; redis: RedisCache } {
  const chart = Testing.chart();
  const redis = new RedisCache(chart, 'Redis', props);
  return { objects: Testing.synth(chart), redis };
}
const get = (objects: any[], kind: string, name: string): any => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};

describe('RedisCache', () => {
  const { objects, redis } = synth({ exporterEnabled: true });
  const sts = get(objects, 'StatefulSet', 'redis');
  const conf: string = get(objects, 'ConfigMap', 'redis-config').data['redis.conf'];

  it('matches the snapshot', () => {
    expect(objects).toMatchSnapshot();
  });

  it('exposes host, port, password secret and a network peer', () => {
    expect([redis.host, redis.port, redis.passwordSecret]).toEqual([
      'redis.smedrec-audit.svc.cluster.local',
      6379,
      { secretName: 'redis-credentials', key: 'password' },
    ]);
    expect(redis.peer).toEqual({ podLabels: redis.podLabels, namespace: 'smedrec-audit', port: 6379 });
  });

  it('configures noeviction, maxmemory from props, AOF everysec and protected mode, without the password', () => {
    for (const line of ['maxmemory 512mb', 'maxmemory-policy noeviction', 'appendonly yes', 'appendfsync everysec', 'protected-mode yes']) {
      expect(conf.split('\n')).toContain(line);
    }
    expect(conf).not.toMatch(/requirepass/);
    expect(synth({ maxMemoryMiB: 64, evictionPolicy: RedisEvictionPolicy.ALLKEYS_LRU }).objects.find((o) => o.kind === 'ConfigMap').data['redis.conf']).toMatch(
      /maxmemory 64mb\nmaxmemory-policy allkeys-lru/,
    );
  });

  it('claims storage with a volumeClaimTemplate and reads the password from the Secret', () => {
    expect(sts.spec.volumeClaimTemplates).toEqual([
      {
        metadata: { name: 'data', labels: sts.metadata.labels },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '8Gi' } } },
      },
    ]);
    const env = sts.spec.template.spec.containers[0].env;
    expect(env).toEqual([
      { name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'redis-credentials', key: 'password' } } },
      { name: 'REDISCLI_AUTH', valueFrom: { secretKeyRef: { name: 'redis-credentials', key: 'password' } } },
    ]);
  });

  it('leaves room above maxmemory in the memory limit for AOF rewrites', () => {
    expect(sts.spec.template.spec.containers[0].resources.limits.memory).toBe('768Mi');
  });

  it('probes with redis-cli (exec) and adds the exporter sidecar on request', () => {
    const [main, exporter] = sts.spec.template.spec.containers;
    expect(main.livenessProbe.exec.command[2]).toBe('redis-cli -h 127.0.0.1 ping | grep -Eq "PONG|LOADING"');
    expect(main.readinessProbe.exec.command[2]).toBe('test "$(redis-cli -h 127.0.0.1 ping)" = PONG');
    expect(exporter.image).toBe('oliver006/redis_exporter:v1.67.0');
    expect(exporter.ports).toEqual([{ name: 'metrics', containerPort: 9121, protocol: 'TCP' }]);
    expect(synth().objects.find((o) => o.kind === 'StatefulSet').spec.template.spec.containers).toHaveLength(1);
  });

  it('has a PDB and a NetworkPolicy that admits the audit server only (and the scraper to the exporter)', () => {
    expect(get(objects, 'PodDisruptionBudget', 'redis').spec.selector.matchLabels).toEqual(redis.podLabels);
    const np = get(objects, 'NetworkPolicy', 'redis').spec;
    expect(np.ingress).toEqual([
      { from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'audit-server' } } }], ports: [{ protocol: 'TCP', port: 6379 }] },
      { from: [{ podSelector: {}, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ protocol: 'TCP', port: 9121 }] },
    ]);
  });

  it('opens no ingress at all when given no clients (an empty from would admit everyone)', () => {
    const np = synth({ clients: [] }).objects.find((o) => o.kind === 'NetworkPolicy');
    expect(np.spec.ingress).toEqual([]);
  });

  it('passes the schema and every policy rule', () => {
    expect(validateManifests(objects)).toEqual([]);
  });

  it('fails when maxMemoryMiB is too small', () => {
    expect(() => synth({ maxMemoryMiB: 8 })).toThrow('invalid maxMemoryMiB: 8 (expected an integer >= 16)');
  });

  it('fails when the image is not pinned', () => {
    expect(() => synth({ image: 'redis' })).toThrow(
      "invalid image: 'redis' (tag missing; expected a tag with a version number such as 1.2.3, or an @sha256 digest)",
    );
    expect(() => synth({ image: 'redis:7-alpine' })).toThrow(
      "invalid image: 'redis:7-alpine' (tag 7-alpine has no version number; expected a tag with a version number such as 1.2.3, or an @sha256 digest)",
    );
  });
});

// The generated redis.conf, start script and probes under a real redis-server.
const describeRedis = hasBinary('redis-server') && hasBinary('redis-cli') ? describe : describe.skip;
describeRedis('RedisCache under redis-server', () => {
  const password = `pa"ss\\word $x' 9f2c`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-cache-'));
  let port = 0;
  const { objects } = synth({ maxMemoryMiB: 64 });
  const container = objects.find((o) => o.kind === 'StatefulSet').spec.template.spec.containers[0];
  // Container paths → temporary directory; everything else is used exactly as synthesized.
  const relocate = (text: string) =>
    text
      .replaceAll('/run/redis/', `${dir}/run/`)
      .replaceAll('/etc/redis/', `${dir}/etc/`)
      .replace('dir /data', `dir ${dir}/data`);
  const cli = (args: string[], auth: string | null = password) =>
    run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], auth === null ? {} : { REDISCLI_AUTH: auth });
  const probe = (command: string, auth = password) =>
    run('sh', ['-c', command.replace('-h 127.0.0.1', `-h 127.0.0.1 -p ${port}`)], { REDISCLI_AUTH: auth }).status;

  beforeAll(async () => {
    port = await freePort();
    for (const sub of ['run', 'etc', 'data']) fs.mkdirSync(path.join(dir, sub));
    const conf = relocate(objects.find((o) => o.kind === 'ConfigMap').data['redis.conf'])
      .replace('port 6379', `port ${port}`)
      .replace('bind 0.0.0.0 -::*', 'bind 127.0.0.1');
    fs.writeFileSync(path.join(dir, 'etc', 'redis.conf'), conf);
    start('sh', ['-c', relocate(container.command[2])], { REDIS_PASSWORD: password });
    await waitUntil(() => cli(['ping']).stdout.trim() === 'PONG');
  }, 30_000);

  afterAll(async () => {
    await stopStarted();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('requires the password from the Secret, quotes and backslashes included', () => {
    expect(cli(['set', 'k', 'v'], null).stdout).toMatch(/NOAUTH/);
    expect(cli(['set', 'k', 'v']).stdout.trim()).toBe('OK');
  });

  it('writes the password file readable by its owner only', () => {
    expect(fs.statSync(path.join(dir, 'run', 'auth.conf')).mode & 0o777).toBe(0o600);
  });

  it('runs with noeviction, 64 MiB maxmemory and AOF fsynced every second', () => {
    expect(cli(['config', 'get', 'maxmemory-policy']).stdout.trim()).toBe('maxmemory-policy\nnoeviction');
    expect(cli(['config', 'get', 'maxmemory']).stdout.trim()).toBe(`maxmemory\n${64 * 1024 * 1024}`);
    expect(cli(['config', 'get', 'appendfsync']).stdout.trim()).toBe('appendfsync\neverysec');
    expect(cli(['info', 'persistence']).stdout).toMatch(/aof_enabled:1/);
  });

  it('passes its liveness and readiness probes, and readiness fails with a wrong password', () => {
    expect(probe(container.livenessProbe.exec.command[2])).toBe(0);
    expect(probe(container.readinessProbe.exec.command[2])).toBe(0);
    expect(probe(container.readinessProbe.exec.command[2], 'wrong')).not.toBe(0);
  });
});
