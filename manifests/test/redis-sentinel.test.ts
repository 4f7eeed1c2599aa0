/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON, whose shape the assertions themselves check */
/**
 * RedisCache in Sentinel mode: the objects (three data nodes, three sentinels, budgets,
 * anti-affinity, policies, no secret in any manifest), and the rendered redis.conf, sentinel.conf
 * and start scripts run as they are under the real redis-server and redis-sentinel: a group
 * forms, the primary is SIGKILLed, the sentinels promote a replica, and the killed node and a
 * restarted sentinel find the new primary through the start scripts. Once in plain text and once
 * with TLS only (a CA and certificate made with openssl).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Testing } from 'cdk8s';
import { RedisCache, RedisMode } from '../src/redis-cache';
import type { RedisCacheProps } from '../src/redis-cache';
import { validateManifests } from '../src/validate';
import { hasBinary, run, start, stopStarted, waitUntil } from './support/processes';

jest.setTimeout(180_000);

function synth(props: RedisCacheProps = {}): { objects: any[]; redis: RedisCache } {
  const chart = Testing.chart();
  const redis = new RedisCache(chart, 'Redis', { mode: RedisMode.SENTINEL, ...props });
  return { objects: Testing.synth(chart), redis };
}
const get = (objects: any[], kind: string, name: string): any => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};

describe('RedisCache in Sentinel mode', () => {
  const { objects, redis } = synth({ exporterEnabled: true });
  const data = get(objects, 'StatefulSet', 'redis');
  const sentinels = get(objects, 'StatefulSet', 'redis-sentinel');
  const config = get(objects, 'ConfigMap', 'redis-config').data;

  it('matches the snapshot', () => {
    expect(objects).toMatchSnapshot();
  });

  it('runs three data nodes and three sentinels, never two of a kind on one node', () => {
    for (const sts of [data, sentinels]) {
      expect(sts.spec.replicas).toBe(3);
      const [term] = sts.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution;
      expect(term).toEqual({ labelSelector: { matchLabels: sts.spec.selector.matchLabels }, topologyKey: 'kubernetes.io/hostname' });
      // Members resolve each other's stable names while they start.
      expect(get(objects, 'Service', `${sts.metadata.name}-headless`).spec.publishNotReadyAddresses).toBe(true);
      expect(get(objects, 'PodDisruptionBudget', sts.metadata.name).spec).toMatchObject({ maxUnavailable: 1, selector: sts.spec.selector });
    }
    expect(data.spec.podManagementPolicy).toBe('OrderedReady');
    expect(sentinels.spec.podManagementPolicy).toBe('Parallel');
    expect(sentinels.spec.volumeClaimTemplates).toBeUndefined();
  });

  it('exposes the sentinels, the master name, their password and their peer for the server', () => {
    expect(redis.sentinels).toEqual([0, 1, 2].map((i) => `redis-sentinel-${i}.redis-sentinel-headless.smedrec-audit.svc.cluster.local:26379`));
    expect([redis.masterName, redis.sentinelPasswordSecret, redis.mode]).toEqual(['audit', { secretName: 'redis-credentials', key: 'sentinel-password' }, 'sentinel']);
    expect(redis.sentinelPeer).toEqual({ podLabels: get(objects, 'StatefulSet', 'redis-sentinel').spec.selector.matchLabels, namespace: 'smedrec-audit', port: 26379 });
  });

  it('keeps noeviction and AOF, and no password in the ConfigMap: every secret comes from secretKeyRef', () => {
    expect(config['redis.conf'].split('\n')).toEqual(expect.arrayContaining(['maxmemory-policy noeviction', 'appendonly yes', 'include /run/redis/runtime.conf']));
    expect(Object.values(config).join('\n')).not.toMatch(/requirepass [^%]/);
    for (const sts of [data, sentinels]) {
      for (const c of sts.spec.template.spec.containers) {
        for (const e of c.env.filter((x: any) => /PASSWORD|AUTH/.test(x.name))) expect(e.valueFrom.secretKeyRef).toBeDefined();
      }
    }
  });

  it('admits clients, replication and the sentinels, and nothing else', () => {
    const policy = get(objects, 'NetworkPolicy', 'redis-sentinel').spec;
    expect(policy.ingress).toEqual([
      {
        from: [
          { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'audit-server' } } },
          { podSelector: { matchLabels: data.spec.selector.matchLabels } },
          { podSelector: { matchLabels: sentinels.spec.selector.matchLabels } },
        ],
        ports: [{ protocol: 'TCP', port: 26379 }],
      },
    ]);
    expect(get(objects, 'NetworkPolicy', 'redis').spec.egress.map((r: any) => r.ports.map((p: any) => p.port))).toEqual([[53, 53], [6379], [26379]]);
  });

  it('passes the schema and every policy rule, with and without TLS', () => {
    expect(validateManifests(objects)).toEqual([]);
    expect(validateManifests(synth({ tlsSecretName: 'redis-tls', exporterEnabled: true }).objects)).toEqual([]);
  });

  it('refuses a quorum larger than the group and a master name sentinel.conf cannot carry', () => {
    expect(() => synth({ sentinel: { quorum: 4 } })).toThrow('invalid sentinel.quorum: 4 (expected at most 3, the number of sentinels)');
    expect(() => synth({ sentinel: { masterName: 'a b' } })).toThrow("invalid sentinel.masterName: 'a b'");
  });
});

// ---- the rendered files under the real binaries -------------------------------------------------

const haveBinaries = ['redis-server', 'redis-sentinel', 'redis-cli', 'openssl', 'timeout'].every(hasBinary);
const describeReal = haveBinaries ? describe.each([false, true]) : describe.skip.each([false, true]);

/** A CA and a certificate naming `ips`, as cert-manager would write them into a kubernetes.io/tls Secret. */
function makeTls(dir: string, ips: string[]): void {
  const sh = (cmd: string) => {
    const r = run('sh', ['-c', cmd], {}, dir);
    if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  };
  sh('openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "/CN=test-ca" 2>/dev/null');
  fs.writeFileSync(path.join(dir, 'san.cnf'), `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\n`);
  sh('openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj "/CN=redis" 2>/dev/null');
  sh('openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days 1 -extfile san.cnf 2>/dev/null');
}

describeReal('Sentinel group under redis-server and redis-sentinel (tls: %s)', (tls) => {
  const password = `da"ta\\pw $x' ${Math.random().toString(36).slice(2)}`;
  const sentinelPassword = `sen"tinel\\pw ${Math.random().toString(36).slice(2)}`;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-sentinel-'));
  // Three loopback addresses stand in for the pods' DNS names; every member keeps its real port.
  const block = `127.${10 + Math.floor(Math.random() * 200)}.${10 + Math.floor(Math.random() * 200)}`;
  const ips = [1, 2, 3].map((i) => `${block}.${i}`);
  const { objects } = synth({ tlsSecretName: tls ? 'redis-tls' : undefined, sentinel: { downAfterMilliseconds: 1000, failoverTimeoutMilliseconds: 5000 } });
  const config: Record<string, string> = objects.find((o) => o.kind === 'ConfigMap').data;
  const containerOf = (sts: string) => objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === sts).spec.template.spec.containers[0];
  const dataContainer = containerOf('redis');
  const sentinelContainer = containerOf('redis-sentinel');
  const procs = new Map<string, ChildProcess>();

  /** DNS names of the manifests → the loopback addresses. */
  const hosts = (text: string, pod: string) =>
    text
      .replaceAll('$(POD_NAME)', pod)
      .replace(/redis(-sentinel)?-(\d)\.redis(-sentinel)?-headless\.smedrec-audit\.svc\.cluster\.local/g, (_m, _s, i: string) => ips[Number(i)]!);
  /** Container paths → the member's directory; the bind address → its loopback address. */
  const relocate = (text: string, member: string, ip: string) =>
    text
      .replaceAll('/etc/redis-tls', path.join(root, 'tls'))
      .replaceAll('/etc/redis', path.join(member, 'etc'))
      .replaceAll('/run/redis', path.join(member, 'run'))
      .replace('dir /data', `dir ${path.join(member, 'data')}`)
      .replace('bind 0.0.0.0 -::*', `bind ${ip}`);
  /** The container's environment as the kubelet would give it to pod `pod`. */
  const envOf = (container: any, pod: string): Record<string, string> => {
    const secrets: Record<string, string> = { password, 'sentinel-password': sentinelPassword };
    return Object.fromEntries(
      container.env.map((e: any) => [e.name, e.valueFrom?.secretKeyRef ? secrets[e.valueFrom.secretKeyRef.key] : e.valueFrom?.fieldRef ? pod : hosts(e.value, pod)]),
    );
  };
  const launch = (kind: 'redis' | 'redis-sentinel', i: number) => {
    const member = path.join(root, `${kind}-${i}`);
    for (const sub of ['etc', 'run', 'data']) fs.mkdirSync(path.join(member, sub), { recursive: true });
    for (const [file, text] of Object.entries(config)) fs.writeFileSync(path.join(member, 'etc', file), relocate(text, member, ips[i]!));
    const container = kind === 'redis' ? dataContainer : sentinelContainer;
    const script = relocate(container.command[1], member, ips[i]!);
    procs.set(`${kind}-${i}`, start(container.command[0], [script], envOf(container, `${kind}-${i}`)));
  };
  const tlsArgs = () => (tls ? ['--tls', '--cacert', path.join(root, 'tls', 'ca.crt')] : []);
  const cli = (ip: string, port: number, auth: string, ...args: string[]) =>
    run('redis-cli', ['-h', ip, '-p', String(port), ...tlsArgs(), ...args], { REDISCLI_AUTH: auth }).stdout.trim();
  const node = (i: number, ...args: string[]) => cli(ips[i]!, 6379, password, ...args);
  const sentinel = (i: number, ...args: string[]) => cli(ips[i]!, 26379, sentinelPassword, ...args);
  const primaryOf = (i: number) => sentinel(i, 'sentinel', 'get-master-addr-by-name', 'audit').split('\n')[0];
  /** A probe command of a container, run as the kubelet would (its env, the member's address). */
  const probe = (container: any, which: string, i: number, pod: string) => {
    const command: string = relocate(container[which].exec.command[2], path.join(root, pod), ips[i]!).replace('-h 127.0.0.1', `-h ${ips[i]!}`);
    return run('sh', ['-c', command], envOf(container, pod)).status;
  };
  const kill = async (name: string) => {
    const p = procs.get(name)!;
    const exited = new Promise((resolve) => p.once('exit', resolve));
    p.kill('SIGKILL');
    await exited;
  };

  beforeAll(async () => {
    if (tls) {
      fs.mkdirSync(path.join(root, 'tls'));
      makeTls(path.join(root, 'tls'), ips);
    }
    for (const i of [0, 1, 2]) {
      launch('redis', i);
      await waitUntil(() => node(i, 'ping') === 'PONG');
    }
    for (const i of [0, 1, 2]) launch('redis-sentinel', i);
    for (const i of [0, 1, 2]) {
      await waitUntil(() => {
        const lines = sentinel(i, 'sentinel', 'master', 'audit').split('\n');
        const field = (name: string) => Number(lines[lines.indexOf(name) + 1]);
        return field('num-slaves') === 2 && field('num-other-sentinels') === 2;
      }, 600);
    }
  });

  afterAll(async () => {
    await stopStarted();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('forms a group: pod 0 primary, two replicas linked, noeviction everywhere, passwords required', () => {
    expect([0, 1, 2].map(primaryOf)).toEqual([ips[0], ips[0], ips[0]]);
    for (const i of [1, 2]) expect(node(i, 'info', 'replication')).toMatch(/master_link_status:up/);
    for (const i of [0, 1, 2]) expect(node(i, 'config', 'get', 'maxmemory-policy')).toBe('maxmemory-policy\nnoeviction');
    expect(cli(ips[0]!, 6379, 'wrong', 'set', 'k', 'v')).toMatch(/WRONGPASS|NOAUTH/);
    expect(cli(ips[0]!, 26379, 'wrong', 'ping')).toMatch(/WRONGPASS|NOAUTH/);
    // With TLS nothing answers in plain text, neither a node nor a sentinel.
    const plain = (port: number, auth: string) => run('redis-cli', ['-h', ips[0]!, '-p', String(port), 'ping'], { REDISCLI_AUTH: auth }).stdout.trim();
    expect([plain(6379, password), plain(26379, sentinelPassword)].map((answer) => answer === 'PONG')).toEqual([!tls, !tls]);
  });

  it('passes the probes of data nodes and sentinels', () => {
    for (const i of [0, 1, 2]) {
      expect([probe(dataContainer, 'livenessProbe', i, `redis-${i}`), probe(dataContainer, 'readinessProbe', i, `redis-${i}`)]).toEqual([0, 0]);
      expect([probe(sentinelContainer, 'livenessProbe', i, `redis-sentinel-${i}`), probe(sentinelContainer, 'readinessProbe', i, `redis-sentinel-${i}`)]).toEqual([0, 0]);
    }
  });

  it('fails over when the primary dies; the restarted node and a restarted sentinel follow the new primary', async () => {
    expect(node(0, 'set', 'before-failover', 'kept')).toBe('OK');
    await waitUntil(() => node(1, 'get', 'before-failover') === 'kept' && node(2, 'get', 'before-failover') === 'kept');
    await kill('redis-0');
    await waitUntil(() => primaryOf(1) !== ips[0] && primaryOf(1) !== '', 600);
    const promoted = ips.indexOf(primaryOf(1)!);
    expect([1, 2]).toContain(promoted);
    expect(node(promoted, 'info', 'replication')).toMatch(/role:master/);
    expect(node(promoted, 'get', 'before-failover')).toBe('kept');

    launch('redis', 0);
    await waitUntil(() => /master_link_status:up/.test(node(0, 'info', 'replication')), 600);
    expect(node(0, 'info', 'replication')).toMatch(new RegExp(`role:slave\\r?\\nmaster_host:${ips[promoted]!.replaceAll('.', '\\.')}`));

    await kill('redis-sentinel-0');
    launch('redis-sentinel', 0);
    await waitUntil(() => primaryOf(0) === ips[promoted], 600);
    expect(fs.readFileSync(path.join(root, 'redis-sentinel-0', 'run', 'sentinel.conf'), 'utf8')).toMatch(new RegExp(`sentinel monitor audit ${ips[promoted]!.replaceAll('.', '\\.')} 6379 2`));
  });
});
