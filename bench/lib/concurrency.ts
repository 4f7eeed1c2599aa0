/**
 * Bounded concurrent loops: `workers` async workers pull item numbers 0 … total-1 from one shared
 * counter until it is exhausted. Every loop in the benchmark ends after a fixed number of items;
 * nothing runs "for N seconds", so a slow machine makes a run longer but never changes what it does.
 */

/**
 * Runs `task(item, worker)` for every item in [0, total) on `workers` concurrent workers and
 * resolves when all have finished. The first failure stops the hand-out of further items and
 * rejects after the in-flight tasks settle.
 */
export async function runBounded(
  total: number,
  workers: number,
  task: (item: number, worker: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (w: number): Promise<void> => {
    while (failure === null) {
      const item = next++;
      if (item >= total) return;
      try {
        await task(item, w);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(workers, total)) }, (_, w) => worker(w)));
  if (failure !== null) throw (failure as { error: unknown }).error;
}
