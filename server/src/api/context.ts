/**
 * What every operation receives: the services and, for authenticated calls, the principal whose
 * organization scopes everything it touches.
 */
import type { AlertService } from '../alerts/service';
import type { AnalyticsService } from '../analytics/service';
import type { AuditService } from '../audit/service';
import type { StreamHub } from '../streams/hub';
import type { ApiKeyService, Principal } from '../auth/api-keys';
import type { IdentityService } from '../auth/identity';
import type { EventService } from '../events/service';
import type { DeliveryService } from '../delivery/service';
import type { ExportService } from '../export/service';
import type { Logger } from '../observability/logger';
import type { FhirService } from '../fhir/service';
import type { PrivacyService } from '../privacy/service';
import type { ReportService } from '../reports/service';
import type { RetentionService } from '../retention/service';
import type { LedgerService } from '../tlog/service';

/** Services behind the API adapters. */
export interface Services {
  events: EventService;
  ledger: LedgerService;
  exports: ExportService;
  audit: AuditService;
  apiKeys: ApiKeyService;
  /** Compliance reports (server/src/reports). */
  reports: ReportService;
  /** FHIR R4 AuditEvent (server/src/fhir). */
  fhir: FhirService;
  /** Users, memberships and sign-in; null when sign-in is off (no AUTH_SECRET in production). */
  identity: IdentityService | null;
  /** Erasure, legal holds, pseudonyms (docs/privacy.md). */
  privacy: PrivacyService;
  /** Security alerts (docs/alerts.md); null only where a server is built without them (tools). */
  alerts?: AlertService | null;
  /** SIEM and webhook destinations and their delivery (docs/delivery.md). */
  deliveries: DeliveryService;
  /** Live streams of new events and alerts (docs/alerts.md); null when STREAM_MAX_CLIENTS=0. */
  streams?: StreamHub | null;
  /** Behaviour analytics (answers 501 without pgvector). */
  analytics: AnalyticsService;
  /** Retention policies, archives and runs (docs/privacy.md §6). */
  retention: RetentionService | null;
}

/** Per-request context, independent of the transport (tRPC's inner context: https://trpc.io/docs/server/context#inner-and-outer-context). */
export interface ApiContext {
  services: Services;
  principal: Principal | null;
  logger: Logger;
  requestId: string;
}

/** Context of an authenticated call. */
export type AuthedContext = ApiContext & { principal: Principal };
