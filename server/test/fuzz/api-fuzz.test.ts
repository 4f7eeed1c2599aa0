/**
 * Our own fuzz suite: property-based tests (fast-check) over every operation of the operation
 * table, through REST (driven by the OpenAPI document) and tRPC, on the embedded default and on
 * PostgreSQL. Properties:
 *
 * 1. no generated request gets a 5xx, and nothing internal (stack frames, SQL, "call stack")
 *    reaches a response;
 * 2. every 400 names at least one field path;
 * 3. valid events sent concurrently with poisoned ones in one organization are all stored, their
 *    receipts verify offline, and their stored commitments re-verify; each poisoned one gets a
 *    400 naming its field.
 *
 * Bounded for CI (a few dozen runs per property). For a longer run set FUZZ_RUNS (runs per
 * property, e.g. `FUZZ_RUNS=2000`) and optionally FUZZ_SEED to replay; the suite prints how many
 * requests it sent and how many got each status.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { createOperations, type AnyOperation } from '../../src/api/operations';
import { DEFAULT_EVENT_LIMITS } from '../../src/events/limits';
import { leafBytes, leafHash, verifyCommittedField } from '../../src/ledger';
import { createAppRouter } from '../../src/trpc/routers';
import { describeEachBackend } from '../helpers/backends';
import { verifyReceipt } from '../helpers/receipts';
import { startTestServer, type TestServer } from '../helpers/server';
import {
  encodeParam,
  hostileParam,
  hostileString,
  hostileValue,
  poison,
  rawQueryFragment,
  validEvent,
} from './arbitraries';

const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 0);
const runs = (ci: number) => (FUZZ_RUNS > 0 ? FUZZ_RUNS : ci);
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
/** Jest's per-test limit: generous for CI, unbounded in practice for a long FUZZ_RUNS run. */
const TEST_TIMEOUT_MS = FUZZ_RUNS > 0 ? 4 * 3600_000 : 180_000;
const params = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns,
  ...(SEED === undefined ? {} : { seed: SEED }),
  endOnFailure: true,
});

/** Text that must never appear in a response. */
const INTERNAL = /call stack|Failed query|params:|\bat \S+:\d+:\d+|INSERT INTO|SELECT .* FROM/i;

interface Answer {
  status: number;
  text: string;
  json: any;
}

/** A failed property check, with what was sent. */
function fail(what: string, sent: string, res: Answer): never {
  throw new Error(`${what}\n  sent: ${sent.slice(0, 600)}\n  got ${res.status}: ${res.text.slice(0, 600)}`);
}

/** A 501 NOT_IMPLEMENTED: behaviour analytics on a database without pgvector (the shared PostgreSQL). */
const notImplemented = (status: number, code: unknown) => status === 501 && code === 'NOT_IMPLEMENTED';

/** The REST invariants of one answer. */
function checkRest(sent: string, res: Answer): void {
  if (res.status >= 500 && !notImplemented(res.status, res.json?.error?.code)) fail('a 5xx', sent, res);
  if (INTERNAL.test(res.text)) fail('internal details in the response', sent, res);
  if (res.status === 400) {
    const issues = res.json?.error?.issues;
    if (!Array.isArray(issues) || issues.length === 0) fail('a 400 without field issues', sent, res);
    if (!issues.every((i: { path?: unknown }) => typeof i.path === 'string' && i.path.length > 0))
      fail('an issue without a path', sent, res);
    if (issues.length > 20) fail('more than 20 issues', sent, res);
  }
}

/** The tRPC invariants of one answer (a single call or a batch). */
function checkTrpc(sent: string, res: Answer): void {
  const results: any[] = Array.isArray(res.json) ? res.json : [res.json];
  // A batch answers with the status its calls share (tRPC's batch status rule), so a batch whose
  // calls all answered 501 NOT_IMPLEMENTED is itself a 501: accept it only if every call is one.
  const allNotImplemented = results.every((r) => notImplemented(res.status, r?.error?.data?.code));
  if (res.status >= 500 && !allNotImplemented) fail('a 5xx', sent, res);
  if (INTERNAL.test(res.text)) fail('internal details in the response', sent, res);
  for (const r of results) {
    const data = r?.error?.data;
    if (!data) continue;
    if (data.httpStatus >= 500 && !notImplemented(data.httpStatus, data.code)) fail('a 5xx call in a batch', sent, res);
    if (data.httpStatus === 400) {
      if (!Array.isArray(data.issues) || data.issues.length === 0)
        fail('a 400 without field issues', sent, res);
      if (!data.issues.every((i: { path?: unknown }) => typeof i.path === 'string' && i.path.length > 0))
        fail('an issue without a path', sent, res);
    }
  }
}

/** A mutation of an example object: set a (possibly new) key to a hostile value, or drop one. */
function mutated(example: Record<string, unknown>, value: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(example);
  const key =
    keys.length > 0
      ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: hostileString })
      : hostileString;
  const change = fc.record({ key, value: fc.option(value, { freq: 6, nil: undefined }) });
  return fc.oneof(
    {
      weight: 5,
      arbitrary: fc.array(change, { maxLength: 3 }).map((cs) =>
        cs.reduce<Record<string, unknown>>(
          (o, c) => {
            const next = { ...o };
            if (c.value === undefined) delete next[c.key];
            else next[c.key] = c.value;
            return next;
          },
          { ...example },
        ),
      ),
    },
    { weight: 1, arbitrary: value },
  );
}

describeEachBackend('fuzzing the API on %s', (backend) => {
  let srv: TestServer;
  let doc: {
    paths: Record<
      string,
      Record<
        string,
        {
          operationId: string;
          parameters: Array<{ name: string; in: string; example?: string }>;
          requestBody?: { content: { 'application/json': { example: unknown } } };
        }
      >
    >;
  };
  const tally = new Map<number, number>();
  let sent = 0;

  async function send(
    method: string,
    path: string,
    init: { body?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    sent += 1;
    const res = await fetch(srv.url + path, {
      method,
      headers: {
        authorization: `Bearer ${srv.adminKey}`,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      body: init.body,
    });
    const text = await res.text();
    tally.set(res.status, (tally.get(res.status) ?? 0) + 1);
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON (a 431 from Node, a stream) */
    }
    return { status: res.status, text, json };
  }

  beforeAll(async () => {
    srv = await startTestServer(backend, { INGEST_MAX_WAIT_MS: '5' });
    for (let i = 0; i < 3; i++)
      await srv.request('POST', '/api/v1/events', { action: 'seed.event', status: 'success' });
    doc = (await srv.request('GET', '/api/v1/openapi.json', undefined, null)).body;
  }, 180_000);
  afterAll(async () => {
    const statuses = [...tally.entries()]
      .sort(([a], [b]) => a - b)
      .map(([s, n]) => `${s}×${n}`)
      .join(' ');
    process.stdout.write(
      `fuzz on ${backend}: ${sent} generated requests (FUZZ_RUNS=${FUZZ_RUNS || 'CI default'}); statuses ${statuses}\n`,
    );
    await srv?.close();
  });

  it(
    'REST: no request to any operation of the document gets a 5xx, and every 400 names a field',
    async () => {
      const ops = Object.entries(doc.paths).flatMap(([template, methods]) =>
        Object.entries(methods).map(([method, op]) => ({ template, method, op })),
      );
      expect(ops.length).toBeGreaterThanOrEqual(16);
      const request = fc.constantFrom(...ops).chain(({ template, method, op }) => {
        const examples = Object.fromEntries(
          op.parameters.filter((p) => p.example !== undefined).map((p) => [p.name, p.example!]),
        );
        const query = mutated(
          examples,
          fc.oneof(
            hostileParam,
            hostileParam.map((v) => ({ raw: v })),
            rawQueryFragment.map((raw) => ({ raw })),
          ),
        );
        const body = op.requestBody
          ? mutated(
              (op.requestBody.content['application/json'].example ?? {}) as Record<string, unknown>,
              hostileValue,
            )
          : fc.constant(undefined);
        return fc.record({
          template: fc.constant(template),
          method: fc.constant(method),
          pathParams: fc.constant(op.parameters.filter((p) => p.in === 'path').map((p) => p.name)),
          query,
          body,
        });
      });
      await fc.assert(
        fc.asyncProperty(request, async ({ template, method, pathParams, query, body }) => {
          let path = template;
          const parts: string[] = [];
          const q = (
            query !== null && typeof query === 'object' && !Array.isArray(query) ? query : { q: query }
          ) as Record<string, unknown>;
          for (const [name, v] of Object.entries(q)) {
            const value =
              v !== null && typeof v === 'object' && 'raw' in v
                ? String(v.raw)
                : encodeParam(typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
            if (pathParams.includes(name)) path = path.replace(`{${name}}`, value === '' ? '%20' : value);
            else parts.push(`${encodeParam(name)}=${value}`);
          }
          path = path.replace(/\{[A-Za-z]+\}/g, 'x');
          const url = `/api/v1${path}${parts.length ? `?${parts.join('&')}` : ''}`;
          const payload = body === undefined ? undefined : (JSON.stringify(body) ?? 'null');
          checkRest(
            `${method.toUpperCase()} ${url} ${payload ?? ''}`,
            await send(method.toUpperCase(), url, { body: payload }),
          );
        }),
        params(runs(300)),
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'tRPC: no call to any procedure gets a 5xx, and every 400 names a field, single or batched',
    async () => {
      const operations = createOperations({ event: DEFAULT_EVENT_LIMITS });
      const router = createAppRouter(operations);
      const procedures = Object.entries(
        router._def.procedures as unknown as Record<string, { _def: { type: string; inputs: unknown[] } }>,
      ).map(([path, p]) => {
        const op = (Object.values(operations) as AnyOperation[]).find((o) => p._def.inputs.includes(o.input));
        return { path, type: p._def.type, example: op?.example ?? { start: 0, end: 1 } };
      });
      expect(procedures.length).toBeGreaterThanOrEqual(17);
      const call = fc
        .constantFrom(...procedures)
        .chain((p) =>
          fc.record({
            path: fc.constant(p.path),
            type: fc.constant(p.type),
            input: mutated(p.example, hostileValue),
          }),
        );
      await fc.assert(
        fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 3 }), async (calls) => {
          const batch = calls.length > 1 && calls.every((c) => c.type === calls[0]!.type);
          const list = batch ? calls : calls.slice(0, 1);
          const path = `/trpc/${list.map((c) => c.path).join(',')}`;
          const inputs = batch
            ? JSON.stringify(Object.fromEntries(list.map((c, i) => [i, c.input])))
            : (JSON.stringify(list[0]!.input) ?? 'null');
          const stream = list.some((c) => c.path === 'ledger.exportBundle');
          const headers: Record<string, string> = stream ? { 'trpc-accept': 'application/jsonl' } : {};
          const search = `${batch || stream ? 'batch=1&' : ''}`;
          const streamInputs = stream && !batch ? JSON.stringify({ 0: list[0]!.input }) : inputs;
          const res =
            list[0]!.type === 'query'
              ? await send('GET', `${path}?${search}input=${encodeParam(streamInputs)}`, { headers })
              : await send('POST', `${path}${search ? `?${search.slice(0, -1)}` : ''}`, {
                  body: streamInputs,
                  headers,
                });
          checkTrpc(`${path} ${streamInputs}`, res);
        }),
        params(runs(300)),
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'stores and verifies every valid event sent concurrently with poisoned ones in one organization',
    async () => {
      const item = fc.record({
        event: validEvent,
        poison: fc.option(poison, { freq: 3, nil: undefined }),
        via: fc.constantFrom('rest', 'trpc', 'bulk'),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(item, { minLength: 5, maxLength: 30 }), async (items) => {
          const run = randomBytes(6).toString('hex');
          const sends = items.map((it, n) => {
            const base = it.event.idempotencyKey
              ? { ...it.event, idempotencyKey: `${run}-${n}-${it.event.idempotencyKey as string}` }
              : it.event;
            return { ...it, body: it.poison ? it.poison.apply(base) : base };
          });
          const bulk = sends.filter((s) => s.via === 'bulk');
          const singles = sends.filter((s) => s.via !== 'bulk');
          const [bulkAnswer, ...answers] = await Promise.all([
            bulk.length > 0
              ? send('POST', '/api/v1/events/bulk', {
                  body: JSON.stringify({ events: bulk.map((s) => s.body) }),
                })
              : Promise.resolve(null),
            ...singles.map((s) =>
              s.via === 'rest'
                ? send('POST', '/api/v1/events', { body: JSON.stringify(s.body) })
                : send('POST', '/trpc/events.create', { body: JSON.stringify(s.body) }),
            ),
          ]);
          const receipts: Array<{
            id: string;
            leafIndex: number;
            leafHash: string;
            sent: Record<string, unknown>;
          }> = [];
          const expectOutcome = (
            s: (typeof sends)[number],
            ok: boolean,
            receipt: any,
            issues: Array<{ path: string }> | undefined,
            what: string,
          ) => {
            if (!s.poison) {
              if (!ok)
                throw new Error(
                  `a valid event was refused (${what}): ${JSON.stringify(s.body).slice(0, 400)} → ${JSON.stringify(issues)}`,
                );
              verifyReceipt(receipt, srv.verifierKey, `test.audit/${srv.organizationId}`);
              receipts.push({
                id: receipt.id,
                leafIndex: receipt.leafIndex,
                leafHash: receipt.leafHash,
                sent: s.body,
              });
            } else {
              if (ok)
                throw new Error(
                  `a poisoned event was accepted (${what}): ${JSON.stringify(s.body).slice(0, 400)}`,
                );
              if (!issues?.some((i) => i.path.startsWith(s.poison!.path)))
                throw new Error(`the 400 does not name ${s.poison.path}: ${JSON.stringify(issues)}`);
            }
          };
          singles.forEach((s, i) => {
            const res = answers[i]!;
            if (s.via === 'rest') {
              checkRest('POST /api/v1/events', res);
              expectOutcome(s, res.status === 201, res.json, res.json?.error?.issues, 'REST');
            } else {
              checkTrpc('POST /trpc/events.create', res);
              expectOutcome(
                s,
                res.status === 200,
                res.json?.result?.data,
                res.json?.error?.data?.issues,
                'tRPC',
              );
            }
          });
          if (bulkAnswer) {
            checkRest('POST /api/v1/events/bulk', bulkAnswer);
            if (bulkAnswer.status === 200) {
              for (const r of bulkAnswer.json.results)
                expectOutcome(bulk[r.index]!, r.ok, r.receipt, r.error?.issues, 'bulk');
            } else if (bulk.some((s) => !s.poison)) {
              // Only structurally absurd nesting (past the raw depth check) refuses a whole bulk request.
              if (bulkAnswer.status !== 400 || !/nesting deeper/.test(bulkAnswer.text))
                fail('a bulk request refused as a whole', 'bulk', bulkAnswer);
            }
          }
          // Every acknowledged event is stored, and its stored fields re-verify against the leaf.
          if (receipts.length === 0) return;
          const start = Math.min(...receipts.map((r) => r.leafIndex));
          const end = Math.max(...receipts.map((r) => r.leafIndex)) + 1;
          const leaves = await send('GET', `/api/v1/ledger/leaves?start=${start}&end=${end}`);
          expect(leaves.status).toBe(200);
          const byId = new Map<string, any>(leaves.json.leaves.map((l: { id: string }) => [l.id, l]));
          for (const r of receipts) {
            const leaf = byId.get(r.id);
            if (!leaf) throw new Error(`acknowledged event ${r.id} is not stored`);
            const commitments: Record<string, string> = {};
            for (const [name, f] of Object.entries(
              leaf.fields as Record<string, { commitment: string; salt: string | null; value?: unknown }>,
            )) {
              if (verifyCommittedField(f) !== 'ok')
                throw new Error(
                  `stored field ${name} of ${r.id} does not re-verify: ${JSON.stringify(f).slice(0, 300)}`,
                );
              commitments[name] = f.commitment;
            }
            const rebuilt = leafHash(
              leafBytes({
                org: srv.organizationId,
                id: leaf.id,
                recordedAt: leaf.recordedAt,
                fields: commitments,
              }),
            ).toString('base64');
            if (rebuilt !== r.leafHash)
              throw new Error(`leaf ${r.leafIndex} does not rebuild from its stored fields`);
          }
        }),
        params(runs(20)),
      );
    },
    TEST_TIMEOUT_MS,
  );
});
