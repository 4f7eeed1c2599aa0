/**
 * `node --import tsx bench/profile-summary.ts PROFILE.cpuprofile [PHASES.json]`: where the server's
 * CPU went, from a V8 CPU profile written by `bench:ingest --server-cpu-prof DIR`, cut into the
 * benchmark's phases with the phase boundaries the benchmark wrote beside it (both are on the
 * monotonic clock). For every phase it prints the sampled CPU time per category twice:
 *
 *  - component: the categories below grouped, with Node's internals (socket writes, streams,
 *    buffers) charged to the library or app code that called them (pg, the HTTP response …);
 *  - nearest: each sample goes to the category of the innermost frame that has one (so a
 *    `JSON.parse` called by body-parser is body parsing, a hash called by the commitments is
 *    commitments);
 *  - inclusive: the share of samples with the category anywhere on the stack (a sample counts once
 *    per category, so the column does not add up to 100 %).
 *
 * and the functions with the most self time. Figures are sampled time (1 kHz by default), so they
 * are CPU time of the main thread only: GC helper threads, libuv's thread pool and the kernel's
 * work for the process are not in them.
 */
import fs from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Category of one frame, or null when the frame says nothing by itself (anonymous, builtins). */
export function categoryOf(f: CallFrame): string | null {
  const u = f.url;
  const fn = f.functionName;
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'V8/native (program)';
  if (fn === '(root)') return null;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1];
  if (nm) {
    if (nm === 'zod') return 'validation (zod)';
    if (nm === 'body-parser' || nm === 'raw-body' || nm === 'iconv-lite' || nm === 'content-type' || nm === 'type-is') return 'body parsing';
    if (nm.startsWith('drizzle-orm')) return 'SQL building (drizzle)';
    if (nm === 'pg' || nm === 'pg-protocol' || nm === 'pg-pool' || nm === 'pg-types' || nm === 'postgres-array' || nm === 'postgres-date' || nm === 'pg-connection-string') return 'pg protocol';
    if (nm === 'pino' || nm === 'pino-http' || nm === 'sonic-boom' || nm === 'thread-stream' || nm === 'fast-redact' || nm === 'pino-std-serializers') return 'logging';
    if (nm === 'prom-client') return 'metrics';
    if (nm.startsWith('@opentelemetry')) return 'tracing';
    if (nm === 'express' || nm === 'router' || nm === 'finalhandler' || nm === 'on-finished' || nm === 'send' || nm === 'path-to-regexp' || nm === 'qs' || nm === 'parseurl' || nm === 'cookie' || nm === 'helmet' || nm === 'cors' || nm === 'vary' || nm === 'depd' || nm === 'debug' || nm === 'ms' || nm === 'accepts' || nm === 'negotiator' || nm === 'mime-types' || nm === 'fresh' || nm === 'etag' || nm === 'proxy-addr' || nm === 'forwarded' || nm === 'ipaddr.js' || nm === 'statuses' || nm === 'http-errors' || nm === 'encodeurl' || nm === 'escape-html' || nm === 'utils-merge' || nm === 'merge-descriptors' || nm === 'methods' || nm === 'setprototypeof' || nm === 'safe-buffer' || nm === 'content-disposition' || nm === 'range-parser' || nm === 'serve-static' || nm === 'array-flatten' || nm === 'side-channel' || nm === 'object-inspect' || nm === 'call-bound' || nm === 'get-intrinsic' || nm === 'math-intrinsics' || nm === 'es-errors' || nm === 'function-bind' || nm === 'hasown' || nm === 'dunder-proto' || nm === 'es-object-atoms' || nm === 'gopd' || nm === 'has-symbols' || nm === 'get-proto' || nm === 'call-bind-apply-helpers' || nm === 'es-define-property' || nm === 'side-channel-list' || nm === 'side-channel-map' || nm === 'side-channel-weakmap' || nm === 'cookie-signature' || nm === 'mime' || nm === 'media-typer' || nm === 'destroy' || nm === 'ee-first' || nm === 'unpipe' || nm === 'toidentifier' || nm === 'inherits' || nm === 'bytes' || nm === 'on-headers')
      return 'Express + middleware libs';
    if (nm === 'ioredis' || nm === 'redis-parser' || nm === 'cluster-key-slot' || nm === 'denque' || nm === 'standard-as-callback') return 'Redis client';
    if (nm === '@trpc/server') return 'tRPC';
    if (nm === 'uuid' || nm === 'uuidv7') return 'ids (uuid)';
    return `lib ${nm}`;
  }
  const app = /(?:server\/(?:dist|src))\/([^?]+?)\.(?:js|ts)/.exec(u)?.[1];
  if (app) {
    if (/^ledger\/(fast-commitment|commitment|jcs|hash|encoding)$/.test(app)) return 'commitments (app)';
    if (/^ledger\/(tree|compact-range)$/.test(app)) return 'tree (app)';
    if (/^ledger\/note$/.test(app)) return 'checkpoint note (app)';
    if (app === 'events/ingest') return 'group commit / ingest (app)';
    if (app === 'events/commit-form') return 'commit form (app)';
    if (app === 'events/repository') return 'events repository (app)';
    if (app.startsWith('events/')) return `events (app) ${app}`;
    if (app.startsWith('alerts/')) return 'detectors / alerts (app)';
    if (app.startsWith('observability/')) return 'observability (app)';
    if (app.startsWith('http/')) return `http layer (app) ${app}`;
    if (app.startsWith('cache/')) return 'cache (app)';
    if (app.startsWith('auth/')) return 'auth (app)';
    if (app.startsWith('api/') || app.startsWith('trpc/')) return `api layer (app) ${app}`;
    if (app.startsWith('db/')) return 'db layer (app)';
    return `app ${app}`;
  }
  if (u.startsWith('node:')) {
    if (/^node:(internal\/)?crypto/.test(u)) return 'node crypto';
    if (/^node:(_http|internal\/http|http)/.test(u)) return 'node http';
    if (/^node:(net|internal\/net|internal\/stream_base|internal\/streams|stream|internal\/webstreams)/.test(u)) return 'node net/streams';
    if (/^node:(internal\/)?buffer|^node:internal\/util/.test(u)) return 'node buffer/util';
    if (/^node:internal\/(process\/task_queues|timers|async_hooks)|^node:(timers|events|async_hooks|internal\/event_target)/.test(u)) return 'node event loop/timers/promises';
    return `node ${u.slice(5)}`;
  }
  if (u === '') {
    // Builtins and natives have no URL: leave them to the frame that called them, except the few
    // whose cost is a category in itself.
    if (fn === 'parse' || fn === 'stringify') return null;
    return null;
  }
  return `other ${u}`;
}

/** The component a category belongs to (the coarse breakdown printed first). */
export function componentOf(category: string): string {
  if (/^(node http|node net\/streams|Express|body parsing|http layer|node string_decoder|node internal\/(linkedlist|fixed_queue|errors|validators))/.test(category)) return 'HTTP, body parsing, Express and our middleware';
  if (/^(auth|cache|api layer|tRPC)/.test(category)) return 'credentials, access, read cache, operation table';
  if (/^(validation|events \(app\) events\/(schema|limits)|app util\/safe-input)/.test(category)) return 'input validation (zod, limits, JSON shape)';
  if (/^(commitments|commit form|node crypto)/.test(category)) return 'commitments (canonical JSON, salts, SHA-256) and signing';
  if (/^tree|^checkpoint note/.test(category)) return 'Merkle tree and checkpoint note';
  if (/^(SQL building|events repository|db layer|app tlog)/.test(category)) return 'SQL building (rows as JSON, CTE)';
  if (/^pg protocol|^lib postgres/.test(category)) return 'pg protocol';
  if (/^(group commit|events \(app\))/.test(category)) return 'group commit, receipts';
  if (/^detectors/.test(category)) return 'detectors';
  if (/^(logging|metrics|tracing|observability)/.test(category)) return 'logging, metrics, tracing';
  if (category === 'GC') return 'GC (main thread)';
  if (/^node (buffer|event loop)|^V8|^unattributed|^ids/.test(category)) return 'buffers, promises/event loop, V8 natives';
  return 'other';
}

/** Natives and builtins named in the output when they are the leaf (JSON, Buffer, hashing). */
function leafName(f: CallFrame): string {
  return `${f.functionName || '(anonymous)'} ${f.url ? f.url.replace(/^.*\/(node_modules|server)\//, '$1/') + ':' + (f.lineNumber + 1) : '(native)'}`;
}

function main(): void {
  const [profilePath, phasesPath] = process.argv.slice(2);
  if (!profilePath) {
    console.error('usage: profile-summary.ts PROFILE.cpuprofile [PHASES.json]');
    process.exit(2);
  }
  const p = JSON.parse(fs.readFileSync(profilePath, 'utf8')) as Profile;
  const phases = phasesPath ? (JSON.parse(fs.readFileSync(phasesPath, 'utf8')) as Array<{ phase: string; us: number }>) : [];
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Per node: nearest category, the nearest category that is not Node's own (`node …`: a socket
  // write belongs to whoever writes, pg or the HTTP response), and the set of categories on its
  // stack (memoized).
  const nearest = new Map<number, string>();
  const owner = new Map<number, string | null>();
  const inclusive = new Map<number, Set<string>>();
  const resolve = (id: number): void => {
    if (nearest.has(id)) return;
    const n = byId.get(id)!;
    const own = categoryOf(n.callFrame);
    const up = parent.get(id);
    if (up !== undefined) resolve(up);
    const set = new Set(up !== undefined ? inclusive.get(up) : []);
    if (own) set.add(own);
    inclusive.set(id, set);
    // The innermost categorized frame: own if any, else the caller's nearest.
    nearest.set(id, own ?? (up !== undefined ? nearest.get(up)! : 'unattributed'));
    const strong = own !== null && !own.startsWith('node ') ? own : null;
    owner.set(id, strong ?? (up !== undefined ? owner.get(up)! : null));
  };
  for (const n of p.nodes) resolve(n.id);

  type Acc = { total: number; nearest: Map<string, number>; owner: Map<string, number>; inclusive: Map<string, number>; self: Map<string, number> };
  const accs = new Map<string, Acc>();
  const accOf = (name: string): Acc => {
    let a = accs.get(name);
    if (!a) accs.set(name, (a = { total: 0, nearest: new Map(), owner: new Map(), inclusive: new Map(), self: new Map() }));
    return a;
  };
  let t = p.startTime;
  let k = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    const dt = p.timeDeltas[i + 1] ?? 0;
    while (k < phases.length && phases[k]!.us <= t) k++;
    const phase = k === 0 ? 'before the first mark' : phases[k - 1]!.phase;
    const id = p.samples[i]!;
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)') continue;
    const a = accOf(phase);
    a.total += dt;
    const c = nearest.get(id)!;
    a.nearest.set(c, (a.nearest.get(c) ?? 0) + dt);
    // GC and V8's own frames stay theirs; Node internals go to the nearest library or app caller.
    const o = c.startsWith('node ') ? (owner.get(id) ?? c) : c;
    a.owner.set(o, (a.owner.get(o) ?? 0) + dt);
    for (const x of inclusive.get(id)!) a.inclusive.set(x, (a.inclusive.get(x) ?? 0) + dt);
    const ln = leafName(n.callFrame);
    a.self.set(ln, (a.self.get(ln) ?? 0) + dt);
  }
  const top = (m: Map<string, number>, n: number) => [...m.entries()].sort((x, y) => y[1] - x[1]).slice(0, n);
  for (const [phase, a] of accs) {
    console.log(`\n== ${phase}: ${(a.total / 1e6).toFixed(2)} s of sampled CPU (main thread, idle excluded)`);
    const components = new Map<string, number>();
    for (const [c, v] of a.owner) components.set(componentOf(c), (components.get(componentOf(c)) ?? 0) + v);
    console.log('component (Node internals charged to their caller)      share');
    for (const [c, v] of [...components].sort((x, y) => y[1] - x[1])) console.log(`${c.padEnd(56)} ${((100 * v) / a.total).toFixed(1).padStart(5)} %`);
    console.log('category                                          nearest         inclusive');
    const cats = new Set([...a.nearest.keys(), ...a.inclusive.keys()]);
    const rows = [...cats].map((c) => [c, a.nearest.get(c) ?? 0, a.inclusive.get(c) ?? 0] as const).sort((x, y) => y[1] - x[1]);
    for (const [c, ne, inc] of rows) {
      if (ne < a.total * 0.002 && inc < a.total * 0.01) continue;
      console.log(`${c.padEnd(48)} ${(ne / 1e3).toFixed(0).padStart(6)} ms ${((100 * ne) / a.total).toFixed(1).padStart(5)} %  ${((100 * inc) / a.total).toFixed(1).padStart(5)} %`);
    }
    console.log('top self time:');
    for (const [name, v] of top(a.self, 25)) console.log(`  ${(v / 1e3).toFixed(0).padStart(6)} ms ${((100 * v) / a.total).toFixed(1).padStart(5)} %  ${name}`);
  }
}

main();
