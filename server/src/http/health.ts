/**
 * Liveness, readiness and metrics. `/health` says only that the process serves HTTP; `/ready`
 * checks the database, the schema version and Redis (when configured) and names what fails.
 */
import { Router } from 'express';
import type { Database } from '../db/client';
import { currentSchemaVersion } from '../db/migrate';
import type { Metrics } from '../observability/metrics';
import { requireAccess } from './middleware';

/** What readiness depends on. */
export interface ReadinessDeps {
  database: Database;
  expectedSchemaVersion: string;
  redisPing: (() => Promise<void>) | null;
  metrics: Metrics;
  isShuttingDown: () => boolean;
}

async function check(fn: () => Promise<void>, timeoutMs = 2000): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs))),
    ]);
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every readiness check. */
export async function readiness(deps: ReadinessDeps): Promise<{ ready: boolean; checks: Record<string, string> }> {
  const checks: Record<string, string> = {};
  const db = await check(() => deps.database.ping());
  deps.metrics.databaseUp.set(db ? 0 : 1);
  checks.database = db ? `failing: ${db}` : 'ok';
  if (!db) {
    let version: string | null = null;
    const err = await check(async () => {
      version = await currentSchemaVersion(deps.database);
    });
    checks.migrations = err
      ? `failing: ${err}`
      : version === deps.expectedSchemaVersion
        ? 'ok'
        : `failing: schema at ${version ?? 'none'}, expected ${deps.expectedSchemaVersion}`;
  } else {
    checks.migrations = 'failing: database unreachable';
  }
  if (deps.redisPing) {
    const r = await check(deps.redisPing);
    deps.metrics.redisUp.set(r ? 0 : 1);
    checks.redis = r ? `failing: ${r}` : 'ok';
  }
  if (deps.isShuttingDown()) checks.shutdown = 'failing: shutting down';
  return { ready: Object.values(checks).every((v) => v === 'ok'), checks };
}

/** `/health`, `/ready`, `/metrics`. */
export function healthRouter(deps: ReadinessDeps): Router {
  const r = Router();
  r.get('/health', requireAccess('public'), (_req, res) => {
    res.json({ status: 'ok' });
  });
  r.get('/ready', requireAccess('public'), async (_req, res) => {
    const result = await readiness(deps);
    res.status(result.ready ? 200 : 503).json({ status: result.ready ? 'ready' : 'not ready', checks: result.checks });
  });
  r.get('/metrics', requireAccess('public'), async (_req, res) => {
    res.setHeader('content-type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });
  return r;
}
