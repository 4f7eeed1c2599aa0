/**
 * OpenID Connect bearer tokens (AUTH_OIDC_ISSUER + AUTH_OIDC_AUDIENCE): a JWT access token from
 * that issuer is a credential like an API key. The issuer's keys come from its discovery document
 * (`jwks_uri`) and are cached; a token signed with a key id not in the cache makes one refetch (at
 * most once per cool-down), so a key rotation at the provider is picked up without a restart.
 * `iss`, `aud`, `exp` and `nbf` are checked, and only asymmetric algorithms of the allow-list are
 * accepted (never `none`, never an HMAC keyed with a public key). A configurable claim names the
 * organization and another the role.
 */
import { createHash } from 'node:crypto';
import type * as Jose from 'jose' with { 'resolution-mode': 'import' };
import type { Database } from '../db/client';
import { organizations } from '../db/schema';
import { eq } from 'drizzle-orm';
import type { Principal } from './api-keys';
import { ROLES, isRole, type Role } from './permissions';

/** What AUTH_OIDC_* configure. */
export interface OidcOptions {
  issuer: string;
  audience: string;
  /** Claim holding the organization id (a UUID of this server). */
  organizationClaim: string;
  /** Claim holding a role name or an array of them (mapped through `roleMap`). */
  roleClaim: string;
  /** Claim value → role; a value that is itself a role name maps to that role. */
  roleMap: Record<string, Role>;
  /** Allowed JWS algorithms (asymmetric only). */
  algorithms: string[];
  /** Least time between two key-set fetches triggered by unknown key ids. */
  jwksCooldownMs: number;
  /** Accepted clock difference for exp/nbf. */
  clockToleranceSeconds: number;
}

/** Asymmetric JWS algorithms a provider may use. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** Whether a bearer credential has the shape of a JWT (three base64url parts, a JSON header). */
export function looksLikeJwt(token: string): boolean {
  return /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(token) && token.length <= 16_384;
}

type JoseModule = typeof Jose;

/** Verifies bearer JWTs of one issuer. */
export class OidcVerifier {
  private jwks: ReturnType<JoseModule['createRemoteJWKSet']> | null = null;
  private loading: Promise<void> | null = null;

  private constructor(
    private readonly jose: JoseModule,
    private readonly database: Database,
    readonly options: OidcOptions,
  ) {
    for (const alg of options.algorithms) {
      if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) throw new Error(`AUTH_OIDC_ALGORITHMS: ${alg} is not an asymmetric JWS algorithm`);
    }
  }

  /** Loads the JOSE library (ESM); discovery happens on first use, so a provider that starts later is fine. */
  static async create(database: Database, options: OidcOptions): Promise<OidcVerifier> {
    return new OidcVerifier(await import('jose'), database, options);
  }

  private async keySet(): Promise<ReturnType<JoseModule['createRemoteJWKSet']>> {
    if (this.jwks) return this.jwks;
    this.loading ??= (async () => {
      const url = this.options.issuer.replace(/\/$/, '') + '/.well-known/openid-configuration';
      const res = await fetch(url, { signal: AbortSignal.timeout(5000), redirect: 'error' });
      if (!res.ok) throw new Error(`OIDC discovery at ${url} answered ${res.status}`);
      const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
      if (doc.issuer !== this.options.issuer) throw new Error('OIDC discovery document names another issuer');
      if (typeof doc.jwks_uri !== 'string') throw new Error('OIDC discovery document has no jwks_uri');
      this.jwks = this.jose.createRemoteJWKSet(new URL(doc.jwks_uri), {
        cooldownDuration: this.options.jwksCooldownMs,
        cacheMaxAge: 10 * 60 * 1000,
        timeoutDuration: 5000,
      });
    })().finally(() => {
      this.loading = null;
    });
    await this.loading;
    return this.jwks!;
  }

  /**
   * The principal of a valid token, or null for any invalid one (bad signature, unknown key,
   * wrong issuer or audience, expired, not yet valid, disallowed algorithm, no organization or
   * role). Errors reaching the provider are thrown (the caller answers 503, not 401).
   */
  async verify(token: string): Promise<Principal | null> {
    const jwks = await this.keySet();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await this.jose.jwtVerify(token, jwks, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: this.options.algorithms,
        clockTolerance: this.options.clockToleranceSeconds,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      if (err instanceof this.jose.errors.JOSEError && !(err instanceof this.jose.errors.JWKSTimeout)) return null;
      throw err;
    }
    const org = payload[this.options.organizationClaim];
    if (typeof org !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(org)) return null;
    const role = this.roleOf(payload[this.options.roleClaim]);
    if (!role) return null;
    // The column is a uuid: PostgreSQL compares values, so either case finds the organization, and
    // the answer carries the id as stored.
    const exists = await this.database.db.select({ id: organizations.id }).from(organizations).where(eq(organizations.id, org));
    if (!exists[0]) return null;
    const sub = String(payload.sub);
    // Logs and rate limits key on a hash of the subject (it may be an address); the audit trail gets it whole.
    const keyId = 'oidc:' + createHash('sha256').update(sub, 'utf8').digest('hex').slice(0, 32);
    return { organizationId: exists[0].id, role, keyId, kind: 'oidc', subject: sub.slice(0, 255) };
  }

  /** The most powerful role the claim grants (a string or an array of strings). */
  private roleOf(claim: unknown): Role | null {
    const values = (Array.isArray(claim) ? claim : [claim]).filter((v): v is string => typeof v === 'string');
    const granted = new Set<Role>();
    for (const v of values) {
      const mapped = Object.hasOwn(this.options.roleMap, v) ? this.options.roleMap[v] : isRole(v) ? v : undefined;
      if (mapped) granted.add(mapped);
    }
    return ROLES.find((r) => granted.has(r)) ?? null;
  }
}
