/**
 * The CapabilityStatement served at `GET /fhir/metadata`: exactly what this server does with
 * FHIR — AuditEvent read, create and type search with the parameters of search.ts, batch and
 * transaction Bundles of AuditEvent creates, JSON only — nothing more.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MAX_COUNT, SEARCH_PARAMETERS } from './search';

/** The server package's version (the same relative path from src/fhir and dist/fhir). */
export const SERVER_VERSION = (JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')) as { version: string }).version;

/** IHE Basic Audit Log Patterns profiles an AuditEvent sent here round-trips unchanged. */
export const BALP_PROFILES = [
  'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Create',
  'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Read',
  'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Update',
  'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Delete',
  'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Query',
  'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientCreate',
  'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead',
  'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientUpdate',
  'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientDelete',
  'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientQuery',
] as const;

/** The CapabilityStatement (`date`: when this server started; `url`: its FHIR base). */
export function capabilityStatement(date: string, baseUrl: string, version = SERVER_VERSION): Record<string, unknown> {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date,
    publisher: 'SMEDREC',
    kind: 'instance',
    software: { name: 'SMEDREC Audit', version },
    implementation: { description: 'SMEDREC Audit: a verifiable audit log (RFC 9162 Merkle tree per organization)', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        documentation:
          'AuditEvent only. Every AuditEvent is appended to the caller’s organization log (tenant from the credentials) and acknowledged with a ledger receipt ' +
          '(meta.extension ledger-receipt and the X-Audit-Receipt header). Every event of the log, however it arrived, reads as an AuditEvent.',
        security: {
          cors: false,
          description: 'Authorization: Bearer <API key or OIDC access token>, or a session cookie. Create needs audit.events:create, read and search audit.events:read.',
        },
        resource: [
          {
            type: 'AuditEvent',
            profile: 'http://hl7.org/fhir/StructureDefinition/AuditEvent',
            supportedProfile: [...BALP_PROFILES],
            documentation: `Search results: _count (1–${MAX_COUNT}, default 20), _sort (-date default, or date: on AuditEvent.recorded, ties by id); pages follow the Bundle's next link.`,
            interaction: [{ code: 'read' }, { code: 'create' }, { code: 'search-type' }],
            versioning: 'no-version',
            readHistory: false,
            updateCreate: false,
            conditionalCreate: false,
            conditionalRead: 'not-supported',
            conditionalUpdate: false,
            conditionalDelete: 'not-supported',
            searchParam: SEARCH_PARAMETERS.map((p) => ({
              name: p.name,
              definition: p.definition,
              type: p.type,
              documentation: p.documentation,
            })),
          },
        ],
        interaction: [
          { code: 'batch', documentation: 'Bundle of POST AuditEvent entries, each answered on its own' },
          { code: 'transaction', documentation: 'Bundle of POST AuditEvent entries: all valid or none appended' },
        ],
      },
    ],
  };
}
