/**
 * API keys: random 256-bit secrets shown once, stored as SHA-256 only. The tenant of a request
 * is the organization of its key, never anything in the request body.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import type { Database } from '../db/client';
import { apiKeys } from '../db/schema';
import { AppError } from '../errors';
import { uuidv4 } from '../util/uuid';
import type { Role } from './permissions';

/** Who a request speaks for: an API key, a signed-in person's session, or an OIDC token. */
export interface Principal {
  organizationId: string;
  /** The API key's id, or `user:<id>` / `oidc:<subject>` for people: what rate limits and logs key on. */
  keyId: string;
  role: Role;
  /** How the caller authenticated. */
  kind: 'apiKey' | 'session' | 'oidc';
  /** Who, for the audit trail: the key id, the user's e-mail address, or the token's subject. */
  subject: string;
  /** The signed-in user (sessions). */
  userId?: string;
  /** The session (sessions). */
  sessionId?: string;
}

/** A key as listed (never the secret). */
export interface ApiKeyInfo {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  revokedAt: string | null;
}

const KEY_PREFIX = 'sak_';

/** A new random key: `sak_` + 43 base64url characters (256 bits). */
export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** First 64 bits of the hash, hex: finds the row without revealing anything useful about the key. */
function lookupIdOf(hash: Buffer): string {
  return hash.subarray(0, 8).toString('hex');
}

/** Creates, lists, revokes and authenticates API keys. */
export class ApiKeyService {
  // Short-lived cache of successful look-ups so hot producers do not hit the database on every
  // request. Revocation takes effect here at once and in every other process (another replica
  // without a shared Redis, the admin CLI) within `cacheTtlMs`: one second by default, the bound
  // the read cache promises for revocations, at the cost of one look-up per key per second.
  private readonly cache = new Map<string, { principal: Principal; hash: Buffer; expires: number }>();

  constructor(
    private readonly database: Database,
    private readonly cacheTtlMs = 1_000,
    // The cache's clock; tests pass their own so expiry is checked without waiting.
    private readonly now: () => number = Date.now,
    // Bounds the cache's memory however many keys authenticate: a full cache is emptied.
    private readonly cacheMaxEntries = 10_000,
  ) {}

  /** Registers `key` (or a fresh one) for `org` and returns it; the secret is never stored. */
  async create(org: string, name: string, role: Role, key = generateApiKey()): Promise<ApiKeyInfo & { key: string }> {
    const hash = digest(key);
    const id = uuidv4();
    const createdAt = new Date();
    await this.database.db
      .insert(apiKeys)
      .values({ organizationId: org, id, name, role, lookupId: lookupIdOf(hash), keyHash: hash, createdAt });
    return { id, name, role, createdAt: createdAt.toISOString(), revokedAt: null, key };
  }

  /** Keys of one organization. */
  async list(org: string): Promise<ApiKeyInfo[]> {
    const rows = await this.database.db.select().from(apiKeys).where(eq(apiKeys.organizationId, org)).orderBy(apiKeys.createdAt);
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      role: r.role,
      createdAt: r.createdAt.toISOString(),
      revokedAt: r.revokedAt ? r.revokedAt.toISOString() : null,
    }));
  }

  /** Revokes a key of `org`; 404 when it does not exist there or is already revoked. */
  async revoke(org: string, id: string): Promise<void> {
    const rows = await this.database.db
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiKeys.organizationId, org), eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
      .returning({ id: apiKeys.id });
    if (rows.length === 0) throw new AppError('NOT_FOUND', `no active API key ${id}`);
    for (const [k, v] of this.cache) if (v.principal.keyId === id) this.cache.delete(k);
  }

  /** The principal of `key`, or null. Hashes are compared in constant time. */
  async authenticate(key: string): Promise<Principal | null> {
    if (key.length < 16 || key.length > 512) return null;
    const hash = digest(key);
    const lookupId = lookupIdOf(hash);
    const cached = this.cache.get(lookupId);
    if (cached && cached.expires > this.now() && timingSafeEqual(cached.hash, hash)) return cached.principal;
    const rows = await this.database.db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.lookupId, lookupId), isNull(apiKeys.revokedAt)));
    for (const row of rows) {
      if (row.keyHash.length === hash.length && timingSafeEqual(row.keyHash, hash)) {
        const principal: Principal = { organizationId: row.organizationId, keyId: row.id, role: row.role, kind: 'apiKey', subject: row.id };
        if (this.cache.size >= this.cacheMaxEntries) this.cache.clear();
        this.cache.set(lookupId, { principal, hash, expires: this.now() + this.cacheTtlMs });
        return principal;
      }
    }
    return null;
  }
}
