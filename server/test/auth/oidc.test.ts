/**
 * OIDC bearer tokens against a real OpenID provider running in-process (`oidc-provider`, the
 * client-credentials grant issuing JWT access tokens for our audience): a valid token is accepted
 * with the organization and role of its claims; expired, wrong-audience, wrong-issuer,
 * `alg: none`, HS256-keyed-with-the-public-key and unknown-`kid` tokens are 401; a key rotation
 * at the provider is picked up (an unknown kid refetches the key set).
 */
import http from 'node:http';
import { createHmac } from 'node:crypto';
import type * as JoseModule from 'jose' with { 'resolution-mode': 'import' };
import { describeEachBackend } from '../helpers/backends';
import { freePort } from '../helpers/process';
import { startTestServer, type TestServer } from '../helpers/server';

const AUDIENCE = 'https://audit.test';

type Jose = typeof JoseModule;

interface SigningKey {
  kid: string;
  privateJwk: Record<string, unknown>;
  publicJwk: Record<string, unknown>;
  privateKey: Awaited<ReturnType<Jose['generateKeyPair']>>['privateKey'];
}

describeEachBackend('OIDC bearer tokens from an in-process OpenID provider', (backend) => {
  let jose: Jose;
  let srv: TestServer;
  let issuer: string;
  let port: number;
  let provider: http.Server | null = null;
  let orgId = '';
  let current: SigningKey;

  async function newKey(kid: string): Promise<SigningKey> {
    const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
    const privateJwk = { ...(await jose.exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
    const publicJwk = { ...(await jose.exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
    return { kid, privateJwk, publicJwk, privateKey };
  }

  /** (Re)starts the provider on the same port with `keys` (the first signs). */
  async function startProvider(keys: SigningKey[]): Promise<void> {
    if (provider) {
      const old = provider;
      await new Promise<void>((r) => {
        old.close(() => r());
        old.closeAllConnections();
      });
    }
    const { default: Provider } = await import('oidc-provider');
    const oidc = new Provider(issuer, {
      clients: [
        {
          client_id: 'reporting-service',
          client_secret: 'reporting-service-secret',
          grant_types: ['client_credentials'],
          redirect_uris: [],
          response_types: [],
          token_endpoint_auth_method: 'client_secret_post',
        },
      ],
      jwks: { keys: keys.map((k) => k.privateJwk) as never },
      features: {
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => AUDIENCE,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({ scope: 'audit', audience: AUDIENCE, accessTokenFormat: 'jwt', accessTokenTTL: 300, jwt: { sign: { alg: 'RS256' } } }),
        },
      },
      extraTokenClaims: () => ({ org_id: orgId, roles: 'auditor' }),
    });
    const handle = oidc.callback();
    // No keep-alive: after a restart on the same port no client may reuse a connection to the old one.
    provider = http.createServer((req, res) => {
      res.setHeader('connection', 'close');
      handle(req, res);
    });
    await new Promise<void>((r) => provider!.listen(port, '127.0.0.1', () => r()));
  }

  async function providerToken(): Promise<string> {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'reporting-service', client_secret: 'reporting-service-secret', resource: AUDIENCE, scope: 'audit' }),
    });
    const body = (await res.json()) as { access_token?: string };
    if (!body.access_token) throw new Error(`no token: ${JSON.stringify(body)}`);
    return body.access_token;
  }

  /** A token we sign ourselves, with the provider's current key unless told otherwise. */
  async function forged(claims: Record<string, unknown>, key: SigningKey = current): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new jose.SignJWT({ org_id: orgId, roles: 'auditor', ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'at+jwt' })
      .setIssuer((claims.iss as string) ?? issuer)
      .setAudience((claims.aud as string) ?? AUDIENCE)
      .setSubject('reporting-service')
      .setIssuedAt(now - 10)
      .setExpirationTime((claims.exp as number) ?? now + 300)
      .sign(key.privateKey);
  }

  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const me = (token: string) => fetch(`${srv.url}/trpc/account.me`, { headers: { authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    jose = await import('jose');
    port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    current = await newKey('key-1');
    await startProvider([current]);
    srv = await startTestServer(backend, { AUTH_OIDC_ISSUER: issuer, AUTH_OIDC_AUDIENCE: AUDIENCE, AUTH_OIDC_JWKS_COOLDOWN_MS: '0' });
    orgId = srv.organizationId;
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
    if (provider) await new Promise<void>((r) => provider!.close(() => r()));
  });

  it('accepts a token the provider issued, with the organization and role of its claims', async () => {
    const token = await providerToken();
    const res = await me(token);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { result: { data: unknown } }).result.data).toMatchObject({
      organizationId: srv.organizationId,
      role: 'auditor',
      credential: 'oidc',
      subject: 'reporting-service',
    });
    expect((await fetch(`${srv.url}/api/v1/events?limit=1`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    // The role decides: an auditor may not manage keys.
    expect((await fetch(`${srv.url}/api/v1/api-keys`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
  });

  it('rejects expired, wrong-audience and wrong-issuer tokens signed with the provider’s own key', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await me(await forged({}))).status).toBe(200); // the control: our forgery is otherwise valid
    expect((await me(await forged({ exp: now - 600 }))).status).toBe(401);
    expect((await me(await forged({ aud: 'https://other.test' }))).status).toBe(401);
    expect((await me(await forged({ iss: 'https://evil.example' }))).status).toBe(401);
  });

  it('rejects alg none and HS256 keyed with the provider’s public key', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: issuer, aud: AUDIENCE, sub: 'reporting-service', exp: now + 300, org_id: orgId, roles: 'owner' };
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    expect((await me(none)).status).toBe(401);
    const input = `${b64({ alg: 'HS256', kid: current.kid, typ: 'JWT' })}.${b64(claims)}`;
    for (const secret of [JSON.stringify(current.publicJwk), String(current.publicJwk.n)]) {
      const hs = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      expect((await me(hs)).status).toBe(401);
    }
  });

  it('rejects a token signed by a key the provider does not publish (unknown kid)', async () => {
    const stranger = await newKey('stranger');
    expect((await me(await forged({}, stranger))).status).toBe(401);
  });

  it('rejects a token without a known role or organization', async () => {
    expect((await me(await forged({ roles: 'superuser' }))).status).toBe(401);
    expect((await me(await forged({ org_id: '00000000-0000-4000-8000-000000000000' }))).status).toBe(401);
  });

  it('picks up a key rotation at the provider', async () => {
    const next = await newKey('key-2');
    await startProvider([next, current]);
    current = next;
    const token = await providerToken();
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid).toBe('key-2');
    expect((await me(token)).status).toBe(200);
  });

  it('answers 401, never 500, to garbage bearer tokens', async () => {
    for (const t of ['eyJ.eyJ.', 'eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln', `eyJ${'A'.repeat(12_000)}.x.y`]) expect((await me(t)).status).toBe(401);
  });
});
