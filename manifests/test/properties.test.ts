/**
 * Property tests: whatever valid props a caller picks, the constructs emit manifests that pass
 * the OpenAPI schema and every policy rule (safe by default is not limited to the defaults).
 */
import { Testing } from 'cdk8s';
import fc from 'fast-check';
import { AuditServer, LogLevel, MigrationMode } from '../src/audit-server';
import { ObservabilityStack } from '../src/observability-stack';
import { PgVectorDb } from '../src/pg-vector-db';
import { RedisCache, RedisEvictionPolicy } from '../src/redis-cache';
import { formatViolations, validateManifests } from '../src/validate';

const origin = fc.tuple(fc.constantFrom('http', 'https'), fc.stringMatching(/^[a-z][a-z0-9-]{0,10}\.example\.org$/)).map(([s, h]) => `${s}://${h}`);

const auditServerProps = fc
  .record({
    replicas: fc.integer({ min: 2, max: 6 }),
    extra: fc.integer({ min: 0, max: 10 }),
    autoscalingEnabled: fc.boolean(),
    workerReplicas: fc.integer({ min: 1, max: 4 }),
    migrations: fc.constantFrom(MigrationMode.JOB_PRE_SYNC, MigrationMode.JOB_SYNC_WAVE, MigrationMode.INIT_CONTAINER),
    createNamespace: fc.boolean(),
    ingressEnabled: fc.boolean(),
    corsOrigins: fc.array(origin, { maxLength: 3 }),
    logLevel: fc.constantFrom(...Object.values(LogLevel)),
    rpm: fc.integer({ min: 1, max: 100_000 }),
    imageTag: fc.stringMatching(/^v?\d{1,2}\.\d{1,2}\.\d{1,2}(-rc\.\d)?$/),
    withPeers: fc.boolean(),
  })
  .map((r) => ({
    replicas: r.replicas,
    autoscalingEnabled: r.autoscalingEnabled,
    autoscaling: { maxReplicas: r.replicas + r.extra },
    workerReplicas: r.workerReplicas,
    migrations: r.migrations,
    createNamespace: r.createNamespace,
    ingressEnabled: r.ingressEnabled,
    imageTag: r.imageTag,
    config: { corsOrigins: r.corsOrigins, logLevel: r.logLevel },
    ingress: { requestsPerMinutePerClient: r.rpm },
    ...(r.withPeers
      ? { database: { podLabels: { app: 'pg' }, port: 5432 }, redis: { podLabels: { app: 'redis' }, namespace: 'cache', port: 6379 } }
      : {}),
  }));

describe('for any valid props', () => {
  it('AuditServer passes validation', () => {
    fc.assert(
      fc.property(auditServerProps, (props) => {
        const chart = Testing.chart();
        new AuditServer(chart, 'AuditServer', props);
        const violations = validateManifests(Testing.synth(chart));
        if (violations.length > 0) throw new Error(formatViolations(violations));
      }),
      { numRuns: 40 },
    );
  });

  it('RedisCache, PgVectorDb and ObservabilityStack pass validation', () => {
    fc.assert(
      fc.property(
        fc.record({
          maxMemoryMiB: fc.integer({ min: 16, max: 8192 }),
          policy: fc.constantFrom(...Object.values(RedisEvictionPolicy)),
          exporter: fc.boolean(),
          storageGiB: fc.integer({ min: 1, max: 1000 }),
          electric: fc.boolean(),
          backup: fc.boolean(),
          retention: fc.integer({ min: 1, max: 365 }),
          collectors: fc.integer({ min: 1, max: 5 }),
          noClients: fc.boolean(),
        }),
        (p) => {
          const chart = Testing.chart();
          new RedisCache(chart, 'Redis', { maxMemoryMiB: p.maxMemoryMiB, evictionPolicy: p.policy, exporterEnabled: p.exporter, ...(p.noClients ? { clients: [] } : {}) });
          new PgVectorDb(chart, 'Postgres', { storageGiB: p.storageGiB, electricEnabled: p.electric, backupEnabled: p.backup, backupRetentionDays: p.retention });
          new ObservabilityStack(chart, 'Observability', { collectorReplicas: p.collectors, ...(p.noClients ? { telemetrySources: [] } : {}) });
          const violations = validateManifests(Testing.synth(chart));
          if (violations.length > 0) throw new Error(formatViolations(violations));
        },
      ),
      { numRuns: 25 },
    );
  });
});
