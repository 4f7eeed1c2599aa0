/**
 * The OIDC bearer-token verifier in process, no audit server: an issuer served by a small HTTP
 * server of the test (discovery document and key set, with answers the test chooses) and tokens
 * signed with jose. Pins the discovery checks and their messages, which claims make a token
 * invalid, how the organization and role claims map to a principal, the key set's cache and
 * rotation, and that provider errors are thrown rather than answered as an invalid token.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as JoseModule from 'jose' with { 'resolution-mode': 'import' };
import { ASYMMETRIC_ALGORITHMS, OidcVerifier, looksLikeJwt, type OidcOptions } from '../../src/auth/oidc';
import { createOrganization } from '../../src/auth/organizations';
import { describeEachBackend } from '../helpers/backends';
import { freePort } from '../helpers/process';
import { openInstrumentedDatabase, type InstrumentedDatabase } from '../helpers/instrumented-database';

type Jose = typeof JoseModule;
interface SigningKey {
  kid: string;
  privateKey: Awaited<ReturnType<Jose['generateKeyPair']>>['privateKey'];
  publicJwk: Record<string, unknown>;
}
const AUDIENCE = 'https://audit.test';

describe('bearer credentials shaped like a JWT', () => {
  const header = Buffer.from('{"alg":"RS256"}').toString('base64url');
  it('are three base64url parts starting with a JSON header', () => {
    expect(looksLikeJwt(`${header}.eyJzdWIiOiJ4In0.c2ln`)).toBe(true);
    expect(looksLikeJwt(`${header}..`)).toBe(true);
    expect(looksLikeJwt(`${header}.a-b_c.d`)).toBe(true);
  });
  it('are not API keys, two or four parts, padded or standard base64, or text around a token', () => {
    for (const v of ['sak_abcdefghijklmnop', `${header}.abc`, `${header}.a.b.c`, `${header}.a=.b`, `${header}.a+/.b`, `x${header}.a.b`, `${header}.a.b x`, 'eyX.a.b', `${header}.a.b\n`]) {
      expect(looksLikeJwt(v)).toBe(false);
    }
  });
  it('are at most 16,384 characters', () => {
    const pad = (n: number) => `${header}.${'a'.repeat(n - header.length - 2)}.`;
    expect(pad(16_384)).toHaveLength(16_384);
    expect(looksLikeJwt(pad(16_384))).toBe(true);
    expect(looksLikeJwt(pad(16_385))).toBe(false);
  });
});

/** An issuer whose every answer the test controls; counts the requests per path. */
interface Issuer {
  url: string;
  hits: Map<string, number>;
  /** The discovery document's answer (status and body); default a valid document. */
  discovery: { status: number; body: unknown } | null;
  /** Public keys published at /jwks. */
  keys: Record<string, unknown>[];
  close(): Promise<void>;
}

async function startIssuer(path = ''): Promise<Issuer> {
  const issuer: Issuer = { url: '', hits: new Map(), discovery: null, keys: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    const p = req.url ?? '';
    issuer.hits.set(p, (issuer.hits.get(p) ?? 0) + 1);
    res.setHeader('connection', 'close');
    if (p === `${path}/.well-known/openid-configuration`) {
      const d = issuer.discovery ?? { status: 200, body: { issuer: issuer.url, jwks_uri: `${new URL(issuer.url).origin}/jwks` } };
      res.writeHead(d.status, { 'content-type': 'application/json' }).end(JSON.stringify(d.body));
    } else if (p === '/jwks') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: issuer.keys }));
    } else if (p === '/moved/.well-known/openid-configuration') {
      res.writeHead(302, { location: `${path}/.well-known/openid-configuration` }).end();
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  issuer.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  issuer.close = () => new Promise<void>((r) => server.close(() => r()));
  return issuer;
}

describeEachBackend('OIDC verifier on %s', (backend) => {
  let jose: Jose;
  let idb: InstrumentedDatabase;
  let org: string;
  let issuer: Issuer;
  let rsa: SigningKey;
  let verifier: OidcVerifier;

  const options = (o: Partial<OidcOptions> = {}): OidcOptions => ({
    issuer: issuer.url,
    audience: AUDIENCE,
    organizationClaim: 'org_id',
    roleClaim: 'roles',
    roleMap: { 'audit-readers': 'auditor', owner: 'developer' },
    algorithms: ['RS256'],
    jwksCooldownMs: 0,
    clockToleranceSeconds: 30,
    ...o,
  });

  async function newKey(kid: string, alg = 'RS256'): Promise<SigningKey> {
    const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
    return { kid, privateKey, publicJwk: { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' } };
  }

  /** A token signed with `key` (default: the published RSA key), valid unless `claims` say otherwise. */
  function token(claims: Record<string, unknown> = {}, key = rsa, alg = 'RS256'): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new jose.SignJWT({ iss: issuer.url, aud: AUDIENCE, sub: 'reporting-service', exp: now + 300, iat: now, org_id: org, roles: 'auditor', ...claims })
      .setProtectedHeader({ alg, kid: key.kid })
      .sign(key.privateKey);
  }

  const keyIdOf = (sub: string) => 'oidc:' + createHash('sha256').update(sub, 'utf8').digest('hex').slice(0, 32);

  beforeAll(async () => {
    jose = await import('jose');
    idb = await openInstrumentedDatabase(backend);
    org = (await createOrganization(idb.database, 'oidc')).id;
    issuer = await startIssuer();
    rsa = await newKey('key-1');
    issuer.keys = [rsa.publicJwk];
    verifier = await OidcVerifier.create(idb.database, options());
  }, 120_000);
  afterAll(async () => {
    await issuer?.close();
    await idb?.close();
  });

  it('refuses symmetric algorithms and none at construction, and accepts every asymmetric one', async () => {
    await expect(OidcVerifier.create(idb.database, options({ algorithms: ['RS256', 'HS256'] }))).rejects.toThrow('AUTH_OIDC_ALGORITHMS: HS256 is not an asymmetric JWS algorithm');
    await expect(OidcVerifier.create(idb.database, options({ algorithms: ['none'] }))).rejects.toThrow('AUTH_OIDC_ALGORITHMS: none is not an asymmetric JWS algorithm');
    const all = await OidcVerifier.create(idb.database, options({ algorithms: [...ASYMMETRIC_ALGORITHMS] }));
    expect(all.options.algorithms).toEqual(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']);
  });

  it('accepts a valid token: the organization and role of its claims, the subject, and a key id hashed from it', async () => {
    expect(await verifier.verify(await token())).toEqual({ organizationId: org, role: 'auditor', keyId: keyIdOf('reporting-service'), kind: 'oidc', subject: 'reporting-service' });
  });

  it('keeps the first 255 characters of a long subject for the audit trail and hashes all of it', async () => {
    const sub = 's'.repeat(254) + 'xy';
    expect(await verifier.verify(await token({ sub }))).toMatchObject({ subject: 's'.repeat(254) + 'x', keyId: keyIdOf(sub) });
  });

  it('takes the organization id in either case and answers it as stored', async () => {
    expect((await verifier.verify(await token({ org_id: org.toUpperCase() })))?.organizationId).toBe(org);
  });

  it.each([
    ['not a UUID', 'clinic-a'],
    ['a UUID with text before it', 'x00000000-0000-4000-8000-000000000000'],
    ['a UUID with text after it', '00000000-0000-4000-8000-000000000000x'],
    ['a number', 42],
    ['an unknown organization', '00000000-0000-4000-8000-000000000000'],
  ])('answers null for an organization claim that is %s', async (_what, value) => {
    expect(await verifier.verify(await token({ org_id: value }))).toBeNull();
  });

  it('answers null without an organization claim', async () => {
    expect(await verifier.verify(await token({ org_id: undefined }))).toBeNull();
  });

  it.each([
    ['the most powerful of several', ['member', 'admin', 'producer'], 'admin'],
    ['a mapped value', 'audit-readers', 'auditor'],
    ['the mapping before the role of the same name', 'owner', 'developer'],
    ['strings only, in an array', [7, null, 'producer'], 'producer'],
    ['a mapped value among unknown ones', ['staff', 'audit-readers'], 'auditor'],
  ])('takes %s from the role claim', async (_what, roles, expected) => {
    expect((await verifier.verify(await token({ roles })))?.role).toBe(expected);
  });

  it.each([
    ['unknown', 'superuser'],
    ['an inherited property name', 'constructor'],
    ['not a string', 5],
    ['empty', []],
  ])('answers null for a role claim that is %s', async (_what, roles) => {
    expect(await verifier.verify(await token({ roles }))).toBeNull();
  });

  it('maps only the strings of the role claim: a number or null never matches a mapping of its text', async () => {
    const mapped = await OidcVerifier.create(idb.database, options({ roleMap: { '7': 'admin', null: 'owner' } }));
    expect((await mapped.verify(await token({ roles: [7, null, 'producer'] })))?.role).toBe('producer');
    expect(await mapped.verify(await token({ roles: 7 }))).toBeNull();
    expect((await mapped.verify(await token({ roles: '7' })))?.role).toBe('admin');
  });

  it('answers null for expired, not yet valid, wrong audience, wrong issuer, and without sub or exp', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await verifier.verify(await token({ exp: now - 3_600 }))).toBeNull();
    expect(await verifier.verify(await token({ nbf: now + 3_600 }))).toBeNull();
    expect(await verifier.verify(await token({ aud: 'https://other.test' }))).toBeNull();
    expect(await verifier.verify(await token({ iss: 'https://other-issuer.test' }))).toBeNull();
    expect(await verifier.verify(await token({ sub: undefined }))).toBeNull();
    expect(await verifier.verify(await token({ exp: undefined }))).toBeNull();
  });

  it('accepts a token expired within the clock tolerance (30 s here), and refuses it without tolerance', async () => {
    const now = Math.floor(Date.now() / 1000);
    const t = await token({ exp: now - 5 });
    expect((await verifier.verify(t))?.role).toBe('auditor');
    const strict = await OidcVerifier.create(idb.database, options({ clockToleranceSeconds: 0 }));
    expect(await strict.verify(t)).toBeNull();
  });

  it('answers null for an algorithm outside the allow-list, alg none, and an HMAC keyed with the public key', async () => {
    const es = await newKey('key-es', 'ES256');
    issuer.keys = [rsa.publicJwk, es.publicJwk];
    expect(await verifier.verify(await token({}, es, 'ES256'))).toBeNull();
    const both = await OidcVerifier.create(idb.database, options({ algorithms: ['RS256', 'ES256'] }));
    expect((await both.verify(await token({}, es, 'ES256')))?.role).toBe('auditor');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const payload = b64({ iss: issuer.url, aud: AUDIENCE, sub: 'x', exp: now + 300, org_id: org, roles: 'admin' });
    expect(await verifier.verify(`${b64({ alg: 'none' })}.${payload}.`)).toBeNull();
    const hmacKey = new TextEncoder().encode(JSON.stringify(rsa.publicJwk));
    const hs = await new jose.SignJWT({ iss: issuer.url, aud: AUDIENCE, sub: 'x', exp: now + 300, org_id: org, roles: 'admin' })
      .setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
      .sign(hmacKey);
    expect(await verifier.verify(hs)).toBeNull();
    expect(await verifier.verify('eyJhbGciOiJSUzI1NiJ9.garbage.garbage')).toBeNull();
  });

  it('fetches discovery once and picks up a key published later (an unknown kid refetches the set)', async () => {
    const own = await startIssuer();
    try {
      const first = await newKey('first');
      own.keys = [first.publicJwk];
      const v = await OidcVerifier.create(idb.database, options({ issuer: own.url }));
      const sign = (k: typeof first) => new jose.SignJWT({ sub: 's', org_id: org, roles: 'producer' }).setProtectedHeader({ alg: 'RS256', kid: k.kid }).setIssuer(own.url).setAudience(AUDIENCE).setExpirationTime('5m').sign(k.privateKey);
      expect((await v.verify(await sign(first)))?.role).toBe('producer');
      expect((await v.verify(await sign(first)))?.role).toBe('producer');
      // Discovery and the key set were fetched once for both tokens (the set is cached for 10 minutes).
      expect(own.hits.get('/.well-known/openid-configuration')).toBe(1);
      expect(own.hits.get('/jwks')).toBe(1);
      const second = await newKey('second');
      const unpublished = await newKey('unpublished');
      own.keys = [first.publicJwk, second.publicJwk];
      expect((await v.verify(await sign(second)))?.role).toBe('producer');
      expect(await v.verify(await sign(unpublished))).toBeNull();
      expect(own.hits.get('/.well-known/openid-configuration')).toBe(1);
    } finally {
      await own.close();
    }
  });

  it('finds discovery under an issuer URL with a path and a trailing slash', async () => {
    const own = await startIssuer('/realms/audit');
    try {
      own.keys = issuer.keys;
      const url = `${own.url}/`;
      own.discovery = { status: 200, body: { issuer: url, jwks_uri: `${new URL(own.url).origin}/jwks` } };
      const v = await OidcVerifier.create(idb.database, options({ issuer: url }));
      expect((await v.verify(await token({ iss: url })))?.role).toBe('auditor');
      expect([...own.hits.keys()].sort()).toEqual(['/jwks', '/realms/audit/.well-known/openid-configuration']);
    } finally {
      await own.close();
    }
  });

  it('throws (the caller answers 503) when discovery fails, with the reason, and retries on the next token', async () => {
    const own = await startIssuer();
    try {
      own.keys = issuer.keys;
      const v = await OidcVerifier.create(idb.database, options({ issuer: own.url }));
      const t = await token({ iss: own.url });
      own.discovery = { status: 500, body: {} };
      await expect(v.verify(t)).rejects.toThrow(`OIDC discovery at ${own.url}/.well-known/openid-configuration answered 500`);
      own.discovery = { status: 200, body: { issuer: 'https://someone-else.test', jwks_uri: `${own.url}/jwks` } };
      await expect(v.verify(t)).rejects.toThrow('OIDC discovery document names another issuer');
      own.discovery = { status: 200, body: { issuer: own.url } };
      await expect(v.verify(t)).rejects.toThrow('OIDC discovery document has no jwks_uri');
      own.discovery = { status: 200, body: { issuer: own.url, jwks_uri: 42 } };
      await expect(v.verify(t)).rejects.toThrow('OIDC discovery document has no jwks_uri');
      own.discovery = null;
      expect((await v.verify(t))?.role).toBe('auditor');
      expect(own.hits.get('/.well-known/openid-configuration')).toBe(5);
    } finally {
      await own.close();
    }
  });

  it('does not follow a redirect from the discovery URL', async () => {
    const own = await startIssuer();
    try {
      own.keys = issuer.keys;
      // The issuer's discovery URL redirects to a document that would be valid for it.
      const moved = `${own.url}/moved`;
      own.discovery = { status: 200, body: { issuer: moved, jwks_uri: `${own.url}/jwks` } };
      const v = await OidcVerifier.create(idb.database, options({ issuer: moved }));
      await expect(v.verify(await token({ iss: moved }))).rejects.toThrow();
      expect(own.hits.get('/moved/.well-known/openid-configuration')).toBe(1);
      expect(own.hits.get('/.well-known/openid-configuration')).toBeUndefined();
    } finally {
      await own.close();
    }
  });

  it('throws when the key set cannot be fetched, instead of answering an invalid token', async () => {
    const own = await startIssuer();
    try {
      own.discovery = { status: 200, body: { issuer: own.url, jwks_uri: `http://127.0.0.1:${await freePort()}/jwks` } };
      const v = await OidcVerifier.create(idb.database, options({ issuer: own.url }));
      await expect(v.verify(await token({ iss: own.url }))).rejects.toThrow();
    } finally {
      await own.close();
    }
  });
});
