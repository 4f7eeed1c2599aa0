/**
 * Legal holds (docs/privacy.md "Legal hold"): by organization, by subject or by a recorded-at time
 * range, with a reason. An active hold blocks subject erasure (409) and retention (neither
 * retention erasure nor a partition drop touches what it covers). A subject is held by its keyed
 * hash, so the hold table never holds the identifier. Placing and releasing are appended to the
 * log (`legal.hold.place`, `legal.hold.release`).
 */
import { randomUUID } from 'node:crypto';
import type { Database } from '../db/client';
import { AppError } from '../errors';
import { internalEvent, type Requester } from './events';
import type { Append } from './erasure';
import type { PrivacyKeyring } from './keys';
import { subjectHash } from './pseudonyms';
import * as repo from './repository';

/** What a new hold covers. */
export type HoldScope =
  | { scope: 'organization' }
  | { scope: 'subject'; subjectField: repo.IdentifierField; subject: string }
  | { scope: 'timeRange'; from: Date | null; to: Date | null };

/** A hold as the API shows it (a subject only as its keyed hash). */
export interface HoldInfo {
  id: string;
  scope: 'organization' | 'subject' | 'timeRange';
  subjectField: string | null;
  subjectHash: string | null;
  keyVersion: number | null;
  from: string | null;
  to: string | null;
  reason: string;
  placedBy: string;
  placedAt: string;
  releasedBy: string | null;
  releasedAt: string | null;
  active: boolean;
}

/** Places, lists, releases and checks legal holds. */
export class LegalHoldService {
  constructor(
    private readonly database: Database,
    private readonly keyring: PrivacyKeyring,
    private readonly append: Append,
  ) {}

  /** Places a hold and appends `legal.hold.place`. */
  async place(org: string, requester: Requester, what: HoldScope, reason: string): Promise<HoldInfo> {
    const id = randomUUID();
    let subject: { subjectField: string; subjectHash: string; keyVersion: number } | null = null;
    if (what.scope === 'subject') {
      const key = await this.keyring.activeKey(org);
      subject = {
        subjectField: what.subjectField,
        subjectHash: subjectHash(key.secret, what.subject),
        keyVersion: key.version,
      };
    }
    const range = what.scope === 'timeRange' ? { rangeFrom: what.from, rangeTo: what.to } : {};
    await this.append(
      org,
      internalEvent({
        action: 'legal.hold.place',
        status: 'success',
        principalId: requester.principalId,
        principalType: requester.principalType,
        targetResourceType: 'LegalHold',
        targetResourceId: id,
        dataClassification: 'CONFIDENTIAL',
        ...(requester.correlationId ? { correlationId: requester.correlationId } : {}),
        idempotencyKey: `legal.hold.place:${id}`,
        details: {
          holdId: id,
          scope: what.scope,
          ...(subject ?? {}),
          ...(what.scope === 'timeRange'
            ? { from: what.from?.toISOString() ?? null, to: what.to?.toISOString() ?? null }
            : {}),
          reason,
        },
      }),
    );
    const row = await repo.insertHold(this.database.db, {
      organizationId: org,
      id,
      scope: what.scope,
      ...(subject ?? {}),
      ...range,
      reason,
      placedBy: requester.principalId,
    });
    return toInfo(row);
  }

  /** The organization's holds, newest first. */
  async list(org: string, activeOnly: boolean): Promise<HoldInfo[]> {
    return (await repo.listHolds(this.database.db, org, activeOnly)).map(toInfo);
  }

  /** Releases an active hold and appends `legal.hold.release`; 404 when none is active with that id. */
  async release(org: string, requester: Requester, id: string): Promise<HoldInfo> {
    const existing = await repo.findHold(this.database.db, org, id);
    if (!existing) throw new AppError('NOT_FOUND', `no legal hold ${id}`);
    if (existing.releasedAt) throw new AppError('CONFLICT', `legal hold ${id} was already released`);
    await this.append(
      org,
      internalEvent({
        action: 'legal.hold.release',
        status: 'success',
        principalId: requester.principalId,
        principalType: requester.principalType,
        targetResourceType: 'LegalHold',
        targetResourceId: id,
        dataClassification: 'CONFIDENTIAL',
        ...(requester.correlationId ? { correlationId: requester.correlationId } : {}),
        idempotencyKey: `legal.hold.release:${id}`,
        details: { holdId: id, scope: existing.scope },
      }),
    );
    const row = await repo.releaseHold(this.database.db, org, id, requester.principalId);
    if (!row) throw new AppError('CONFLICT', `legal hold ${id} was already released`);
    return toInfo(row);
  }

  /**
   * The first active hold that covers `subject` in `org`: the organization, the subject (its keyed
   * hash under the hold's key version), or a time range in which an event names the subject.
   */
  async blocking(org: string, subject: string): Promise<repo.HoldRow | null> {
    const holds = await repo.listHolds(this.database.db, org, true);
    for (const h of holds) {
      if (h.scope === 'organization') return h;
      if (h.scope === 'subject' && h.keyVersion !== null) {
        const key = await this.keyring.keyVersion(org, h.keyVersion);
        if (key && subjectHash(key.secret, subject) === h.subjectHash) return h;
      }
    }
    for (const h of holds) {
      if (
        h.scope === 'timeRange' &&
        (await repo.subjectHasEventsIn(this.database.db, org, subject, h.rangeFrom, h.rangeTo))
      )
        return h;
    }
    return null;
  }

  /** The organization's active holds (retention decides with them). */
  active(org: string): Promise<repo.HoldRow[]> {
    return repo.listHolds(this.database.db, org, true);
  }
}

function toInfo(row: repo.HoldRow): HoldInfo {
  return {
    id: row.id,
    scope: row.scope,
    subjectField: row.subjectField,
    subjectHash: row.subjectHash,
    keyVersion: row.keyVersion,
    from: row.rangeFrom ? row.rangeFrom.toISOString() : null,
    to: row.rangeTo ? row.rangeTo.toISOString() : null,
    reason: row.reason,
    placedBy: row.placedBy,
    placedAt: row.placedAt.toISOString(),
    releasedBy: row.releasedBy,
    releasedAt: row.releasedAt ? row.releasedAt.toISOString() : null,
    active: row.releasedAt === null,
  };
}
