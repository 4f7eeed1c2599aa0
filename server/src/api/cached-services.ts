/**
 * The read cache in front of the services, so REST, tRPC and GraphQL share it (one service
 * layer): what is cached, under which tenant scope, and which write invalidates it. Every cached
 * value is keyed by the organization of the caller's credentials (API-key lookups, which find
 * that organization, are keyed by the SHA-256 of the key and scoped `global`; the signing keys
 * belong to no tenant).
 *
 * | cache        | group  | invalidated by                                    |
 * |--------------|--------|---------------------------------------------------|
 * | `stats`      | `log`  | an append (single or bulk) of the organization    |
 * | `event`      | `log`  | an append (a proof's tree size moves)             |
 * | `checkpoint` | `log`  | an append                                         |
 * | `apiKey`     | `auth` | a revocation of any key (only in a shared store)  |
 * | `ledgerKeys` | `keys` | a signing-key registration or rotation (start-up) |
 */
import { createHash } from 'node:crypto';
import { digestKey, ReadCache, RedisCacheStore, type CacheDefinition } from '../cache/read-cache';
import { openRedis, type RedisEndpoint } from '../cache/redis';
import type { Services } from './context';

/** The caches, by name. */
export const CACHES = {
  stats: { name: 'stats', group: 'log' },
  event: { name: 'event', group: 'log' },
  checkpoint: { name: 'checkpoint', group: 'log' },
  apiKey: { name: 'apiKey', group: 'auth' },
  ledgerKeys: { name: 'ledgerKeys', group: 'keys' },
} as const satisfies Record<string, CacheDefinition>;

/** Scope of data that belongs to no organization. */
const GLOBAL = 'global';

/** What {@link cacheServices} may cache besides the organization-scoped reads. */
export interface CacheServicesOptions {
  /**
   * Cache API-key look-ups: only when the store is shared by every process that can revoke a key
   * (Redis), since an in-process copy cannot be invalidated by a revocation made elsewhere.
   */
  readonly apiKeyLookups: boolean;
}

/**
 * Puts `cache` in front of the read methods of `services` and invalidates it after every write
 * method named in the table above (in place: the adapters already hold these objects).
 */
export function cacheServices(services: Services, cache: ReadCache, options: CacheServicesOptions): Services {
  if (!cache.enabled) return services;
  const { events, ledger, apiKeys } = services;

  const stats = events.stats.bind(events);
  events.stats = (org, input) => cache.getOrLoad(CACHES.stats, org, digestKey(input), () => stats(org, input));
  const getById = events.getById.bind(events);
  events.getById = (org, id, withProof) => cache.getOrLoad(CACHES.event, org, `${id}:${withProof ? 'p' : 'e'}`, () => getById(org, id, withProof));

  // An append invalidates after it returns (committed) or fails (a bulk append may have committed part).
  const create = events.create.bind(events);
  events.create = async (org, input, options) => {
    try {
      return await create(org, input, options);
    } finally {
      await cache.invalidate(CACHES.stats.group, org);
    }
  };
  const bulkCreate = events.bulkCreate.bind(events);
  events.bulkCreate = async (org, items) => {
    try {
      return await bulkCreate(org, items);
    } finally {
      await cache.invalidate(CACHES.stats.group, org);
    }
  };

  const checkpoint = ledger.checkpoint.bind(ledger);
  ledger.checkpoint = (org, size) => cache.getOrLoad(CACHES.checkpoint, org, size === undefined ? 'latest' : String(size), () => checkpoint(org, size));
  const keys = ledger.keys.bind(ledger);
  ledger.keys = () => cache.getOrLoad(CACHES.ledgerKeys, GLOBAL, 'all', keys);

  if (!options.apiKeyLookups) return services;
  const authenticate = apiKeys.authenticate.bind(apiKeys);
  apiKeys.authenticate = (key) =>
    cache.getOrLoad(CACHES.apiKey, GLOBAL, createHash('sha256').update(key, 'utf8').digest('base64url'), async () => (await authenticate(key)) ?? undefined).then(
      (p) => p ?? null,
    );
  const revoke = apiKeys.revoke.bind(apiKeys);
  apiKeys.revoke = async (org, id) => {
    await revoke(org, id);
    await cache.invalidate(CACHES.apiKey.group, GLOBAL);
  };
  return services;
}

/** Invalidates the signing keys on every replica (after this process registered or retired one). */
export function invalidateSigningKeys(cache: ReadCache): Promise<void> {
  return cache.invalidate(CACHES.ledgerKeys.group, GLOBAL);
}

/**
 * Invalidates API-key look-ups in the Redis at `redisUrl` (for the admin CLI, which revokes keys
 * outside any server); resolves false when Redis cannot be reached.
 */
export async function invalidateApiKeys(redisUrl: RedisEndpoint, prefix: string, ttlSeconds: number): Promise<boolean> {
  const redis = openRedis(redisUrl);
  redis.on('error', () => undefined);
  let failed = false;
  const cache = new ReadCache(new RedisCacheStore(redis), { ttlSeconds: Math.max(ttlSeconds, 1), prefix }, {
    hit: () => undefined,
    miss: () => undefined,
    error: () => (failed = true),
  });
  try {
    const ready = await Promise.race([
      new Promise<boolean>((resolve) => redis.once('ready', () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000).unref()),
    ]);
    if (!ready) return false;
    await cache.invalidate(CACHES.apiKey.group, GLOBAL);
    return !failed;
  } finally {
    cache.close();
    redis.disconnect();
  }
}
