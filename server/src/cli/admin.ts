#!/usr/bin/env node
/**
 * Operator CLI against the configured database (same environment as the server):
 *
 *   audit-admin api-keys create --name NAME --role admin|auditor|compliance_officer|developer|producer [--org ID]
 *   audit-admin api-keys list [--org ID]
 *   audit-admin api-keys revoke --id KEY_ID [--org ID]
 *   audit-admin organizations create --name NAME      (prints the new org's admin key once)
 *   audit-admin users create --email EMAIL --name NAME  (reads the password from stdin)
 *   audit-admin users list
 *   audit-admin users disable --email EMAIL            (ends every session at once)
 *   audit-admin users revoke-sessions --email EMAIL
 *   audit-admin members add --email EMAIL --role ROLE [--org ID]
 *   audit-admin members remove --email EMAIL [--org ID]
 *   audit-admin members list [--org ID]
 *   audit-admin verify-ledger [--organization ID] [--key VERIFIER_KEY]…
 *   audit-admin jobs list [--queue NAME] [--state waiting|delayed|active|completed|failed]
 *   audit-admin jobs retry --queue NAME [--id JOB_ID]      (failed jobs back to waiting)
 *   audit-admin jobs clean --queue NAME [--state completed|failed] [--grace-seconds N]
 *   audit-admin privacy rotate-key [--org ID]          (new pseudonyms and keyed hashes; docs/privacy.md §7)
 *   audit-admin retention run                          (one pass: archive, erase, drop; docs/privacy.md §6)
 *       (exit 0 only when every ledger verifies with the trusted keys: --key, the verifier key of
 *        AUDIT_SIGNING_KEY, AUDIT_VERIFIER_KEY, AUDIT_TRUSTED_VERIFIER_KEYS; never the database's)
 *
 * The api-keys commands can also act through a running server's API instead of the database:
 *
 *   audit-admin api-keys create|list|revoke … --url http://127.0.0.1:3000 --api-key-file FILE
 *
 * (FILE holds an admin key; `-` reads it from stdin; the organization is the key's). With the
 * embedded default (no DATABASE_URL) the data directory belongs to the server while it runs: the
 * CLI refuses (exit 3) rather than open it beside the server, and names the server to use with
 * `--url`. With PostgreSQL a revocation reaches running servers within the API key look-up cache's
 * lifetime (1 s), at once with a shared Redis; through `--url` it takes effect on that server at once.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { invalidateApiKeys } from '../api/cached-services';
import { ApiKeyService } from '../auth/api-keys';
import { createOrganization } from '../auth/organizations';
import { API_KEY_ROLES, ROLES, isRole, type ApiKeyRole } from '../auth/permissions';
import { openRedis, redisEndpointOf } from '../cache/redis';
import { createLogger } from '../observability/logger';
import { createIdentity } from '../runtime';
import { ConfigError, loadConfig, type Config } from '../config';
import { openDatabase, type Database } from '../db/client';
import { DataDirInUseError } from '../db/data-dir-lock';
import { organizations } from '../db/schema';
import { currentSchemaVersion, expectedSchemaVersion, migrate } from '../db/migrate';
import { verifyLedgers } from '../audit/verify-ledger';
import { jobsCommand, JobsUsageError } from './jobs-command';
import { retentionCommand, RetentionUsageError } from './retention-command';
import { parseSignerKey, parseVerifierKey, type Verifier } from '../ledger';
import { PrivacyKeyring } from '../privacy/keys';

const USAGE = `usage:
  audit-admin api-keys create --name NAME --role ${API_KEY_ROLES.join('|')} [--org ID]
  audit-admin api-keys list [--org ID]
  audit-admin api-keys revoke --id KEY_ID [--org ID]
  audit-admin api-keys create|list|revoke … --url SERVER_URL --api-key-file FILE|-   (through a running server)
  audit-admin organizations create --name NAME
  audit-admin users create --email EMAIL --name NAME   (password on stdin)
  audit-admin users list
  audit-admin users disable --email EMAIL
  audit-admin users revoke-sessions --email EMAIL
  audit-admin members add --email EMAIL --role ${ROLES.join('|')} [--org ID]
  audit-admin members remove --email EMAIL [--org ID]
  audit-admin members list [--org ID]
  audit-admin verify-ledger [--organization ID] [--key VERIFIER_KEY]...
  audit-admin jobs list [--queue NAME] [--state waiting|delayed|active|completed|failed]
  audit-admin jobs retry --queue NAME [--id JOB_ID]
  audit-admin jobs clean --queue NAME [--state completed|failed] [--grace-seconds N]
  audit-admin privacy rotate-key [--org ID]
  audit-admin retention run`;

class UsageError extends Error {}

/** Exit status when the embedded data directory belongs to a running server. */
const EXIT_IN_USE = 3;

/** The admin key for `--url`: from a file, or stdin for `-` (never a flag: argv is visible to all). */
function readApiKey(file: string | undefined): string {
  if (!file) throw new UsageError('--url needs --api-key-file FILE (or - for stdin) holding an admin API key');
  const key = fs.readFileSync(file === '-' ? 0 : file, 'utf8').trim();
  if (key === '') throw new UsageError('the API key file is empty');
  return key;
}

/** api-keys create|list|revoke through a running server's REST API (docs: README "API"). */
async function viaServer(base: string, key: string, command: string | undefined, values: { name?: string | undefined; role?: string | undefined; id?: string | undefined }, out: (s: string) => void): Promise<number> {
  let url: URL;
  try {
    url = new URL('/api/v1/api-keys', base);
  } catch {
    throw new UsageError(`--url is not a URL: ${base.slice(0, 200)}`);
  }
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  let res: Response;
  if (command === 'create') {
    if (!values.name) throw new UsageError('--name is required');
    if (!API_KEY_ROLES.includes(values.role as ApiKeyRole)) throw new UsageError(`--role must be one of ${API_KEY_ROLES.join(', ')}`);
    res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ name: values.name, role: values.role }) });
  } else if (command === 'list') {
    res = await fetch(url, { headers });
  } else if (command === 'revoke') {
    if (!values.id) throw new UsageError('--id is required');
    res = await fetch(new URL(`/api/v1/api-keys/${encodeURIComponent(values.id)}`, base), { method: 'DELETE', headers });
  } else {
    throw new UsageError(`unknown command: api-keys ${command ?? ''}`);
  }
  const text = await res.text();
  if (!res.ok) {
    let message = text.slice(0, 500);
    try {
      message = (JSON.parse(text) as { error: { message: string } }).error.message;
    } catch {
      /* not the API's error shape */
    }
    process.stderr.write(`audit-admin: the server answered ${res.status}: ${message}\n`);
    return 1;
  }
  out(JSON.stringify(JSON.parse(text), null, 2));
  return 0;
}

async function defaultOrg(database: Database, given: string | undefined): Promise<string> {
  if (given) return given;
  const rows = await database.db.select({ id: organizations.id }).from(organizations).orderBy(organizations.createdAt).limit(1);
  if (!rows[0]) throw new UsageError('no organization exists yet; start the server once or use "organizations create"');
  return rows[0].id;
}

/**
 * The verifier keys verify-ledger trusts: `--key` values and configuration only (the verifier key
 * of AUDIT_SIGNING_KEY, AUDIT_VERIFIER_KEY, AUDIT_TRUSTED_VERIFIER_KEYS), never the database.
 */
function trustedKeys(config: Config, given: string[]): Verifier[] {
  const keys = [
    ...given,
    ...(config.AUDIT_SIGNING_KEY ? [parseSignerKey(config.AUDIT_SIGNING_KEY.trim()).verifierKey] : []),
    ...(config.AUDIT_VERIFIER_KEY ? [config.AUDIT_VERIFIER_KEY] : []),
    ...config.AUDIT_TRUSTED_VERIFIER_KEYS,
  ];
  if (keys.length === 0) {
    throw new UsageError('no trusted key: pass --key VERIFIER_KEY or set AUDIT_VERIFIER_KEY / AUDIT_TRUSTED_VERIFIER_KEYS (the signing_keys table is never trusted)');
  }
  const verifiers: Verifier[] = [];
  for (const k of new Set(keys)) {
    try {
      verifiers.push(parseVerifierKey(k));
    } catch (err) {
      throw new UsageError(`not a verifier key (${(err as Error).message}): ${k.slice(0, 40)}`);
    }
  }
  return verifiers;
}

async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      role: { type: 'string' },
      org: { type: 'string' },
      organization: { type: 'string' },
      id: { type: 'string' },
      email: { type: 'string' },
      key: { type: 'string', multiple: true },
      url: { type: 'string' },
      'api-key-file': { type: 'string' },
      queue: { type: 'string' },
      state: { type: 'string' },
      'grace-seconds': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    out(USAGE);
    return values.help ? 0 : 2;
  }
  if (values.url !== undefined) {
    if (positionals[0] !== 'api-keys') throw new UsageError('--url is for the api-keys commands');
    return viaServer(values.url, readApiKey(values['api-key-file']), positionals[1], values, out);
  }
  // The CLI signs nothing but the checkpoints of `retention run` (with the servers' key, checked
  // there): it needs the database, and for verify-ledger only verifier keys.
  const config = loadConfig(undefined, { roleSecrets: false });
  // The job queues live in Redis: no database needed.
  if (positionals[0] === 'jobs') return jobsCommand(config, positionals[1], values, out);
  let database: Database;
  try {
    // With the embedded default this refuses while a server holds the data directory.
    database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATABASE_URL ? undefined : config.AUDIT_DATA_DIR });
  } catch (err) {
    if (!(err instanceof DataDirInUseError)) throw err;
    const through = err.holder.url ?? 'http://127.0.0.1:3000';
    process.stderr.write(
      `audit-admin: refused: ${err.message}, and a change made beside a running server would not reach it.\n` +
        `Stop the server first, or act through it: audit-admin ${positionals.join(' ')} … --url ${through} --api-key-file FILE (an admin key)\n`,
    );
    return EXIT_IN_USE;
  }
  try {
    // As the server does: migrate only where it owns the schema. In production the CLI connects as
    // the runtime role (no DDL), after the migrate role has brought the schema up to date.
    if (config.DATABASE_MIGRATE_ON_START || !config.DATABASE_URL) await migrate(database);
    else if ((await currentSchemaVersion(database)) !== expectedSchemaVersion()) {
      process.stderr.write('audit-admin: the database schema is not current; run the migrations first (AUDIT_ROLE=migrate)\n');
      return 1;
    }
    const keys = new ApiKeyService(database);
    const [group, command] = positionals;
    if (group === 'api-keys' && command === 'create') {
      if (!values.name) throw new UsageError('--name is required');
      if (!API_KEY_ROLES.includes(values.role as ApiKeyRole)) throw new UsageError(`--role must be one of ${API_KEY_ROLES.join(', ')}`);
      const created = await keys.create(await defaultOrg(database, values.org), values.name, values.role as ApiKeyRole);
      out(JSON.stringify(created, null, 2));
      return 0;
    }
    if (group === 'api-keys' && command === 'list') {
      out(JSON.stringify(await keys.list(await defaultOrg(database, values.org)), null, 2));
      return 0;
    }
    if (group === 'api-keys' && command === 'revoke') {
      if (!values.id) throw new UsageError('--id is required');
      await keys.revoke(await defaultOrg(database, values.org), values.id);
      // Running servers may hold the key's look-up in Redis: invalidate it there too.
      const redisEndpoint = redisEndpointOf(config);
      if (redisEndpoint && !(await invalidateApiKeys(redisEndpoint, config.CACHE_KEY_PREFIX, config.CACHE_TTL_SECONDS))) {
        process.stderr.write(`warning: could not reach Redis; running servers may accept the key for up to ${config.CACHE_TTL_SECONDS} s\n`);
      }
      out(JSON.stringify({ id: values.id, revoked: true }));
      return 0;
    }
    if (group === 'organizations' && command === 'create') {
      if (!values.name) throw new UsageError('--name is required');
      const org = await createOrganization(database, values.name);
      const admin = await keys.create(org.id, 'admin', 'admin');
      out(JSON.stringify({ organization: org, adminKey: admin.key }, null, 2));
      return 0;
    }
    if (group === 'users' || group === 'members') {
      // Sessions are revoked where the server keeps them: Redis when configured (the CLI signs no
      // cookies, so a missing AUTH_SECRET is replaced by a throw-away one).
      const redisEndpoint = redisEndpointOf(config);
      const redis = redisEndpoint ? openRedis(redisEndpoint) : null;
      try {
        // Warnings go to stderr: stdout carries only the JSON result.
        const logger = createLogger('warn', { write: (line: string) => process.stderr.write(line) });
        // It serves no request either: a base URL only keeps the library from warning that it has none.
        const identity = createIdentity({ ...config, NODE_ENV: 'development', AUTH_BASE_URL: config.AUTH_BASE_URL ?? 'http://127.0.0.1' }, database, redis, logger)!;
        const need = (v: string | undefined, flag: string) => {
          if (!v) throw new UsageError(`${flag} is required`);
          return v;
        };
        let result: unknown;
        if (group === 'users' && command === 'create') {
          const password = (await readStdin()).replace(/\r?\n$/, '');
          result = await identity.createUser({ email: need(values.email, '--email'), name: need(values.name, '--name'), password });
        } else if (group === 'users' && command === 'list') result = await identity.listUsers();
        else if (group === 'users' && command === 'disable') result = await identity.disableUser(need(values.email, '--email'));
        else if (group === 'users' && command === 'revoke-sessions') {
          const u = await identity.findUser(need(values.email, '--email'));
          await identity.revokeUserSessions(u.id);
          result = { userId: u.id, sessionsRevoked: true };
        } else if (group === 'members' && command === 'add') {
          if (!isRole(values.role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
          result = await identity.addMember(await defaultOrg(database, values.org), need(values.email, '--email'), values.role);
        } else if (group === 'members' && command === 'remove') result = await identity.removeMember(await defaultOrg(database, values.org), need(values.email, '--email'));
        else if (group === 'members' && command === 'list') result = await identity.listMembers(await defaultOrg(database, values.org));
        else throw new UsageError(`unknown command: ${positionals.join(' ')}`);
        out(JSON.stringify(result, null, 2));
        return 0;
      } finally {
        redis?.disconnect();
      }
    }
    if (group === 'privacy' && command === 'rotate-key') {
      const org = await defaultOrg(database, values.org);
      const version = await new PrivacyKeyring(database).rotate(org);
      out(JSON.stringify({ organizationId: org, keyVersion: version }));
      return 0;
    }
    if (group === 'retention') {
      // Warnings go to stderr: stdout carries only the JSON report.
      const logger = createLogger('warn', { write: (line: string) => process.stderr.write(line) });
      return await retentionCommand(config, database, command, out, logger);
    }
    if (group === 'verify-ledger') {
      const verifiers = trustedKeys(config, values.key ?? []);
      const organizationId = values.organization ?? values.org;
      const results = await verifyLedgers(database, { origin: config.AUDIT_LOG_ORIGIN, verifiers, ...(organizationId ? { organizationId } : {}) });
      const ok = results.every((r) => r.ok);
      out(JSON.stringify({ ok, trustedKeys: verifiers.map((v) => `${v.name}+${v.keyId.toString('hex')}`), organizations: results }, null, 2));
      for (const r of results.filter((x) => !x.ok)) {
        const f = r.failure!;
        const where = f.leafIndex !== null ? `leaf ${f.leafIndex}` : f.treeSize !== null ? `checkpoint ${f.treeSize}` : f.kind;
        process.stderr.write(`audit-admin: organization ${r.organizationId}: first bad position ${where}: ${f.reason}\n`);
      }
      return ok ? 0 : 1;
    }
    throw new UsageError(`unknown command: ${positionals.join(' ')}`);
  } finally {
    await database.close();
  }
}

/** All of stdin (the password of `users create`, never an argument: arguments are visible to every user of the machine). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

run(process.argv.slice(2), (s) => process.stdout.write(s + '\n')).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || err instanceof JobsUsageError || err instanceof RetentionUsageError) process.stderr.write(`audit-admin: ${err.message}\n${USAGE}\n`);
    else if (err instanceof ConfigError) process.stderr.write(err.message + '\n');
    else process.stderr.write(`audit-admin: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof UsageError || err instanceof JobsUsageError || err instanceof RetentionUsageError ? 2 : 1);
  },
);
