/**
 * Behaviour analytics (docs/analytics.md): similar events, per-principal baselines, anomaly
 * scores, and the worker's catch-up task that embeds new events and runs the anomaly detector.
 * Everything needs the pgvector extension; without it every call answers 501 naming it, and the
 * catch-up task does nothing.
 */
import type { Database, Tx } from '../db/client';
import { AppError, validationError } from '../errors';
import type { ErasedBatch, ErasureHooks } from '../privacy/erasure';
import { EMBEDDING_VERSION, embedEvent, parseVectorLiteral, toVectorLiteral } from './embedding';
import {
  analyticsInstalled,
  deleteEmbeddingRows,
  eventsById,
  eventsFrom,
  insertEmbeddings,
  lockProgress,
  nearest,
  organizationThreshold,
  organizationsBehind,
  principalBaseline,
  saveProgress,
  scoreEvents,
  setOrganizationThreshold,
  storedEmbedding,
  updateEmbeddings,
  type EmbeddableEvent,
  type EmbeddingRow,
  type EventSummary,
  type ScoredRow,
} from './repository';

/** The message of every analytics call on a database without pgvector. */
export const MISSING_EXTENSION_MESSAGE =
  'behaviour analytics needs the PostgreSQL extension "vector" (pgvector), which this database does not have: ' +
  'install it (CREATE EXTENSION vector, as a superuser), then call the function audit_analytics_install() as the migration role';

/** Configuration of the analytics service (ANALYTICS_* settings). */
export interface AnalyticsOptions {
  /** Events embedded per transaction by the catch-up task. */
  batchSize: number;
  /** Most batches one catch-up run embeds (the rest waits for the next run). */
  maxBatchesPerRun: number;
  /** Score above which an event is an anomaly, unless the organization set its own. */
  anomalyThreshold: number;
  /** Days of a principal's history that form its baseline. */
  baselineDays: number;
  /** Fewest baseline events a principal needs before its events are scored. */
  minBaselineEvents: number;
}

/**
 * Floor of the spread in the score's denominator. One feature group changing (a rare failure, a
 * second browser) moves an event by roughly 0.1–0.2 in cosine distance; with the floor at 0.08 a
 * score of 4 needs at least 0.32 beyond the principal's mean, i.e. several habits broken at once,
 * however regular the principal (whose own spread may be 0.02).
 */
export const SPREAD_FLOOR = 0.08;
/** Nearest normal events put into an anomaly alert. */
export const NEAREST_NORMAL_IN_ALERT = 3;

const DAY_MS = 24 * 3600 * 1000;

/** A principal's baseline over a window. */
export interface Baseline {
  principalId: string;
  from: string;
  to: string;
  /** Embedded events of the principal in the window. */
  events: number;
  /** Mean of their embeddings (not re-normalised), or null without events. */
  centroid: number[] | null;
  /** Their cosine distances from the centroid: mean, standard deviation, maximum. */
  spread: { mean: number; stddev: number; max: number } | null;
}

/** An event scored against its principal's baseline. */
export interface Anomaly extends EventSummary {
  /** Cosine distance from the principal's baseline centroid. */
  distance: number;
  /** (distance − baseline mean) / max(baseline stddev, {@link SPREAD_FLOOR}). */
  score: number;
  baseline: { events: number; meanDistance: number; stddevDistance: number };
}

/** What the anomaly detector raises: the event, its baseline and the nearest normal events. */
export interface AnomalyAlert {
  organizationId: string;
  /** Stable per event, so a retried run raises nothing twice. */
  dedupeKey: string;
  threshold: number;
  anomaly: Anomaly;
  baseline: { principalId: string; from: string; events: number; meanDistance: number; stddevDistance: number };
  /** The principal's baseline events nearest to this one (what normal looks like), nearest first. */
  nearestNormal: Array<EventSummary & { distance: number }>;
}

/** Receives each anomaly the detector finds (the alerts service, when wired). */
export type AnomalySink = (alert: AnomalyAlert) => Promise<void>;

/** What one catch-up run did. */
export interface CatchUpResult {
  embedded: number;
  organizations: number;
  anomalies: number;
  /** Whether leaves were left for the next run (the run's batch budget was used up). */
  more: boolean;
}

function toAnomaly(r: ScoredRow): Anomaly {
  return {
    eventId: r.eventId,
    recordedAt: r.recordedAt,
    action: r.action,
    status: r.status,
    principalId: r.principalId,
    targetResourceType: r.targetResourceType,
    distance: r.distance,
    score: r.score,
    baseline: { events: r.baselineEvents, meanDistance: r.meanDistance, stddevDistance: r.stddevDistance },
  };
}

function embeddingRow(e: EmbeddableEvent): EmbeddingRow {
  return { eventId: e.id, recordedAt: e.recordedAt, leafIndex: e.leafIndex, embedding: toVectorLiteral(embedEvent(e)) };
}

/** Similar events, baselines, anomalies, and the catch-up task. */
export class AnalyticsService {
  private installed: boolean | null = null;
  private checkedAt = 0;

  constructor(
    private readonly database: Database,
    readonly options: AnalyticsOptions,
  ) {}

  /**
   * Whether pgvector and the analytics tables are present. A yes is kept; a no is asked again
   * after a minute, so installing the extension later needs no restart.
   */
  async available(): Promise<boolean> {
    if (this.installed === true) return true;
    if (this.installed === false && Date.now() - this.checkedAt < 60_000) return false;
    this.installed = await analyticsInstalled(this.database.db);
    this.checkedAt = Date.now();
    return this.installed;
  }

  /** Throws the 501 naming the extension when analytics cannot run here. */
  async requireAvailable(): Promise<void> {
    if (!(await this.available())) throw new AppError('NOT_IMPLEMENTED', MISSING_EXTENSION_MESSAGE);
  }

  /** The `k` events of `org` most similar to event `eventId`, nearest first (the event itself excluded). */
  async similar(org: string, eventId: string, k: number): Promise<{ eventId: string; neighbors: Array<EventSummary & { distance: number }> }> {
    await this.requireAvailable();
    const db = this.database.db;
    let vector = await storedEmbedding(db, org, eventId);
    if (vector === null) {
      // Not embedded yet (the worker runs behind ingest): embed it now, without storing.
      const [event] = await eventsById(db, org, [eventId]);
      if (!event) throw new AppError('NOT_FOUND', `event ${eventId} not found`);
      vector = toVectorLiteral(embedEvent(event));
    }
    return { eventId, neighbors: await nearest(db, org, vector, k, { excludeId: eventId }) };
  }

  /** A principal's centroid and spread over [from, to) (default: the last ANALYTICS_BASELINE_DAYS days). */
  async principalBaseline(org: string, principalId: string, window: { from?: Date | undefined; to?: Date | undefined } = {}): Promise<Baseline> {
    await this.requireAvailable();
    const to = window.to ?? new Date();
    const from = window.from ?? new Date(to.getTime() - this.options.baselineDays * DAY_MS);
    if (from >= to) throw validationError([{ path: ['from'], message: 'must be before to' }]);
    const b = await principalBaseline(this.database.db, org, principalId, from, to);
    return {
      principalId,
      from: from.toISOString(),
      to: to.toISOString(),
      events: b.events,
      centroid: b.centroid === null ? null : parseVectorLiteral(b.centroid),
      spread: b.events === 0 ? null : { mean: b.meanDistance ?? 0, stddev: b.stddevDistance ?? 0, max: b.maxDistance ?? 0 },
    };
  }

  /** The organization's threshold: its own, else ANALYTICS_ANOMALY_THRESHOLD. */
  async threshold(org: string): Promise<number> {
    return (await organizationThreshold(this.database.db, org)) ?? this.options.anomalyThreshold;
  }

  /** Sets (null: clears) the organization's own anomaly threshold; returns the effective one. */
  async setThreshold(org: string, threshold: number | null): Promise<number> {
    await this.requireAvailable();
    await setOrganizationThreshold(this.database.db, org, threshold);
    return this.threshold(org);
  }

  /**
   * Events recorded in [from, to) (default: the last 24 hours) whose score against their
   * principal's baseline (the `baselineDays` before `from`) is above the threshold (default: the
   * organization's), highest first.
   */
  async anomalies(
    org: string,
    input: { from?: Date | undefined; to?: Date | undefined; baselineDays?: number | undefined; threshold?: number | undefined; minBaselineEvents?: number | undefined; limit: number },
  ): Promise<{ from: string; to: string; baselineFrom: string; threshold: number; anomalies: Anomaly[] }> {
    await this.requireAvailable();
    const to = input.to ?? new Date();
    const from = input.from ?? new Date(to.getTime() - DAY_MS);
    if (from >= to) throw validationError([{ path: ['from'], message: 'must be before to' }]);
    const baselineFrom = new Date(from.getTime() - (input.baselineDays ?? this.options.baselineDays) * DAY_MS);
    const threshold = input.threshold ?? (await this.threshold(org));
    const scored = await scoreEvents(
      this.database.db,
      org,
      { kind: 'window', from, to, baselineFrom },
      { threshold, limit: input.limit, minBaselineEvents: input.minBaselineEvents ?? this.options.minBaselineEvents, spreadFloor: SPREAD_FLOOR },
    );
    return { from: from.toISOString(), to: to.toISOString(), baselineFrom: baselineFrom.toISOString(), threshold, anomalies: scored.map(toAnomaly) };
  }

  /**
   * Erasure hook: deletes the embeddings of `eventIds` (the worker does not embed them again:
   * its cursor is past them). Returns how many existed.
   */
  async deleteEmbeddings(org: string, eventIds: string[]): Promise<number> {
    if (!(await this.available())) return 0;
    return deleteEmbeddingRows(this.database.db, org, eventIds);
  }

  /**
   * Erasure hook: recomputes the embeddings of `eventIds` from the events as they are now (erased
   * fields are null, so they no longer contribute). Only events already embedded are rewritten
   * (the worker embeds the others, erased, when it reaches them). Returns how many were rewritten.
   * `tx`: the erasure's own transaction (PGlite has one connection).
   */
  async reembed(org: string, eventIds: string[], tx?: Tx): Promise<number> {
    const db = tx ?? this.database.db;
    if (this.installed !== true && !(await analyticsInstalled(db))) return 0;
    const events = await eventsById(db, org, eventIds);
    return updateEmbeddings(db, org, EMBEDDING_VERSION, events.map(embeddingRow));
  }

  /**
   * The hooks to register with the privacy module's erasure (`erasures.onErased`): every erased
   * batch's embeddings are recomputed without the erased fields, in the batch's own transaction,
   * so an erased value never outlives the erasure in a vector.
   */
  erasureHooks(): ErasureHooks {
    return {
      inTransaction: async (batch: ErasedBatch, tx: Tx) => {
        await this.reembed(batch.organizationId, batch.eventIds, tx);
      },
    };
  }

  /**
   * The worker's catch-up task: embeds every organization's leaves after the last embedded one,
   * `batchSize` per transaction (the cursor moves in the same transaction, under a row lock that
   * other workers skip), at most `maxBatchesPerRun` batches per run; after each batch the anomaly
   * detector scores the new events and hands each one above the organization's threshold to
   * `sink`. A plain function of the database, so a job queue can run it.
   */
  async catchUp(sink: AnomalySink | null = null): Promise<CatchUpResult> {
    const result: CatchUpResult = { embedded: 0, organizations: 0, anomalies: 0, more: false };
    if (!(await this.available())) return result;
    const db = this.database.db;
    let budget = this.options.maxBatchesPerRun;
    for (const { organizationId: org } of await organizationsBehind(db)) {
      let touched = false;
      for (;;) {
        if (budget === 0) {
          result.more = true;
          return result;
        }
        budget--;
        const batch = await db.transaction(async (tx) => {
          const next = await lockProgress(tx, org);
          if (next === null) return null; // another worker has it
          const events = await eventsFrom(tx, org, next, this.options.batchSize);
          if (events.length === 0) return null;
          await insertEmbeddings(tx, org, EMBEDDING_VERSION, events.map(embeddingRow));
          const last = events[events.length - 1]!;
          await saveProgress(tx, org, last.leafIndex + 1);
          return { fromLeaf: events[0]!.leafIndex, toLeaf: last.leafIndex + 1, count: events.length, first: events[0]!.recordedAt };
        });
        if (!batch) break;
        touched = true;
        result.embedded += batch.count;
        result.anomalies += await this.detect(org, batch, sink);
        if (batch.count < this.options.batchSize) break;
      }
      if (touched) result.organizations++;
    }
    return result;
  }

  /** Scores leaves [fromLeaf, toLeaf) against their principals' earlier events; raises each anomaly. */
  private async detect(org: string, batch: { fromLeaf: number; toLeaf: number; first: Date }, sink: AnomalySink | null): Promise<number> {
    const db = this.database.db;
    const threshold = await this.threshold(org);
    const baselineFrom = new Date(batch.first.getTime() - this.options.baselineDays * DAY_MS);
    const scored = await scoreEvents(
      db,
      org,
      { kind: 'leaves', fromLeaf: batch.fromLeaf, toLeaf: batch.toLeaf, baselineFrom },
      { threshold, limit: 1000, minBaselineEvents: this.options.minBaselineEvents, spreadFloor: SPREAD_FLOOR },
    );
    if (!sink) return scored.length;
    for (const r of scored) {
      const nearestNormal = await nearest(db, org, r.embedding, NEAREST_NORMAL_IN_ALERT, {
        principalId: r.principalId!,
        beforeLeaf: batch.fromLeaf,
      });
      await sink({
        organizationId: org,
        dedupeKey: `analytics.anomaly:${r.eventId}`,
        threshold,
        anomaly: toAnomaly(r),
        baseline: {
          principalId: r.principalId!,
          from: baselineFrom.toISOString(),
          events: r.baselineEvents,
          meanDistance: r.meanDistance,
          stddevDistance: r.stddevDistance,
        },
        nearestNormal,
      });
    }
    return scored.length;
  }
}
