/**
 * The top-level Dockerfile and .dockerignore, checked for the properties the issue lists (no
 * Docker engine runs here, so the file itself is the unit under test): multi-stage on
 * node:22-alpine, npm cache mount, production dependencies only in the runner, USER 1001,
 * HEALTHCHECK on /health, exec-form CMD/ENTRYPOINT, OCI labels, nothing writable outside /tmp,
 * and a build context that can never carry secrets or host node_modules.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { REPO_ROOT } from './support/tools';

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  from: string;
  name: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions, joining `\` continuations and dropping comments. */
function parseDockerfile(text: string): { globalArgs: Instruction[]; stages: Stage[] } {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    // Comment lines are dropped, also inside a continuation (BuildKit ignores them there too).
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim() !== '') logical.push(current.trim());
    current = '';
  }
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^(\w+)\s+(.*)$/s.exec(line);
    if (!match) continue;
    const instruction = { keyword: match[1]!.toUpperCase(), args: match[2]!.trim() };
    if (instruction.keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      stages.push({ from: from?.[1] ?? '', name: from?.[2] ?? String(stages.length), instructions: [] });
    } else if (stages.length === 0) {
      globalArgs.push(instruction);
    } else {
      stages[stages.length - 1]!.instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

const dockerfile = parseDockerfile(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const stage = (name: string): Stage => {
  const found = dockerfile.stages.find((s) => s.name === name);
  if (!found) throw new Error(`Dockerfile has no stage "${name}"`);
  return found;
};
const runner = dockerfile.stages[dockerfile.stages.length - 1]!;
const all = (s: Stage, keyword: string) => s.instructions.filter((i) => i.keyword === keyword);
const isExecForm = (args: string) => {
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((p) => typeof p === 'string');
  } catch {
    return false;
  }
};

describe('Dockerfile', () => {
  it('builds base → deps → build → prod-deps → runner, the runner being the final stage', () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual([
      'base',
      'deps',
      'dev',
      'build',
      'prod-deps',
      'runner',
    ]);
    expect(runner.name).toBe('runner');
    expect(stage('deps').from).toBe('base');
    expect(stage('build').from).toBe('deps');
    expect(stage('prod-deps').from).toBe('base');
    expect(runner.from).toBe('base');
  });

  it('starts from a pinned node:22-alpine image, never latest', () => {
    const nodeImage = dockerfile.globalArgs.find(
      (a) => a.keyword === 'ARG' && a.args.startsWith('NODE_IMAGE='),
    );
    expect(nodeImage?.args).toMatch(/^NODE_IMAGE=node:22-alpine[\d.]*$/);
    expect(stage('base').from).toBe('${NODE_IMAGE}');
    const stageNames = dockerfile.stages.map((s) => s.name);
    for (const s of dockerfile.stages) {
      // Each FROM is an earlier stage, the pinned ARG, or an explicitly tagged image.
      const ok =
        stageNames.includes(s.from) ||
        s.from === '${NODE_IMAGE}' ||
        /^[^:\s]+:(?!latest$)[\w.-]+$/.test(s.from);
      expect({ stage: s.name, from: s.from, ok }).toEqual({ stage: s.name, from: s.from, ok: true });
    }
  });

  it('applies security updates and creates the unprivileged user 1001 in the base stage', () => {
    const runs = all(stage('base'), 'RUN')
      .map((r) => r.args)
      .join('\n');
    expect(runs).toMatch(/apk upgrade --no-cache/);
    expect(runs).toMatch(/addgroup -S -g 1001 /);
    expect(runs).toMatch(/adduser -S .*-u 1001 /);
  });

  it('installs dependencies with an npm cache mount and the lockfile (npm ci)', () => {
    const install = all(stage('deps'), 'RUN')
      .map((r) => r.args)
      .join('\n');
    expect(install).toMatch(/--mount=type=cache,target=\/root\/\.npm/);
    expect(install).toMatch(/npm ci /);
  });

  it('builds with `npm run build -w server` and ships only production dependencies', () => {
    expect(all(stage('build'), 'RUN').map((r) => r.args)).toContain('npm run build -w server');
    const prodInstall = all(stage('prod-deps'), 'RUN')
      .map((r) => r.args)
      .join('\n');
    expect(prodInstall).toMatch(/npm ci .*--omit=dev/);
    const copies = all(runner, 'COPY').map((c) => c.args);
    expect(copies).toContain('--from=prod-deps /app/node_modules ./node_modules');
    expect(copies).toContain('--from=build /app/server/dist server/dist');
    expect(copies).toContain('server/migrations server/migrations');
    // Nothing from the deps stage (dev dependencies) reaches the runner.
    expect(copies.some((c) => c.includes('--from=deps'))).toBe(false);
  });

  it('runs as user 1001, never root, and leaves shipped files owned by root', () => {
    const users = all(runner, 'USER').map((u) => u.args);
    expect(users[users.length - 1]).toBe('1001:1001');
    expect(users).not.toContain('root');
    expect(users).not.toContain('0');
    for (const copy of all(runner, 'COPY')) expect(copy.args).not.toMatch(/--chown|--chmod/);
  });

  it('writes only under /tmp (read-only root filesystem)', () => {
    const env = all(runner, 'ENV')
      .map((e) => e.args)
      .join(' ');
    expect(env).toMatch(/AUDIT_DATA_DIR=\/tmp\//);
    expect(env).toMatch(/HOME=\/tmp/);
    expect(env).toMatch(/NODE_ENV=production/);
    expect(all(runner, 'VOLUME')).toEqual([]);
  });

  it('has a HEALTHCHECK against /health in exec form', () => {
    const checks = all(runner, 'HEALTHCHECK');
    expect(checks).toHaveLength(1);
    const check = checks[0]!.args;
    expect(check).toMatch(/--interval=\d+s/);
    expect(check).toMatch(/--timeout=\d+s/);
    const cmd = /CMD\s+(\[.*\])$/s.exec(check)?.[1] ?? '';
    expect(isExecForm(cmd)).toBe(true);
    expect(cmd).toContain('/health');
  });

  it('starts node in exec form under tini so SIGTERM reaches the server', () => {
    const entry = all(runner, 'ENTRYPOINT').map((e) => e.args);
    const cmd = all(runner, 'CMD').map((c) => c.args);
    expect(entry).toHaveLength(1);
    expect(cmd).toHaveLength(1);
    expect(isExecForm(entry[0]!)).toBe(true);
    expect(isExecForm(cmd[0]!)).toBe(true);
    expect(JSON.parse(entry[0]!)).toEqual(['/sbin/tini', '--']);
    expect(JSON.parse(cmd[0]!)).toEqual(['node', 'server/dist/main.js']);
    expect(all(runner, 'STOPSIGNAL').map((s) => s.args)).toEqual(['SIGTERM']);
  });

  it('carries the OCI image labels', () => {
    const labels = all(runner, 'LABEL')
      .map((l) => l.args)
      .join(' ');
    for (const key of ['title', 'description', 'source', 'version', 'revision', 'created', 'licenses']) {
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
    }
  });

  it('exposes the server port 3000', () => {
    expect(all(runner, 'EXPOSE').map((e) => e.args)).toEqual(['3000']);
  });
});

/**
 * .dockerignore semantics (moby patternmatcher): patterns are matched against the path and each
 * of its parent directories; `**` spans directories; `!` re-includes; the last matching rule wins.
 */
function parseIgnore(text: string): { negate: boolean; regex: RegExp }[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((line) => {
      const negate = line.startsWith('!');
      const pattern = (negate ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
      let source = '';
      for (let i = 0; i < pattern.length; i++) {
        const ch = pattern[i]!;
        if (ch === '*' && pattern[i + 1] === '*') {
          // `**/` matches zero or more directories; a trailing `**` matches everything below.
          if (pattern[i + 2] === '/') {
            source += '(?:.*/)?';
            i += 2;
          } else {
            source += '.*';
            i += 1;
          }
        } else if (ch === '*') source += '[^/]*';
        else if (ch === '?') source += '[^/]';
        else source += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, regex: new RegExp(`^${source}$`) };
    });
}

function isExcluded(rules: { negate: boolean; regex: RegExp }[], path: string): boolean {
  const parts = path.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const rule of rules) {
    if (candidates.some((c) => rule.regex.test(c))) excluded = !rule.negate;
  }
  return excluded;
}

describe('.dockerignore', () => {
  const rules = parseIgnore(readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8'));
  const segment = fc.stringMatching(/^[a-z][a-z0-9_-]{0,11}$/);
  const dirs = fc.array(segment, { maxLength: 4 });

  it('sends every file the Dockerfile copies', () => {
    for (const path of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'server/package.json',
      'server/tsconfig.json',
      'server/tsconfig.build.json',
      'server/src/main.ts',
      'server/src/ledger/hash.ts',
      'server/migrations/0001_core_schema.sql',
      'manifests/package.json',
    ]) {
      expect({ path, excluded: isExcluded(rules, path) }).toEqual({ path, excluded: false });
    }
  });

  it('sends any server source file, at any depth', () => {
    fc.assert(
      fc.property(
        dirs,
        segment,
        (d, name) => !isExcluded(rules, ['server', 'src', ...d, `${name}.ts`].join('/')),
      ),
    );
  });

  it('never sends node_modules, builds, env files, keys or tests, wherever they are', () => {
    const secretish = fc.oneof(
      fc.constant('node_modules/x/index.js'),
      fc.constant('dist/main.js'),
      fc.constant('.env'),
      segment.map((s) => `.env.${s}`),
      segment.map((s) => `${s}.pem`),
      segment.map((s) => `${s}.key`),
      segment.map((s) => `${s}.test.ts`),
    );
    const roots = fc.constantFrom('', 'server/', 'server/src/', 'compose/', 'manifests/', 'scripts/');
    fc.assert(
      fc.property(roots, dirs, secretish, (root, d, leaf) =>
        isExcluded(rules, `${root}${[...d, leaf].join('/')}`),
      ),
    );
  });

  it('never sends anything outside the allow-list (docs, compose files, scripts, .git)', () => {
    const top = fc.constantFrom(
      '.git',
      'docs',
      'compose',
      'scripts',
      'dist-k8s',
      'data',
      'bench',
      'manifests/src',
      'server/test',
    );
    fc.assert(
      fc.property(top, dirs, segment, (t, d, leaf) => isExcluded(rules, [t, ...d, `${leaf}.txt`].join('/'))),
    );
  });
});
