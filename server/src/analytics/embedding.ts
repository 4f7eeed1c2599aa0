/**
 * The event embedding of behaviour analytics (docs/analytics.md): a deterministic, documented
 * feature-hashing vector, no model and no download. Each event becomes a bag of weighted string
 * features (`action=data.read`, `dayPart=night`, `net24=10.1.2` …); each feature is hashed to one
 * of {@link EMBEDDING_DIMENSIONS} coordinates with a hash-derived sign (signed feature hashing,
 * Weinberger et al. 2009, so collisions cancel on average instead of piling up) and its weight is
 * added there; the sum is L2-normalised, so cosine distance and Euclidean distance rank alike.
 *
 * Pure: no I/O. The same row gives the same vector on every machine and in every release that
 * keeps {@link EMBEDDING_VERSION}; changing a feature or weight is a new version.
 */

/** Coordinates per embedding: the size of the `vector(64)` column. */
export const EMBEDDING_DIMENSIONS = 64;
/** Bumped whenever a feature, weight or the hash changes (stored beside each vector). */
export const EMBEDDING_VERSION = 1;

/** The fields of an event the embedding reads (values as stored; null when absent or erased). */
export interface EmbeddingSource {
  /** When it happened (producer's `timestamp`), RFC 3339; null: use `recordedAt`. */
  timestamp: string | null;
  recordedAt: Date;
  action: string | null;
  status: string | null;
  principalType: string | null;
  targetResourceType: string | null;
  /** Whether the event names a patient (never the id itself). */
  hasPatient: boolean;
  dataClassification: string | null;
  ipAddress: string | null;
  userAgent: string | null;
}

/** One feature group: its name, weight and how its tokens are derived. */
export interface FeatureDefinition {
  name: string;
  weight: number;
  /** What the token is (the docs table shows this). */
  description: string;
  tokens: (e: EmbeddingSource, t: TimeParts) => ReadonlyArray<string>;
}

/** Calendar parts of an event's time, in UTC. */
export interface TimeParts {
  /** 0 = Monday … 6 = Sunday. */
  weekday: number;
  hour: number;
}

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;

/** Night 00–06, morning 06–12, afternoon 12–18, evening 18–24 (UTC). */
function dayPart(hour: number): string {
  return hour < 6 ? 'night' : hour < 12 ? 'morning' : hour < 18 ? 'afternoon' : 'evening';
}

const one = (v: string | null, fallback = 'none'): string[] => [v === null || v === '' ? fallback : v.toLowerCase()];

/** The features, in the order of the table in docs/analytics.md (a test keeps them equal). */
export const FEATURES: ReadonlyArray<FeatureDefinition> = [
  { name: 'action', weight: 1.0, description: 'the whole action (`data.read`)', tokens: (e) => one(e.action) },
  { name: 'actionDomain', weight: 0.5, description: 'first segment of the action (`data`, `auth`, `fhir`)', tokens: (e) => one(e.action?.split('.')[0] ?? null) },
  { name: 'actionVerb', weight: 0.5, description: 'last segment of the action (`read`, `export`, `failure`)', tokens: (e) => one(e.action?.split('.').at(-1) ?? null) },
  { name: 'target', weight: 0.8, description: 'target resource type (`Patient`, `Observation`)', tokens: (e) => one(e.targetResourceType) },
  { name: 'status', weight: 0.8, description: 'outcome: `attempt`, `success`, `failure`', tokens: (e) => one(e.status) },
  { name: 'classification', weight: 0.6, description: 'data classification (`PHI` …)', tokens: (e) => one(e.dataClassification) },
  { name: 'principalType', weight: 0.4, description: 'principal role/type as sent (`user`, `service`, `apiKey:auditor`)', tokens: (e) => one(e.principalType) },
  { name: 'patient', weight: 0.3, description: 'whether a patient is named (`yes`/`no`; never the id)', tokens: (e) => [e.hasPatient ? 'yes' : 'no'] },
  { name: 'dayPart', weight: 0.8, description: 'night 00–06, morning, afternoon, evening (UTC)', tokens: (_e, t) => [dayPart(t.hour)] },
  { name: 'weekend', weight: 0.4, description: '`yes` on Saturday and Sunday (UTC)', tokens: (_e, t) => [t.weekday >= 5 ? 'yes' : 'no'] },
  { name: 'hourOfDay', weight: 0.4, description: 'hour 00–23 (UTC)', tokens: (_e, t) => [String(t.hour).padStart(2, '0')] },
  { name: 'hourOfWeek', weight: 0.3, description: 'weekday and hour (`Sun03`, UTC)', tokens: (_e, t) => [`${DAYS[t.weekday]}${String(t.hour).padStart(2, '0')}`] },
  { name: 'network', weight: 0.6, description: 'source network: IPv4 /16, IPv6 /32 (`none` without an address)', tokens: (e) => [networkPrefix(e.ipAddress, 'wide')] },
  { name: 'subnet', weight: 0.6, description: 'source network: IPv4 /24, IPv6 /48', tokens: (e) => [networkPrefix(e.ipAddress, 'narrow')] },
  { name: 'agent', weight: 0.6, description: 'user-agent family (`chrome`, `firefox`, `curl`, `python` …, `other`, `none`)', tokens: (e) => [userAgentFamily(e.userAgent)] },
  { name: 'platform', weight: 0.3, description: 'user-agent platform (`windows`, `mac`, `linux`, `android`, `ios`, `other`, `none`)', tokens: (e) => [userAgentPlatform(e.userAgent)] },
];

/** The calendar parts of an event's time: its `timestamp` when sent, else when it was recorded. */
export function timeParts(e: Pick<EmbeddingSource, 'timestamp' | 'recordedAt'>): TimeParts {
  let ms = e.timestamp === null ? NaN : Date.parse(e.timestamp);
  if (Number.isNaN(ms)) ms = e.recordedAt.getTime();
  const d = new Date(ms);
  return { weekday: (d.getUTCDay() + 6) % 7, hour: d.getUTCHours() };
}

/**
 * The source network of an address: IPv4 /16 (`wide`) or /24 (`narrow`); IPv6 /32 or /48 (the
 * first two or three groups after expanding `::`). `none` without an address.
 */
export function networkPrefix(ip: string | null, width: 'wide' | 'narrow'): string {
  if (!ip) return 'none';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) return ip.split('.').slice(0, width === 'wide' ? 2 : 3).join('.');
  const groups = expandIPv6(ip);
  if (!groups) return 'other';
  return groups.slice(0, width === 'wide' ? 2 : 3).join(':');
}

function expandIPv6(ip: string): string[] | null {
  const lower = ip.toLowerCase().replace(/%.*$/, '');
  const halves = lower.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return null;
  const groups = [...head, ...Array<string>(missing).fill('0'), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  return groups.map((g) => g.replace(/^0+(?=.)/, ''));
}

/** Families, first match wins (Edge and Opera send "Chrome" too, Chrome sends "Safari"). */
const AGENT_FAMILIES: ReadonlyArray<[RegExp, string]> = [
  [/\bEdg(e|A|iOS)?\//, 'edge'],
  [/\bOPR\//, 'opera'],
  [/\bFirefox\//, 'firefox'],
  [/\b(Chrome|CriOS|Chromium)\//, 'chrome'],
  [/\bSafari\//, 'safari'],
  [/^curl\//i, 'curl'],
  [/^Wget\//i, 'wget'],
  [/python|aiohttp/i, 'python'],
  [/^Go-http-client\//, 'go'],
  [/okhttp/i, 'okhttp'],
  [/^Java\/|Apache-HttpClient/i, 'java'],
  [/^node|undici|axios/i, 'node'],
  [/PostmanRuntime/, 'postman'],
];

/** The user-agent family (table above), `other`, or `none`. */
export function userAgentFamily(ua: string | null): string {
  if (!ua) return 'none';
  for (const [re, family] of AGENT_FAMILIES) if (re.test(ua)) return family;
  return 'other';
}

/** The platform a user agent names, `other`, or `none`. */
export function userAgentPlatform(ua: string | null): string {
  if (!ua) return 'none';
  if (/Android/.test(ua)) return 'android';
  if (/iPhone|iPad|iPod/.test(ua)) return 'ios';
  if (/Windows/.test(ua)) return 'windows';
  if (/Mac OS X|Macintosh/.test(ua)) return 'mac';
  if (/Linux|X11/.test(ua)) return 'linux';
  return 'other';
}

/**
 * 32-bit FNV-1a over the UTF-16 code units of `s`, then the MurmurHash3 finaliser (fmix32) so
 * that every output bit depends on every input bit (FNV-1a's low bits alone mix poorly).
 */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The weighted tokens of an event (`group=value`), before hashing: what the vector encodes. */
export function eventFeatures(e: EmbeddingSource): Array<{ token: string; weight: number }> {
  const t = timeParts(e);
  const out: Array<{ token: string; weight: number }> = [];
  for (const f of FEATURES) for (const v of f.tokens(e, t)) out.push({ token: `${f.name}=${v}`, weight: f.weight });
  return out;
}

/**
 * The embedding of one event: each token adds ±weight at coordinate `hash % 64` (sign from the
 * hash's top bit), then the vector is scaled to unit length. Never the zero vector: every event
 * has at least the time features.
 */
export function embedEvent(e: EmbeddingSource): Float64Array {
  const v = new Float64Array(EMBEDDING_DIMENSIONS);
  for (const { token, weight } of eventFeatures(e)) {
    const h = hash32(token);
    const i = h % EMBEDDING_DIMENSIONS;
    v[i] = v[i]! + (h & 0x80000000 ? -weight : weight);
  }
  return normalize(v);
}

/** `v` scaled to unit L2 norm (returned as is when it is zero). */
export function normalize(v: Float64Array): Float64Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  if (sum === 0) return v;
  const inv = 1 / Math.sqrt(sum);
  for (let i = 0; i < v.length; i++) v[i] = v[i]! * inv;
  return v;
}

/** pgvector's text form (`[0.125,-0.5,…]`), with enough digits to round-trip a float4. */
export function toVectorLiteral(v: ArrayLike<number>): string {
  const parts: string[] = [];
  for (let i = 0; i < v.length; i++) parts.push(Number(v[i]!.toPrecision(9)).toString());
  return `[${parts.join(',')}]`;
}

/** Parses pgvector's text form. */
export function parseVectorLiteral(text: string): number[] {
  const body = text.trim().replace(/^\[|\]$/g, '');
  return body === '' ? [] : body.split(',').map(Number);
}

/** Cosine distance of two vectors (1 − cos), as pgvector's `<=>`. */
export function cosineDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? NaN : 1 - dot / Math.sqrt(na * nb);
}
