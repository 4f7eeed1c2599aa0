/**
 * Delivery of the log (and of alerts) to an organization's SIEMs and webhooks (docs/delivery.md).
 *
 * At least once, in order, per destination: each destination has a cursor (the first leaf not yet
 * delivered). A `delivery` job — at most one per destination at a time, across every worker,
 * because its job id is the destination's — sends first what waits in the destination's outbox
 * (alerts, replayed batches), then the next slice of the log as an export-bundle slice between two
 * signed checkpoints, and moves the cursor only after the receiver accepted it. The slice in
 * flight is stored before it is sent, so a retry resends exactly the same batch with the same id.
 * A batch that fails every attempt of its job becomes a dead letter (listed, replayed) and the
 * cursor moves past it, so one poisoned batch does not stop the rest. A `delivery-sweep` job
 * (a periodic task of the worker, {@link DeliveryService.sweep}) starts the delivery of every
 * destination with a backlog and measures the lag.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Database } from '../db/client';
import { AppError, validationError } from '../errors';
import { findByLeafIndex } from '../events/repository';
import { exportBundle, resolveRange } from '../export/bundle-export';
import type { JobContext, JobQueue } from '../jobs';
import type { Logger } from '../observability/logger';
import * as ledgerRepo from '../tlog/repository';
import * as repo from './repository';
import { sendBatch, type DeliveryBatch, type SendTarget } from './senders';
import { targetIssues } from './target';

/** What each destination kind needs. */
export const DESTINATION_KINDS = ['webhook', 'syslog', 'splunk_hec'] as const;
/** A destination kind. */
export type DestinationKind = (typeof DESTINATION_KINDS)[number];

/** A destination as the API shows it: never its secret, only a version and a fingerprint. */
export interface DestinationView {
  id: string;
  name: string;
  kind: DestinationKind;
  url: string;
  carries: 'all' | 'events' | 'alerts';
  enabled: boolean;
  ca: string | null;
  index: string | null;
  sourcetype: string | null;
  secretVersion: number;
  /** First 16 hex digits of SHA-256 of the current secret: tells which secret is set, reveals nothing. */
  secretFingerprint: string | null;
  previousSecretUntil: string | null;
  nextLeaf: number;
  deliveredBatches: number;
  lastDeliveredAt: string | null;
  lastError: string | null;
  createdAt: string;
}

/** A new destination. */
export interface DestinationInput {
  name: string;
  kind: DestinationKind;
  url: string;
  carries?: 'all' | 'events' | 'alerts' | undefined;
  /** Webhook signing secret or HEC token. */
  secret?: string | undefined;
  ca?: string | undefined;
  index?: string | undefined;
  sourcetype?: string | undefined;
  /** `beginning` (default): the whole log; `now`: only what is appended from now on. */
  startAt?: 'beginning' | 'now' | undefined;
}

/** A dead letter as the API shows it. */
export interface DeadLetterView {
  id: string;
  type: 'events' | 'alert';
  range: { start: number; end: number } | null;
  error: string;
  attempts: number;
  failedAt: string;
}

/** Tuning (DELIVERY_*). */
export interface DeliveryOptions {
  /** `AUDIT_LOG_ORIGIN`: checkpoints' origin prefix. */
  origin: string;
  /** 32-byte key sealing the secrets; null = destinations with secrets are refused (production without DELIVERY_SECRET_KEY). */
  secretKey: Buffer | null;
  /** Most leaves per batch (a batch ends at a signed checkpoint, so it may hold a few more). */
  batchEvents: number;
  /** Attempts of one delivery job before the failing batch becomes a dead letter. */
  attempts: number;
  backoffMs: number;
  timeoutMs: number;
  /** How long a rotated-out secret still signs webhooks beside the new one. */
  rotationGraceMs: number;
}

/** What the service reports. */
export interface DeliveryObserver {
  delivered(destinationId: string, kind: DestinationKind, batchEvents: number): void;
  failed(destinationId: string, kind: DestinationKind, final: boolean): void;
  lag(destinationId: string, seconds: number, backlogEvents: number): void;
}

/** The job that delivers one destination's backlog. */
export const DELIVERY_JOB = 'delivery';

/** Seals a secret: AES-256-GCM, `iv(12) || tag(16) || ciphertext`. */
export function sealSecret(key: Buffer, secret: string): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([c.update(secret, 'utf8'), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]);
}

/** Opens a sealed secret (throws when the key is not the one that sealed it). */
export function openSecret(key: Buffer, sealed: Buffer): string {
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  d.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([d.update(sealed.subarray(28)), d.final()]).toString('utf8');
}

/** A batch id stable across retries: derived from what the batch is. */
function batchId(destinationId: string, start: number, end: number): string {
  return `ev-${createHash('sha256').update(`${destinationId}:${start}:${end}`).digest('hex').slice(0, 32)}`;
}

/** Destinations, their delivery and dead letters. */
export class DeliveryService {
  constructor(
    private readonly database: Database,
    private readonly jobs: JobQueue,
    private readonly options: DeliveryOptions,
    private readonly logger: Logger,
    private readonly observer: DeliveryObserver | null = null,
  ) {
    jobs.define<{ organizationId: string; destinationId: string }>(DELIVERY_JOB, (data, ctx) => this.deliver(data.organizationId, data.destinationId, ctx), {
      attempts: options.attempts,
      backoffMs: options.backoffMs,
      timeoutMs: Math.max(options.timeoutMs * 20, 60_000),
    });
  }

  private key(): Buffer {
    if (!this.options.secretKey) throw new AppError('UNAVAILABLE', 'DELIVERY_SECRET_KEY is not set: destinations with a secret cannot be stored or used');
    return this.options.secretKey;
  }

  private get db() {
    return this.database.db;
  }

  // ---------------------------------------------------------------------------------------------
  // Destinations

  /** An organization's destinations with their delivery state. */
  async list(org: string): Promise<DestinationView[]> {
    const rows = await repo.destinations(this.db, org);
    return Promise.all(rows.map(async (d) => this.view(d, await repo.state(this.db, org, d.id))));
  }

  /** One destination, or 404. */
  async get(org: string, id: string): Promise<DestinationView> {
    const d = await repo.destination(this.db, org, id);
    if (!d) throw new AppError('NOT_FOUND', `no destination ${id}`);
    return this.view(d, await repo.state(this.db, org, id));
  }

  /** Creates a destination; its delivery starts at once. */
  async create(org: string, input: DestinationInput): Promise<DestinationView> {
    checkTarget(input.kind, { url: input.url, secret: input.secret, checkSecret: true });
    const id = randomUUID();
    const head = input.startAt === 'now' ? ((await ledgerRepo.latestCheckpoint(this.db, org))?.treeSize ?? 0) : 0;
    await repo.insertDestination(
      this.db,
      {
        organizationId: org,
        id,
        name: input.name,
        kind: input.kind,
        url: input.url,
        carries: input.carries ?? 'all',
        options: { ...(input.ca ? { ca: input.ca } : {}), ...(input.index ? { index: input.index } : {}), ...(input.sourcetype ? { sourcetype: input.sourcetype } : {}) },
        secretSealed: input.secret ? sealSecret(this.key(), input.secret) : null,
        secretVersion: input.secret ? 1 : 0,
        enabled: true,
      },
      head,
    );
    await this.kick(org, id);
    return this.get(org, id);
  }

  /** Changes name, URL, trust, what it carries, or pauses/resumes it. */
  async update(org: string, id: string, change: { name?: string | undefined; url?: string | undefined; carries?: 'all' | 'events' | 'alerts' | undefined; enabled?: boolean | undefined; ca?: string | null | undefined }): Promise<DestinationView> {
    const d = await repo.destination(this.db, org, id);
    if (!d) throw new AppError('NOT_FOUND', `no destination ${id}`);
    checkTarget(d.kind, { url: change.url, checkSecret: false });
    const options = { ...d.options };
    if (change.ca === null) delete options.ca;
    else if (change.ca !== undefined) options.ca = change.ca;
    await repo.updateDestination(this.db, org, id, {
      ...(change.name !== undefined ? { name: change.name } : {}),
      ...(change.url !== undefined ? { url: change.url } : {}),
      ...(change.carries !== undefined ? { carries: change.carries } : {}),
      ...(change.enabled !== undefined ? { enabled: change.enabled } : {}),
      options,
    });
    if (change.enabled !== false) await this.kick(org, id);
    return this.get(org, id);
  }

  /**
   * Sets a new secret. A webhook keeps signing with the old one too (a second `v1=` in the
   * signature header) for the rotation grace period, so the receiver can switch without a gap.
   */
  async rotateSecret(org: string, id: string, secret: string): Promise<DestinationView> {
    const d = await repo.destination(this.db, org, id);
    if (!d) throw new AppError('NOT_FOUND', `no destination ${id}`);
    checkTarget(d.kind, { secret, checkSecret: true });
    await repo.updateDestination(this.db, org, id, {
      secretSealed: sealSecret(this.key(), secret),
      secretVersion: d.secretVersion + 1,
      previousSecretSealed: d.secretSealed,
      previousSecretUntil: d.secretSealed ? new Date(Date.now() + this.options.rotationGraceMs) : null,
    });
    return this.get(org, id);
  }

  /** Deletes a destination with its cursor, outbox and dead letters. */
  async remove(org: string, id: string): Promise<void> {
    if (!(await repo.deleteDestination(this.db, org, id))) throw new AppError('NOT_FOUND', `no destination ${id}`);
  }

  /** A destination's dead letters, newest first. */
  async deadLetters(org: string, id: string, limit = 100): Promise<DeadLetterView[]> {
    await this.get(org, id);
    return (await repo.deadLetters(this.db, org, id, limit)).map((l) => ({
      id: l.id,
      type: l.kind,
      range: l.firstLeaf !== null && l.endLeaf !== null ? { start: l.firstLeaf, end: l.endLeaf } : null,
      error: l.error,
      attempts: l.attempts,
      failedAt: l.failedAt.toISOString(),
    }));
  }

  /** Sends dead letters (the given ids, or all) again, with their original ids; resolves with how many. */
  async replay(org: string, id: string, ids: string[] | null): Promise<number> {
    await this.get(org, id);
    const n = await repo.replayDeadLetters(this.db, org, id, ids);
    if (n > 0) await this.kick(org, id);
    return n;
  }

  /**
   * Queues an alert for every enabled destination of the organization that carries alerts, and
   * starts their delivery. For the alert detectors: call it after the alert is stored.
   */
  async enqueueAlert(org: string, alert: { id: string } & Record<string, unknown>): Promise<number> {
    const targets = (await repo.destinations(this.db, org)).filter((d) => d.enabled && d.carries !== 'events');
    await repo.addOutbox(
      this.db,
      targets.map((d) => ({ organizationId: org, destinationId: d.id, id: `al-${createHash('sha256').update(`${d.id}:${alert.id}:${randomUUID()}`).digest('hex').slice(0, 32)}`, kind: 'alert' as const, payload: alert })),
    );
    for (const d of targets) await this.kick(org, d.id);
    return targets.length;
  }

  /**
   * Starts (or keeps) the delivery job of a destination: at most one exists at a time. A queue that
   * cannot take the job (Redis down) does not fail the caller's change, which is already committed:
   * the worker's delivery sweep starts every destination with a backlog.
   */
  async kick(org: string, id: string): Promise<void> {
    try {
      await this.jobs.enqueue(DELIVERY_JOB, { organizationId: org, destinationId: id }, { jobId: `delivery:${org}:${id}` });
    } catch (err) {
      this.logger.warn({ destinationId: id, err: (err as Error).message }, 'delivery job not started; the next sweep starts it');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The jobs

  /** Starts the delivery of every destination with a backlog; reports each one's lag. */
  async sweep(): Promise<void> {
    const outbox = await repo.outboxCounts(this.db);
    const latest = new Map<string, number>();
    for (const { d, s } of await repo.enabledWithState(this.db)) {
      if (!latest.has(d.organizationId)) latest.set(d.organizationId, (await ledgerRepo.latestCheckpoint(this.db, d.organizationId))?.treeSize ?? 0);
      const head = latest.get(d.organizationId)!;
      const backlog = d.carries === 'alerts' ? 0 : Math.max(0, head - s.nextLeaf);
      let lag = 0;
      if (backlog > 0) {
        const oldest = await findByLeafIndex(this.db, d.organizationId, s.nextLeaf);
        if (oldest) lag = Math.max(0, (Date.now() - oldest.recordedAt.getTime()) / 1000);
      }
      this.observer?.lag(d.id, lag, backlog);
      if (backlog > 0 || (outbox.get(d.id) ?? 0) > 0) await this.kick(d.organizationId, d.id);
    }
  }

  /** The `delivery` job: sends the destination's outbox, then the log, until nothing is left. */
  async deliver(org: string, id: string, ctx: JobContext): Promise<void> {
    for (;;) {
      if (ctx.signal.aborted) throw new Error('delivery stopped');
      const d = await repo.destination(this.db, org, id);
      if (!d || !d.enabled) return;
      const target = this.targetOf(d);
      const item = await repo.firstOutbox(this.db, org, id);
      if (item) {
        const batch =
          item.kind === 'alert'
            ? await this.alertBatch(d, item.id, item.payload)
            : await this.eventsBatch(d, item.firstLeaf!, item.endLeaf!, item.id);
        await this.attempt(d, target, batch, ctx, async () => repo.removeOutbox(this.db, org, id, item.seq));
        continue;
      }
      if (d.carries === 'alerts') return;
      const s = await repo.state(this.db, org, id);
      if (!s) return;
      let end = s.inflightEnd;
      if (end === null) {
        const latest = (await ledgerRepo.latestCheckpoint(this.db, org))?.treeSize ?? 0;
        if (s.nextLeaf >= latest) return;
        // End at a signed checkpoint: the batch verifies against it on its own.
        end = (await resolveRange(this.db, org, { start: s.nextLeaf, end: Math.min(latest, s.nextLeaf + this.options.batchEvents) })).end;
        await repo.updateState(this.db, org, id, { inflightEnd: end });
      }
      const start = s.nextLeaf;
      const batch = await this.eventsBatch(d, start, end, batchId(id, start, end));
      const finalEnd = end;
      await this.attempt(d, target, batch, ctx, async () =>
        repo.updateState(this.db, org, id, { nextLeaf: finalEnd, inflightEnd: null, deliveredBatches: s.deliveredBatches + 1, lastDeliveredAt: new Date(), lastError: null }),
      );
    }
  }

  /** Sends one batch; on success runs `done`; on the job's last attempt dead-letters it and runs `done`. */
  private async attempt(d: repo.DestinationRow, target: SendTarget, batch: DeliveryBatch, ctx: JobContext, done: () => Promise<void>): Promise<void> {
    try {
      await sendBatch(target, batch);
    } catch (err) {
      const message = (err as Error).message.slice(0, 500);
      const final = ctx.attempt >= this.options.attempts;
      this.observer?.failed(d.id, d.kind, final);
      await repo.updateState(this.db, d.organizationId, d.id, { lastError: message });
      if (final) {
        await repo.addDeadLetter(this.db, {
          organizationId: d.organizationId,
          destinationId: d.id,
          id: batch.id,
          kind: batch.type,
          firstLeaf: batch.range?.start ?? null,
          endLeaf: batch.range?.end ?? null,
          payload: batch.type === 'alert' ? batch.records[0] : null,
          error: message,
          attempts: ctx.attempt,
        });
        await done();
        this.logger.error({ destination: d.id, kind: d.kind, batch: batch.id, err: message }, 'delivery batch dead-lettered');
      }
      throw err;
    }
    await done();
    this.observer?.delivered(d.id, d.kind, batch.type === 'events' && batch.range ? batch.range.end - batch.range.start : 0);
  }

  private async eventsBatch(d: repo.DestinationRow, start: number, end: number, id: string): Promise<DeliveryBatch> {
    const origin = `${this.options.origin}/${d.organizationId}`;
    // One snapshot: the exporter reads the head, the keys, the events and the checkpoints in
    // several statements, and an append committing in between would make the slice inconsistent
    // (a checkpoint beyond the head it reported) on PostgreSQL.
    const { records, cp } = await this.db.transaction(
      async (tx) => {
        const out: unknown[] = [];
        for await (const record of exportBundle(tx, d.organizationId, origin, { start, end })) out.push(record);
        return { records: out, cp: await ledgerRepo.checkpointAt(tx, d.organizationId, end) };
      },
      { isolationLevel: 'repeatable read', accessMode: 'read only' },
    );
    return {
      id,
      organizationId: d.organizationId,
      destinationId: d.id,
      type: 'events',
      range: { start, end },
      checkpoint: cp ? { treeSize: cp.treeSize, rootHash: cp.rootHash.toString('base64'), note: cp.note } : null,
      records,
    };
  }

  private async alertBatch(d: repo.DestinationRow, id: string, alert: unknown): Promise<DeliveryBatch> {
    const cp = await ledgerRepo.latestCheckpoint(this.db, d.organizationId);
    return {
      id,
      organizationId: d.organizationId,
      destinationId: d.id,
      type: 'alert',
      range: null,
      checkpoint: cp ? { treeSize: cp.treeSize, rootHash: cp.rootHash.toString('base64'), note: cp.note } : null,
      records: [alert],
    };
  }

  /** The destination with its secrets opened (current, then a previous one still in its window). */
  private targetOf(d: repo.DestinationRow): SendTarget {
    const secrets: string[] = [];
    if (d.secretSealed) secrets.push(openSecret(this.key(), d.secretSealed));
    if (d.previousSecretSealed && d.previousSecretUntil && d.previousSecretUntil.getTime() > Date.now() && d.kind === 'webhook') {
      secrets.push(openSecret(this.key(), d.previousSecretSealed));
    }
    const o = d.options as { ca?: string; index?: string; sourcetype?: string };
    return { kind: d.kind, url: d.url, ca: o.ca, secrets, index: o.index, sourcetype: o.sourcetype, timeoutMs: this.options.timeoutMs };
  }

  private view(d: repo.DestinationRow, s: repo.StateRow | null): DestinationView {
    const o = d.options as { ca?: string; index?: string; sourcetype?: string };
    return {
      id: d.id,
      name: d.name,
      kind: d.kind,
      url: d.url,
      carries: d.carries,
      enabled: d.enabled,
      ca: o.ca ?? null,
      index: o.index ?? null,
      sourcetype: o.sourcetype ?? null,
      secretVersion: d.secretVersion,
      secretFingerprint: d.secretSealed && this.options.secretKey ? createHash('sha256').update(openSecret(this.options.secretKey, d.secretSealed)).digest('hex').slice(0, 16) : null,
      previousSecretUntil: d.previousSecretUntil?.toISOString() ?? null,
      nextLeaf: s?.nextLeaf ?? 0,
      deliveredBatches: s?.deliveredBatches ?? 0,
      lastDeliveredAt: s?.lastDeliveredAt?.toISOString() ?? null,
      lastError: s?.lastError ?? null,
      createdAt: d.createdAt.toISOString(),
    };
  }
}

/** Checks a destination's URL scheme and secret for its kind: a 400 naming each field at fault. */
function checkTarget(kind: DestinationKind, target: Parameters<typeof targetIssues>[1]): void {
  const issues = targetIssues(kind, target);
  if (issues.length > 0) throw validationError(issues.map((i) => ({ path: [i.path], message: i.message })));
}
