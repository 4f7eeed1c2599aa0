/**
 * Composition root: configuration → dependencies → app → listen, with graceful shutdown.
 * `AUDIT_ROLE=migrate` applies migrations and exits.
 */
import { ConfigError, loadConfig, type Config } from './config';
import { openDatabase } from './db/client';
import { ensurePartitions, migrate } from './db/migrate';
import { createLogger } from './observability/logger';
import { startRuntime } from './runtime';

async function runMigrations(config: Config): Promise<void> {
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
  if (config.AUDIT_ROLE === 'migrate') return runMigrations(config);

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
    runtime.close().then(
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
