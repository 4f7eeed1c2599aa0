// The public, jsii-friendly surface: construct classes, their props interfaces and enums, and
// classes with static members for what used to be free functions and constants. Helpers used
// only inside the library (workload-defaults, the environments of main.ts) are not exported.
export type { SecretKeyReference } from './secret-reference';
export type { NetworkPeer } from './network-peer';
export type { ContainerResources } from './container-resources';
export { ArchiveEncryption, AuditServer, LogLevel, MigrationMode } from './audit-server';
export type {
  AuditServerArchiveBucketOptions,
  AuditServerAutoscalingOptions,
  AuditServerConfig,
  AuditServerIngressOptions,
  AuditServerRedisSentinelOptions,
  AuditServerProps,
  AuditServerRetentionOptions,
  AuditServerWebIdentityOptions,
  IngressControllerConfigMapOptions,
} from './audit-server';
export { RedisCache, RedisEvictionPolicy, RedisMode } from './redis-cache';
export type { RedisCacheProps, RedisSentinelOptions } from './redis-cache';
export { PgVectorDb } from './pg-vector-db';
export type { ElectricOptions, PgVectorDbProps } from './pg-vector-db';
export { PostgresCluster } from './postgres-cluster';
export type { PostgresClusterProps } from './postgres-cluster';
export { ObservabilityStack } from './observability-stack';
export type { AlertRule, ObservabilityStackProps, PrometheusMonitoringOptions } from './observability-stack';
export { AlertRouting } from './alert-routing';
export type { AlertReceiverOptions, AlertRoutingProps } from './alert-routing';
export { ArgoCdApplication } from './argo-cd-application';
export type { ArgoCdApplicationProps } from './argo-cd-application';
export { ManifestValidationError, ManifestValidator } from './validate';
export type { Violation } from './validate';
