#!/usr/bin/env node
/**
 * Operator CLI against the configured database (same environment as the server):
 *
 *   audit-admin api-keys create --name NAME --role admin|producer|auditor [--org ID]
 *   audit-admin api-keys list [--org ID]
 *   audit-admin api-keys revoke --id KEY_ID [--org ID]
 *   audit-admin organizations create --name NAME      (prints the new org's admin key once)
 *   audit-admin verify-ledger [--org ID]               (exit 0 only when every ledger verifies)
 *
 * With the embedded default (no DATABASE_URL) the server must be stopped: PGlite allows one process.
 */
import { parseArgs } from 'node:util';
import { ApiKeyService } from '../auth/api-keys';
import { createOrganization } from '../auth/organizations';
import { ROLES, type Role } from '../auth/permissions';
import { ConfigError, loadConfig } from '../config';
import { openDatabase, type Database } from '../db/client';
import { organizations } from '../db/schema';
import { migrate } from '../db/migrate';
import { verifyAllStoredLedgers, verifyStoredLedger } from '../tlog/verify-store';

const USAGE = `usage:
  audit-admin api-keys create --name NAME --role ${ROLES.join('|')} [--org ID]
  audit-admin api-keys list [--org ID]
  audit-admin api-keys revoke --id KEY_ID [--org ID]
  audit-admin organizations create --name NAME
  audit-admin verify-ledger [--org ID]`;

class UsageError extends Error {}

async function defaultOrg(database: Database, given: string | undefined): Promise<string> {
  if (given) return given;
  const rows = await database.db.select({ id: organizations.id }).from(organizations).orderBy(organizations.createdAt).limit(1);
  if (!rows[0]) throw new UsageError('no organization exists yet; start the server once or use "organizations create"');
  return rows[0].id;
}

async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { name: { type: 'string' }, role: { type: 'string' }, org: { type: 'string' }, id: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || positionals.length === 0) {
    out(USAGE);
    return values.help ? 0 : 2;
  }
  const config = loadConfig();
  const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.AUDIT_DATA_DIR });
  try {
    await migrate(database);
    const keys = new ApiKeyService(database);
    const [group, command] = positionals;
    if (group === 'api-keys' && command === 'create') {
      if (!values.name) throw new UsageError('--name is required');
      if (!ROLES.includes(values.role as Role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
      const created = await keys.create(await defaultOrg(database, values.org), values.name, values.role as Role);
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
    if (group === 'verify-ledger') {
      const results = values.org ? [await verifyStoredLedger(database, values.org)] : await verifyAllStoredLedgers(database);
      out(JSON.stringify({ ok: results.every((r) => r.ok), organizations: results }, null, 2));
      return results.every((r) => r.ok) ? 0 : 1;
    }
    throw new UsageError(`unknown command: ${positionals.join(' ')}`);
  } finally {
    await database.close();
  }
}

run(process.argv.slice(2), (s) => process.stdout.write(s + '\n')).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) process.stderr.write(`audit-admin: ${err.message}\n${USAGE}\n`);
    else if (err instanceof ConfigError) process.stderr.write(err.message + '\n');
    else process.stderr.write(`audit-admin: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
