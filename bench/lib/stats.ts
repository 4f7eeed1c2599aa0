/**
 * Latency and throughput arithmetic. Percentiles use the nearest-rank method (the smallest
 * sample such that at least p% of samples are ≤ it), so a p99 is always a latency that was
 * actually observed and never an interpolation between two requests.
 */

/** Percentiles and moments of a set of latency samples, in milliseconds. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of an ascending array (`p` in (0, 100]); NaN when empty. */
export function percentile(sortedAsc: ArrayLike<number>, p: number): number {
  if (sortedAsc.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sortedAsc.length); // 1-based nearest rank
  return sortedAsc[Math.min(sortedAsc.length, Math.max(1, rank)) - 1]!;
}

/** Summarizes latency samples (ms). The input array is not modified. */
export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const s of sorted) sum += s;
  return {
    count: sorted.length,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
  };
}

/** Items per second. */
export function rate(items: number, elapsedMs: number): number {
  return elapsedMs <= 0 ? Number.NaN : (items * 1000) / elapsedMs;
}

/** Monotonic milliseconds (high resolution), for measuring durations only. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
