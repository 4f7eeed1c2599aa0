/**
 * Bounded waits: whether a promise settles within a time limit, for callers (shutdown steps,
 * closes of clients whose library waits without a bound) that go on either way.
 */

/** Resolves true when `p` settles within `ms` (a rejection counts as settled), false otherwise. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = p.then(
    () => true,
    () => true,
  );
  const result = await Promise.race([settled, new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  clearTimeout(timer);
  return result;
}
