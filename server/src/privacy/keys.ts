/**
 * The organization's privacy key (docs/privacy.md "Keys and rotation"): 32 random bytes per
 * organization and version, created on first use. The active version makes new keyed hashes and
 * pseudonyms; retired versions are kept so that keyed hashes made with them (in `privacy.erase`
 * events and legal holds) can still be checked. Secrets never leave this process except into the
 * `privacy_keys` table; nothing logs them.
 */
import { randomBytes } from 'node:crypto';
import type { Database } from '../db/client';
import * as repo from './repository';

/** One key version. */
export interface PrivacyKey {
  version: number;
  secret: Buffer;
}

/** Reads (and creates) privacy keys, caching them briefly. */
export class PrivacyKeyring {
  private readonly active = new Map<string, { key: PrivacyKey; until: number }>();
  private readonly versions = new Map<string, PrivacyKey>();

  /** @param ttlMs how long this process uses a cached active key (a rotation elsewhere shows after it). */
  constructor(
    private readonly database: Database,
    private readonly ttlMs = 60_000,
  ) {}

  /** The organization's active key (created on first use). */
  async activeKey(org: string): Promise<PrivacyKey> {
    const cached = this.active.get(org);
    if (cached && cached.until > Date.now()) return cached.key;
    let row = await repo.activeKey(this.database.db, org);
    if (!row) {
      await repo.createFirstKey(this.database.db, org, randomBytes(32));
      row = await repo.activeKey(this.database.db, org);
      if (!row) throw new Error('privacy key could not be created');
    }
    const key = { version: row.version, secret: row.secret };
    this.active.set(org, { key, until: Date.now() + this.ttlMs });
    this.versions.set(`${org}/${key.version}`, key);
    return key;
  }

  /** A key version (for checking an older keyed hash); null when it does not exist. */
  async keyVersion(org: string, version: number): Promise<PrivacyKey | null> {
    const hit = this.versions.get(`${org}/${version}`);
    if (hit) return hit;
    const row = await repo.keyVersion(this.database.db, org, version);
    if (!row) return null;
    const key = { version: row.version, secret: row.secret };
    this.versions.set(`${org}/${version}`, key);
    return key;
  }

  /** Retires the active key and creates the next version; returns it. */
  async rotate(org: string): Promise<number> {
    await this.activeKey(org); // an organization without a key gets version 1 first
    const version = await repo.rotateKey(this.database.db, org, randomBytes(32));
    this.active.delete(org);
    return version;
  }
}
