/**
 * Organizations (tenants) and first-start bootstrap: the first organization and its admin key,
 * created exactly once even when several replicas start together.
 */
import type { Database } from '../db/client';
import { organizations } from '../db/schema';
import * as ledgerRepo from '../tlog/repository';
import { uuidv4 } from '../util/uuid';
import type { ApiKeyService } from './api-keys';

// Fixed advisory-lock key for bootstrap ("audit-bootstrap").
const BOOTSTRAP_LOCK_KEY = 7_301_449_102;

/** Creates an organization together with its empty ledger. */
export async function createOrganization(database: Database, name: string): Promise<{ id: string; name: string }> {
  const id = uuidv4();
  await database.db.transaction(async (tx) => {
    await tx.insert(organizations).values({ id, name });
    await ledgerRepo.createHead(tx, id);
  });
  return { id, name };
}

/** Outcome of {@link bootstrap}. */
export interface BootstrapResult {
  organizationId: string;
  /** The admin key, only when one was generated now (print it once). */
  generatedKey?: string;
  created: boolean;
}

/**
 * On an empty database: creates the first organization and registers `bootstrapKey` (or a new
 * key) as its admin key. Does nothing when an organization exists.
 */
export async function bootstrap(
  database: Database,
  apiKeyService: ApiKeyService,
  orgName: string,
  bootstrapKey: string | undefined,
): Promise<BootstrapResult> {
  const conn = await database.connect();
  try {
    await conn.query('SELECT pg_advisory_lock($1)', [BOOTSTRAP_LOCK_KEY]);
    try {
      const existing = await database.db.select({ id: organizations.id }).from(organizations).limit(1);
      if (existing[0]) return { organizationId: existing[0].id, created: false };
      const org = await createOrganization(database, orgName);
      const created = await apiKeyService.create(org.id, 'bootstrap admin', 'admin', bootstrapKey);
      return { organizationId: org.id, created: true, ...(bootstrapKey ? {} : { generatedKey: created.key }) };
    } finally {
      await conn.query('SELECT pg_advisory_unlock($1)', [BOOTSTRAP_LOCK_KEY]);
    }
  } finally {
    conn.release();
  }
}
