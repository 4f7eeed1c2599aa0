/**
 * The compose files as `docker-compose config` renders them, and a compose service's container
 * command translated to this host: the tests start redis-server and PostgreSQL's init script
 * exactly as the compose file says (entrypoint, command, environment, mounted files, secrets),
 * with only container paths mapped to host paths. Without a Docker engine this is as close to
 * `docker-compose up` as a test can get, and a change to the compose file changes what runs.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT, describeResult, requireBinary, run } from './tools';
import type { CommandResult } from './tools';

// Untyped YAML printed by `docker-compose config`; callers check its shape.
export type Yaml = any;
/** One service of a rendered compose file. */
export type Service = Record<string, Yaml>;
/** A rendered compose file. */
export interface ComposeModel {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  networks?: Record<string, Yaml>;
  secrets?: Record<string, { file?: string }>;
}

export const COMPOSE_DIR = join(REPO_ROOT, 'compose');

/** The compose files of the repository. */
export const COMPOSE_FILES = {
  dev: join(COMPOSE_DIR, 'docker-compose.yml'),
  prod: join(COMPOSE_DIR, 'docker-compose.prod.yml'),
  infisical: join(COMPOSE_DIR, 'infra', 'infisical.yml'),
  inngest: join(COMPOSE_DIR, 'infra', 'inngest.yml'),
  openobserve: join(COMPOSE_DIR, 'infra', 'openobserve.yml'),
  pgvector: join(COMPOSE_DIR, 'infra', 'pgvector-electric.yml'),
} as const;
export type ComposeFileKey = keyof typeof COMPOSE_FILES;

/** A volume in either syntax; docker-compose v1 prints `source:target[:mode]` strings. */
export interface Mount {
  source: string;
  target: string;
  read_only: boolean;
}

/** The volumes of a service. */
export function mounts(service: Service): Mount[] {
  return ((service.volumes ?? []) as (string | Record<string, Yaml>)[]).map((v) => {
    if (typeof v !== 'string')
      return { source: String(v.source), target: String(v.target), read_only: v.read_only === true };
    const [source = '', target = '', mode = 'rw'] = v.split(':');
    return { source, target, read_only: mode.split(',').includes('ro') };
  });
}

/** The container path of each secret a service receives (`/run/secrets/<target or source>`). */
export function serviceSecrets(service: Service): { source: string; path: string }[] {
  return ((service.secrets ?? []) as (string | { source: string; target?: string })[]).map((s) => {
    const source = typeof s === 'string' ? s : s.source;
    const target = typeof s === 'string' ? s : (s.target ?? s.source);
    return { source, path: target.startsWith('/') ? target : `/run/secrets/${target}` };
  });
}

/**
 * The variables of an .env.example: as written (what `cp .env.example .env` gives an operator),
 * or with every empty value filled by a random hex string (`fillEmpty`).
 */
export function exampleEnv(example: string, { fillEmpty = false } = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(example, 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (match) env[match[1]!] = match[2] === '' && fillEmpty ? randomBytes(16).toString('hex') : match[2]!;
  }
  return env;
}

/** Writes variables as an env file that `docker-compose --env-file` reads. */
export function writeEnvFile(file: string, env: Record<string, string>): string {
  writeFileSync(
    file,
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  );
  return file;
}

/** `docker-compose --env-file ENV -f FILE config`, with only PATH from the caller's environment. */
export function composeConfig(file: string, envFile: string): CommandResult {
  return run(
    requireBinary('docker-compose', 'docker-compose'),
    ['--env-file', envFile, '-f', file, 'config'],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    },
  );
}

/** The rendered model; throws with docker-compose's output when it refuses the file. */
export function renderCompose(file: string, envFile: string): ComposeModel {
  const result = composeConfig(file, envFile);
  if (result.status !== 0) throw new Error(describeResult(`docker-compose config ${file}`, result));
  return parse(result.stdout) as ComposeModel;
}

/** A service's container command and environment, translated to this host. */
export interface HostCommand {
  /** `entrypoint` + `command`; empty when the image's own ENTRYPOINT/CMD run. */
  readonly argv: string[];
  readonly env: Record<string, string>;
  /** Container path → host path, longest first. */
  readonly paths: [string, string][];
}

/**
 * Translates a service's `entrypoint` + `command` and `environment` to this host: every container
 * path of a bind mount, a secret or a tmpfs is replaced by its host counterpart (`override` takes
 * precedence: a templated copy of a mounted file, the test's secret files, its temp directories).
 * A container path with no host counterpart is an error, so nothing silently points nowhere.
 */
export function hostCommand(
  model: ComposeModel,
  serviceName: string,
  override: Record<string, string>,
): HostCommand {
  const service = model.services[serviceName];
  if (!service) throw new Error(`no service ${serviceName} in the compose model`);
  const paths = new Map<string, string>();
  for (const mount of mounts(service)) {
    if (mount.source.startsWith('/')) paths.set(mount.target, mount.source);
  }
  for (const secret of serviceSecrets(service)) {
    const file = model.secrets?.[secret.source]?.file;
    if (file !== undefined) paths.set(secret.path, file);
  }
  for (const [target, source] of Object.entries(override)) paths.set(target, source);
  for (const tmpfs of (service.tmpfs ?? []) as string[]) {
    const target = tmpfs.split(':')[0]!;
    if (!paths.has(target))
      throw new Error(`${serviceName}: no host directory given for the tmpfs ${target}`);
  }
  const ordered = [...paths.entries()].sort((a, b) => b[0].length - a[0].length);
  // One pass over each string, longest path first, so a host path is never translated again.
  const alternatives = ordered.map(([target]) => target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(`(?<![\\w./-])(${alternatives.join('|')})(?![\\w.-])`, 'g');
  // `docker-compose config` prints `$$` (a literal `$` in the container) still escaped.
  const translate = (value: string) =>
    value.replace(pattern, (target) => paths.get(target)!).replaceAll('$$', '$');
  const asList = (v: Yaml): string[] =>
    v === undefined || v === null ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
  const argv = [...asList(service.entrypoint), ...asList(service.command)].map(translate);
  const env: Record<string, string> = {};
  const environment = (service.environment ?? {}) as Record<string, Yaml>;
  for (const [name, value] of Object.entries(environment)) env[name] = translate(String(value ?? ''));
  return { argv, env, paths: ordered };
}

/** Creates `dir` (and parents) and returns it. */
export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}
