/**
 * The privacy services behind the API (docs/privacy.md): keys, legal holds, erasure, pseudonyms.
 */
import type { Principal } from '../auth/api-keys';
import { can } from '../auth/permissions';
import type { Database } from '../db/client';
import { AppError } from '../errors';
import type { BundleRecord } from '../ledger';
import type { Logger } from '../observability/logger';
import { ErasureService, type Append, type ErasureOptions } from './erasure';
import { internalEvent, type Requester } from './events';
import { LegalHoldService } from './holds';
import { PrivacyKeyring } from './keys';
import {
  withholdIdentifiers,
  isPseudonym,
  pseudonymizeRecord,
  pseudonymOf,
  type IdentifyingFields,
  type Pseudonymizer,
} from './pseudonyms';
import * as repo from './repository';
import type { IdentifierField } from './repository';
import { subjectExport, type SubjectExportRecord } from './subject-export';

/**
 * What one caller sees: identifiers as they are, or pseudonyms. `apply` is the one function every
 * read path runs its records through; `flush` remembers the pseudonyms shown so that they can be
 * filtered by and resolved.
 */
export interface PseudonymView {
  /** False for callers who see identifiers (then `apply` returns records unchanged). */
  readonly pseudonymous: boolean;
  /** The pseudonymizer (identity for callers who see identifiers). */
  readonly pseudonym: Pseudonymizer;
  /** Replaces direct identifiers of a record (pure; see {@link pseudonymizeRecord}). */
  apply<T extends IdentifyingFields>(record: T): T;
  /** Stores the pseudonyms handed out so far (call before answering). */
  flush(): Promise<void>;
}

const IDENTITY_VIEW: PseudonymView = {
  pseudonymous: false,
  pseudonym: (v) => v,
  apply: (r) => r,
  flush: () => Promise.resolve(),
};

/** Whether `principal` sees direct identifiers (and may resolve pseudonyms). */
export function seesIdentifiers(principal: Pick<Principal, 'role'>): boolean {
  return can(principal.role, 'privacy.pseudonyms:resolve');
}

/** Keys, holds, erasures and pseudonyms of every organization. */
export class PrivacyService {
  readonly keyring: PrivacyKeyring;
  readonly holds: LegalHoldService;
  readonly erasures: ErasureService;

  constructor(
    private readonly database: Database,
    private readonly append: Append,
    options: ErasureOptions,
    logger: Logger,
    private readonly originOf: (org: string) => string,
  ) {
    this.keyring = new PrivacyKeyring(database);
    this.holds = new LegalHoldService(database, this.keyring, append);
    this.erasures = new ErasureService(database, this.keyring, this.holds, append, options, logger);
  }

  /** The view of the caller: pseudonyms unless it holds `privacy.pseudonyms:resolve`. */
  async viewFor(principal: Pick<Principal, 'role' | 'organizationId'>): Promise<PseudonymView> {
    if (seesIdentifiers(principal)) return IDENTITY_VIEW;
    const org = principal.organizationId;
    const key = await this.keyring.activeKey(org);
    const shown = new Map<string, string>();
    const pseudonym: Pseudonymizer = (value) => {
      const p = pseudonymOf(key.secret, value);
      shown.set(p, value);
      return p;
    };
    const database = this.database;
    return {
      pseudonymous: true,
      pseudonym,
      apply: (record) => pseudonymizeRecord(record, pseudonym),
      async flush() {
        const pairs = [...shown.entries()];
        shown.clear();
        for (let i = 0; i < pairs.length; i += 500)
          await repo.rememberPseudonyms(database.db, org, key.version, pairs.slice(i, i + 500));
      },
    };
  }

  /**
   * The organization's pseudonym of `value` (active key), remembered so that holders of
   * `privacy.pseudonyms:resolve` can resolve it: what other modules write to the log instead of
   * a direct identifier (the alert events, docs/alerts.md).
   */
  async pseudonymFor(org: string, value: string): Promise<string> {
    const key = await this.keyring.activeKey(org);
    const p = pseudonymOf(key.secret, value);
    await repo.rememberPseudonyms(this.database.db, org, key.version, [[p, value]]);
    return p;
  }

  /**
   * Filter values as given by a caller, with pseudonyms replaced by what they stand for (an
   * unknown pseudonym stays as it is and matches nothing).
   */
  async resolveFilter(org: string, values: string[] | undefined): Promise<string[] | undefined> {
    if (!values) return values;
    const pseudonyms = values.filter(isPseudonym);
    if (pseudonyms.length === 0) return values;
    const known = await repo.valuesOfPseudonyms(this.database.db, org, pseudonyms);
    return values.map((v) => known.get(v) ?? v);
  }

  /**
   * Every event about a subject with proofs against the latest checkpoint (see subject-export.ts);
   * the subject may be given as a pseudonym. Stream it, never collect it.
   */
  async subjectExport(
    org: string,
    field: IdentifierField,
    subject: string,
  ): Promise<AsyncGenerator<SubjectExportRecord, void, undefined>> {
    const value = (await this.resolveFilter(org, [subject]))![0]!;
    return subjectExport(this.database.db, org, this.originOf(org), field, value);
  }

  /** What a pseudonym stands for (audited as `privacy.pseudonym.resolve`); 404 when unknown. */
  async resolve(
    org: string,
    requester: Requester,
    pseudonym: string,
  ): Promise<{ pseudonym: string; value: string }> {
    const known = await repo.valuesOfPseudonyms(this.database.db, org, [pseudonym]);
    const value = known.get(pseudonym);
    // An unknown pseudonym is a 404, not a disclosure: only resolutions are appended.
    if (value === undefined) throw new AppError('NOT_FOUND', `no pseudonym ${pseudonym} is known in this organization`);
    await this.append(
      org,
      internalEvent({
        action: 'privacy.pseudonym.resolve',
        status: 'success',
        principalId: requester.principalId,
        principalType: requester.principalType,
        targetResourceType: 'Pseudonym',
        targetResourceId: pseudonym,
        dataClassification: 'CONFIDENTIAL',
        ...(requester.correlationId ? { correlationId: requester.correlationId } : {}),
      }),
    );
    if (value === undefined)
      throw new AppError('NOT_FOUND', `no pseudonym ${pseudonym} is known in this organization`);
    return { pseudonym, value };
  }
}

/**
 * An export bundle as `view` may receive it: events' direct identifiers withheld (see
 * {@link withholdIdentifiers}); the pseudonyms shown are remembered every 1,000 records.
 */
export function bundleForView(
  records: AsyncGenerator<BundleRecord, void, undefined>,
  view: PseudonymView,
): AsyncGenerator<BundleRecord, void, undefined> {
  // A caller who may see identifiers gets the records as they are (no generator in between).
  return view.pseudonymous ? pseudonymousBundle(records, view) : records;
}

async function* pseudonymousBundle(
  records: AsyncIterable<BundleRecord>,
  view: PseudonymView,
): AsyncGenerator<BundleRecord, void, undefined> {
  let n = 0;
  for await (const r of records) {
    if (r.type === 'event') {
      yield { ...r, fields: withholdIdentifiers(r.fields, view.pseudonym) };
      if (++n % 1000 === 0) await view.flush();
    } else {
      if (r.type === 'end') await view.flush();
      yield r;
    }
  }
}
