/**
 * Composition root: configuration → tracing → dependencies → app → listen, with graceful
 * shutdown. `AUDIT_ROLE=migrate` applies migrations and exits. Everything but the configuration
 * is loaded after tracing starts, so OpenTelemetry can instrument http, express and pg.
 */
import { ConfigError, loadConfig, type Config } from './config';
import { startTracing } from './observability/tracing';
import type * as LoggerModule from './observability/logger';
import type * as DbClientModule from './db/client';
import type * as MigrateModule from './db/migrate';
import type * as RuntimeModule from './runtime';

/** `require` after tracing has started (see the module comment); typed like a static import. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = <T>(id: string): T => require(id) as T;

async function runMigrations(config: Config): Promise<void> {
  const { createLogger } = load<typeof LoggerModule>('./observability/logger');
  const { openDatabase } = load<typeof DbClientModule>('./db/client');
  const { ensurePartitions, migrate } = load<typeof MigrateModule>('./db/migrate');
  const logger = createLogger(config.LOG_LEVEL);
  const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.AUDIT_DATA_DIR });
  try {
    const applied = await migrate(database);
    const created = await ensurePartitions(database, config.PARTITION_MONTHS_AHEAD);
    logger.info({ applied, partitionsCreated: created }, 'migrations complete');
  } finally {
    await database.close();
  }
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(err.message + '\n');
      process.exit(1);
    }
    throw err;
  }
  const stopTracing = config.OTEL_EXPORTER_OTLP_ENDPOINT
    ? startTracing(config.OTEL_EXPORTER_OTLP_ENDPOINT, config.OTEL_SERVICE_NAME)
    : () => Promise.resolve();
  if (config.AUDIT_ROLE === 'migrate') {
    await runMigrations(config);
    await stopTracing();
    return;
  }

  const { createLogger } = load<typeof LoggerModule>('./observability/logger');
  const { startRuntime } = load<typeof RuntimeModule>('./runtime');
  const logger = createLogger(config.LOG_LEVEL);
  const runtime = await startRuntime(config, logger);
  if (runtime.bootstrap?.generatedKey) {
    // Printed once, to the terminal only: it is not stored anywhere but as a hash.
    process.stdout.write(
      `\n  Admin API key for organization ${runtime.bootstrap.organizationId} (shown once, keep it safe):\n\n    ${runtime.bootstrap.generatedKey}\n\n`,
    );
  }
  logger.info({ url: runtime.url, role: config.AUDIT_ROLE, database: runtime.database.kind }, 'audit server listening');

  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error('shutdown deadline exceeded; exiting');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    deadline.unref();
    runtime
      .close()
      .then(() => stopTracing().catch(() => undefined))
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`fatal: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
