/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and says where a phase's time went: samples whose
 * timestamps fall in the phase's window (CLOCK_MONOTONIC µs, the clock V8 stamps samples with),
 * attributed to the sampled frame (self time) and summed by package or file and by function.
 * Sample times are wall-clock slices of the sampled thread: on a loaded machine a frame that was
 * waiting for a core is charged too, so read them beside the CPU time from /proc.
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where the time of one phase went, per request. */
export interface PhaseProfile {
  /** µs per request in sampled frames other than `(idle)`. */
  busyMicros: number;
  /** µs per request by package (node_modules name), Node built-in module, or server file. */
  byPackage: Array<[string, number]>;
  /** µs per request by function (`name file:line`). */
  byFunction: Array<[string, number]>;
}

const shortUrl = (url: string) =>
  url
    .replace(/^file:\/\//, '')
    .replace(/.*node_modules\//, '')
    .replace(/.*\/server\/(src|dist)\//, 'server/');

function packageOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const m = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url);
  return m ? m[1]! : shortUrl(url);
}

const functionOf = (node: ProfileNode) => `${node.callFrame.functionName || '(anonymous)'} ${shortUrl(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;

/**
 * The main thread's profile of process `pid` in `dir` (under tsx the loader thread writes a
 * second, smaller one), or null when there is none.
 */
export function readMainProfile(dir: string, pid: number): CpuProfile | null {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile') && f.includes(`.${pid}.`))
    .map((f) => ({ f, size: fs.statSync(path.join(dir, f)).size }))
    .sort((a, b) => b.size - a.size);
  return files[0] ? (JSON.parse(fs.readFileSync(path.join(dir, files[0].f), 'utf8')) as CpuProfile) : null;
}

/** Self time of the samples in `[from, to]` (µs), per request, top `top` of each grouping. */
export function phaseProfile(profile: CpuProfile, window: [number, number], requests: number, top = 12): PhaseProfile {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    if (t < window[0] || t > window[1]) continue;
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  const group = (key: (n: ProfileNode) => string) => {
    const sums = new Map<string, number>();
    for (const [id, us] of self) {
      const k = key(nodes.get(id)!);
      if (k !== '(idle)' && !k.startsWith('(idle) ')) sums.set(k, (sums.get(k) ?? 0) + us / requests);
    }
    return [...sums].sort((a, b) => b[1] - a[1]);
  };
  const byPackage = group(packageOf);
  return { busyMicros: byPackage.reduce((s, [, us]) => s + us, 0), byPackage: byPackage.slice(0, top), byFunction: group(functionOf).slice(0, top) };
}
