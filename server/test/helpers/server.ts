/**
 * Starts a real server in-process on an ephemeral port for integration tests, on PGlite (temp
 * data dir) or a fresh PostgreSQL database (+ Redis when configured), with a known admin key.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTRPCClient, httpBatchLink, httpLink } from '@trpc/client';
import { loadConfig } from '../../src/config';
import { generateSignerKey } from '../../src/ledger';
import { createLogger } from '../../src/observability/logger';
import { startRuntime, type Runtime } from '../../src/runtime';
import type { AppRouter } from '../../src/trpc/routers';
import { createTestDatabase, testRedisUrl, type BackendName } from './backends';

/** A running test server. */
export interface TestServer {
  backend: BackendName;
  url: string;
  runtime: Runtime;
  adminKey: string;
  organizationId: string;
  verifierKey: string;
  env: Record<string, string>;
  /** A typed tRPC client authenticated with `key` (default: the admin key). */
  client(key?: string, opts?: { batch?: boolean }): ReturnType<typeof createTRPCClient<AppRouter>>;
  /** fetch against the server with a key (null: none) and extra headers. */
  request(method: string, p: string, body?: unknown, key?: string | null, extraHeaders?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/** A stable admin key for tests (≥ 32 characters). */
export const TEST_ADMIN_KEY = 'sak_test_admin_key_0123456789abcdefghijklmnop';

/** Environment for a backend: a temp PGlite dir, or a fresh PostgreSQL database (+ Redis). */
export async function backendEnv(backend: BackendName): Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> {
  const { signerKey } = generateSignerKey('test.audit');
  if (backend === 'pglite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-test-'));
    return {
      env: { AUDIT_DATA_DIR: dir, AUDIT_SIGNING_KEY: signerKey },
      cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const db = await createTestDatabase();
  const redis = testRedisUrl();
  return {
    // Redis db 15 is shared by every test run: each server gets its own cache key prefix.
    env: { DATABASE_URL: db.url, AUDIT_SIGNING_KEY: signerKey, ...(redis ? { REDIS_URL: redis, CACHE_KEY_PREFIX: `test:${randomBytes(6).toString('hex')}:` } : {}) },
    cleanup: db.drop,
  };
}

/** Options of {@link startTestServer}. */
export interface TestServerOptions {
  /** Receives every log line the server writes (at LOG_LEVEL, default `info` when given). */
  log?: (line: string) => void;
}

/** Starts a server on `backend` with optional env overrides. */
export async function startTestServer(backend: BackendName, overrides: Record<string, string> = {}, options: TestServerOptions = {}): Promise<TestServer> {
  const { env: benv, cleanup } = await backendEnv(backend);
  const env = {
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    NODE_ENV: 'test',
    AUDIT_LOG_ORIGIN: 'test.audit',
    AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
    RATE_LIMIT_PER_MINUTE: '0',
    // Every test signs in from 127.0.0.1 through one shared Redis: the limiter test sets its own.
    AUTH_LOGIN_MAX_ATTEMPTS: '1000',
    // The security detectors append `alert.*` events to the log they watch (a PHI event at night, a
    // third 403 …), which would change the counts other tests assert: tests of the alerts turn them on.
    ALERTS_DETECTORS_ENABLED: 'false',
    ...benv,
    ...overrides,
  };
  const config = loadConfig(env);
  const sink = options.log;
  const logger = sink ? createLogger(overrides.LOG_LEVEL ?? 'info', { write: (line: string) => sink(line) }) : createLogger('silent');
  const runtime = await startRuntime(config, logger);
  const url = runtime.url;
  const { signer } = runtime;
  return {
    backend,
    url,
    runtime,
    env,
    adminKey: TEST_ADMIN_KEY,
    organizationId: runtime.bootstrap!.organizationId,
    verifierKey: signer!.verifierKey,
    client(key = TEST_ADMIN_KEY, opts = {}) {
      const headers = () => ({ authorization: `Bearer ${key}` });
      return createTRPCClient<AppRouter>({
        // A batch holds at most TRPC_MAX_BATCH calls (default 20), as a real client is configured.
        links: [(opts.batch ?? true) ? httpBatchLink({ url: `${url}/trpc`, headers, maxItems: config.TRPC_MAX_BATCH }) : httpLink({ url: `${url}/trpc`, headers })],
      });
    },
    async request(method, p, body, key = TEST_ADMIN_KEY, extraHeaders = {}) {
      const headers: Record<string, string> = { ...extraHeaders };
      if (key) headers.authorization = `Bearer ${key}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(url + p, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON (metrics) */
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      await runtime.close();
      await cleanup();
    },
  };
}
