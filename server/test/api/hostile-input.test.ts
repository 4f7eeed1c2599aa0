/**
 * Hostile input: one bad event never fails its neighbours, and no input reaches a 500. Every case
 * here was a 500 (and, for the poisoned batch, lost writes of other requests) before its fix.
 */
import { TRPCClientError } from '@trpc/client';
import { describeEachBackend } from '../helpers/backends';
import { verifyReceipt } from '../helpers/receipts';
import { startTestServer, type TestServer } from '../helpers/server';

/** `{ a: { a: … 1 } }`, `levels` objects deep. */
function deep(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = { a: 1 };
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

const valid = (n: number) => ({
  action: 'data.read',
  status: 'success',
  principalId: `dr-${n}`,
  patientId: `patient-${n}`,
  dataClassification: 'PHI',
  details: { n },
});

/** The reproductions of the poisoned batch, each with the field path its 400 must name. */
const POISONED: Array<{ name: string; body: Record<string, unknown>; path: string | RegExp }> = [
  { name: 'year 0000', body: { ...valid(-1), timestamp: '0000-01-01T00:00:00Z' }, path: 'timestamp' },
  {
    name: 'year 0000 after offset normalization',
    body: { ...valid(-2), timestamp: '0001-01-01T00:00:00+23:59' },
    path: 'timestamp',
  },
  {
    name: 'year 10000 after offset normalization',
    body: { ...valid(-3), timestamp: '9999-12-31T23:59:59-23:59' },
    path: 'timestamp',
  },
  { name: 'a lone surrogate in patientId', body: { ...valid(-4), patientId: '\ud800' }, path: 'patientId' },
  {
    name: 'a lone surrogate in a details value',
    body: { ...valid(-5), details: { note: 'x\udc00y' } },
    path: 'details.note',
  },
  {
    name: 'a lone surrogate in a details key',
    body: { ...valid(-6), details: { ok: 1, 'k\ud83d': 2 } },
    path: 'details.(key 1)',
  },
  {
    name: 'a lone surrogate in sessionContext',
    body: { ...valid(-7), sessionContext: { userAgent: '\ud83d' } },
    path: 'sessionContext.userAgent',
  },
  { name: 'a NUL in a field', body: { ...valid(-8), principalId: 'a\u0000b' }, path: 'principalId' },
  {
    name: 'a NUL in a details key',
    body: { ...valid(-9), details: { 'a\u0000': 1 } },
    path: 'details.(key 0)',
  },
  { name: 'details 3,000 levels deep', body: { ...valid(-10), details: deep(3000) }, path: /^details\.a\.a/ },
  {
    name: 'a __proto__ key in details',
    body: JSON.parse('{"action":"data.read","status":"success","details":{"__proto__":{"x":1}}}'),
    path: 'details.__proto__',
  },
];

function expectPath(issues: Array<{ path: string }>, path: string | RegExp) {
  const paths = issues.map((i) => i.path);
  if (typeof path === 'string') expect(paths).toContain(path);
  else expect(paths.some((p) => path.test(p))).toBe(true);
}

describeEachBackend('hostile input on %s', (backend) => {
  let srv: TestServer;
  beforeAll(async () => {
    // A wait long enough that concurrent requests share one group-commit batch.
    srv = await startTestServer(backend, { INGEST_MAX_WAIT_MS: '25' });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });
  const origin = () => `test.audit/${srv.organizationId}`;

  it('commits 30 concurrent valid REST appends sent together with every poisoned one, and refuses only those', async () => {
    const sends = [
      ...Array.from({ length: 30 }, (_, i) => ({
        kind: 'valid' as const,
        body: valid(i),
        path: '',
        name: `valid ${i}`,
      })),
      ...POISONED.map((p) => ({ kind: 'poisoned' as const, ...p })),
    ];
    // Interleave so poisoned requests sit in the middle of batches.
    sends.sort((a, b) => (a.name < b.name ? -1 : 1));
    const answers = await Promise.all(sends.map((s) => srv.request('POST', '/api/v1/events', s.body)));
    answers.forEach((res, i) => {
      const s = sends[i]!;
      if (s.kind === 'valid') {
        expect({ name: s.name, status: res.status }).toEqual({ name: s.name, status: 201 });
        verifyReceipt(res.body, srv.verifierKey, origin());
      } else {
        expect({ name: s.name, status: res.status }).toEqual({ name: s.name, status: 400 });
        expect(res.body.error.code).toBe('BAD_REQUEST');
        expectPath(res.body.error.issues, s.path);
      }
    });
    // Every valid event is stored and readable; leaf indexes are contiguous.
    const stored = answers.filter((_, i) => sends[i]!.kind === 'valid');
    for (const res of stored) {
      const got = await srv.request('GET', `/api/v1/events/${res.body.id}`);
      expect(got.status).toBe(200);
      expect(got.body.event.leafIndex).toBe(res.body.leafIndex);
    }
    const indexes = stored.map((r) => r.body.leafIndex as number).sort((a, b) => a - b);
    expect(indexes.at(-1)! - indexes[0]! + 1).toBe(30);
  });

  it('does the same over tRPC', async () => {
    const client = srv.client(undefined, { batch: false });
    const results = await Promise.allSettled([
      ...Array.from({ length: 30 }, (_, i) => client.events.create.mutate(valid(100 + i) as never)),
      ...POISONED.map((p) => client.events.create.mutate(p.body as never)),
    ]);
    results.slice(0, 30).forEach((r) => {
      expect(r.status).toBe('fulfilled');
      verifyReceipt((r as PromiseFulfilledResult<any>).value, srv.verifierKey, origin());
    });
    results.slice(30).forEach((r, i) => {
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason as TRPCClientError<any>;
      expect(err).toBeInstanceOf(TRPCClientError);
      expect({ name: POISONED[i]!.name, status: err.data.httpStatus }).toEqual({
        name: POISONED[i]!.name,
        status: 400,
      });
      expectPath(err.data.issues, POISONED[i]!.path);
      expect(err.message).not.toMatch(/call stack|^\[/);
    });
  });

  it('answers a bulk append per item when some items are poisoned', async () => {
    const items = POISONED.filter((p) => p.name !== 'details 3,000 levels deep');
    const events = [valid(200), valid(201), ...items.map((p) => p.body), valid(202), valid(203), valid(204)];
    const res = await srv.request('POST', '/api/v1/events/bulk', { events });
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(5);
    expect(res.body.rejected).toBe(items.length);
    for (const r of res.body.results) {
      const sent = events[r.index];
      const poison = items.find((p) => p.body === sent);
      if (poison) {
        expect({ name: poison.name, ok: r.ok, code: r.error?.code }).toEqual({
          name: poison.name,
          ok: false,
          code: 'BAD_REQUEST',
        });
        expectPath(r.error.issues, poison.path);
      } else {
        expect(r.ok).toBe(true);
        verifyReceipt(r.receipt, srv.verifierKey, origin());
      }
    }
  });

  it('refuses structurally absurd nesting with the same 400 on REST and tRPC', async () => {
    const body = { action: 'deep.input', status: 'success', details: deep(3000) };
    const rest = await srv.request('POST', '/api/v1/events', body);
    expect(rest.status).toBe(400);
    const err = (await srv
      .client()
      .events.create.mutate(body as never)
      .catch((e: unknown) => e)) as TRPCClientError<any>;
    expect(err.data.httpStatus).toBe(400);
    expect(err.message).toBe(rest.body.error.message);
    expect(err.data.issues).toEqual(rest.body.error.issues);
    expect(rest.body.error.issues[0].message).toBe('nesting deeper than 100 levels');
    // Deep input to a query procedure as well (tRPC carries it in the URL).
    const q = (await srv
      .client(undefined, { batch: false })
      .events.query.query({ cursor: deep(150) } as never)
      .catch((e: unknown) => e)) as TRPCClientError<any>;
    expect(q.data.httpStatus).toBe(400);
    expect(JSON.stringify(q.shape)).not.toMatch(/call stack/i);
  });

  it('refuses dates the database cannot store in queries, stats, export and cursors, naming the field', async () => {
    for (const ts of ['0001-01-01T00:00:00+23:59', '9999-12-31T23:59:59-23:59', '0000-06-01T00:00:00Z']) {
      for (const p of [
        `/api/v1/events?from=${encodeURIComponent(ts)}`,
        `/api/v1/events/stats?groupBy=day&to=${encodeURIComponent(ts)}`,
        `/api/v1/ledger/export?from=${encodeURIComponent(ts)}`,
      ]) {
        const res = await srv.request('GET', p);
        expect({ p, status: res.status }).toEqual({ p, status: 400 });
        expect(res.body.error.issues.map((i: { path: string }) => i.path)).toEqual([
          p.includes('to=') ? 'to' : 'from',
        ]);
      }
      const err = (await srv
        .client()
        .events.query.query({ dateRange: { from: ts } })
        .catch((e: unknown) => e)) as TRPCClientError<any>;
      expect(err.data.httpStatus).toBe(400);
      expect(err.data.issues.map((i: { path: string }) => i.path)).toEqual(['dateRange.from']);
    }
    const forged = (at: string) =>
      Buffer.from(JSON.stringify([at, '01900000-0000-7000-8000-000000000000'])).toString('base64url');
    for (const at of [
      '+010000-01-01T00:00:00.000Z',
      '0000-01-01T00:00:00.000Z',
      '9999-12-31T23:59:59-23:59',
    ]) {
      const res = await srv.request('GET', `/api/v1/events?cursor=${forged(at)}`);
      expect({ at, status: res.status }).toEqual({ at, status: 400 });
      expect(res.body.error.issues[0].path).toBe('cursor');
    }
    // The edges of the storable range are accepted.
    const edges = await srv.request(
      'GET',
      '/api/v1/events?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z',
    );
    expect(edges.status).toBe(200);
    const oldest = await srv.request('POST', '/api/v1/events', {
      action: 'edge.case',
      status: 'success',
      timestamp: '0001-01-01T00:00:00Z',
    });
    expect(oldest.status).toBe(201);
  });

  it('answers 404 for event ids whose time no event can have', async () => {
    const far = 'ffffffff-ffff-7fff-bfff-ffffffffffff';
    expect((await srv.request('GET', `/api/v1/events/${far}`)).status).toBe(404);
    expect((await srv.request('GET', `/api/v1/events/${far}?withProof=true`)).status).toBe(404);
    expect((await srv.request('GET', `/api/v1/ledger/proofs/inclusion?eventId=${far}`)).status).toBe(404);
    const err = (await srv
      .client()
      .events.getById.query({ id: far })
      .catch((e: unknown) => e)) as TRPCClientError<any>;
    expect(err.data.httpStatus).toBe(404);
  });

  it('refuses NUL bytes wherever text reaches the database', async () => {
    const filter = await srv.request('GET', '/api/v1/events?principalIds=a%00b&patientIds=ok,x%00');
    expect(filter.status).toBe(400);
    expect(filter.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual([
      'patientIds[1]',
      'principalIds[0]',
    ]);
    const apiKey = await srv.request('POST', '/api/v1/api-keys', { name: 'evil\u0000key', role: 'auditor' });
    expect(apiKey.status).toBe(400);
    expect(apiKey.body.error.issues[0].path).toBe('name');
    const producerKey = await srv.request('POST', '/api/v1/producer-keys', {
      name: 'evil\u0000',
      publicKey: '11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=',
    });
    expect(producerKey.status).toBe(400);
    expect(producerKey.body.error.issues[0].path).toBe('name');
    const trpc = (await srv
      .client()
      .events.query.query({ correlationIds: ['\u0000'] })
      .catch((e: unknown) => e)) as TRPCClientError<any>;
    expect(trpc.data.issues[0].path).toBe('correlationIds[0]');
    const surrogate = (await srv
      .client()
      .apiKeys.create.mutate({ name: '\udfff', role: 'auditor' })
      .catch((e: unknown) => e)) as TRPCClientError<any>;
    expect(surrogate.data.issues[0].path).toBe('name');
  });

  it('stores text and dates exactly as sent, refusing a leading byte-order mark that PGlite would drop on read', async () => {
    const lead = await srv.request('POST', '/api/v1/events', {
      action: 'bom.check',
      status: 'success',
      principalId: '\ufeffdr-1',
    });
    expect(lead.status).toBe(400);
    expect(lead.body.error.issues).toEqual([
      { path: 'principalId', message: 'must not begin with U+FEFF (a byte-order mark)' },
    ]);
    const sent = {
      action: 'bom.check',
      status: 'success',
      timestamp: '0002-03-04T05:06:07.089Z',
      principalId: 'dr\ufeff-1',
      patientId: '\u202e\u0001\uffff\u{10ffff}',
      details: { '\ufeffk': '\ufeffv', n: -0, big: 1e308, tiny: 5e-324 },
    };
    const ok = await srv.request('POST', '/api/v1/events', sent);
    expect(ok.status).toBe(201);
    const got = await srv.request('GET', `/api/v1/events/${ok.body.id}`);
    // Years below 100 come back as themselves (Date parsing of the driver's text read 0002 as 2001).
    expect(got.body.event).toMatchObject({
      timestamp: sent.timestamp,
      principalId: sent.principalId,
      patientId: sent.patientId,
      details: { '\ufeffk': '\ufeffv', n: 0, big: 1e308, tiny: 5e-324 },
    });
  });

  it('bounds lists and the issues one 400 reports', async () => {
    const commas = await srv.request('GET', `/api/v1/events?statuses=${','.repeat(5000)}`);
    expect(commas.status).toBe(400);
    expect(commas.body.error.issues).toEqual([
      { path: 'statuses', message: 'at most 100 comma-separated values' },
    ]);
    expect(JSON.stringify(commas.body).length).toBeLessThan(1000);
    const many = await srv.request('POST', '/api/v1/events', {
      action: 'many.issues',
      status: 'success',
      details: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'bad\u0000'])),
    });
    expect(many.status).toBe(400);
    expect(many.body.error.issues.length).toBeLessThanOrEqual(20);
    expect(many.body.error.message).toMatch(/and \d+ more$/);
    const trpc = (await srv
      .client()
      .events.query.query({ statuses: Array(1000).fill('nope') })
      .catch((e: unknown) => e)) as TRPCClientError<any>;
    expect(trpc.data.httpStatus).toBe(400);
    expect(trpc.data.issues.length).toBeLessThanOrEqual(20);
  });

  it('gives tRPC errors the REST shape: code, message, field paths, request id — nothing internal', async () => {
    const body = { action: 'nodots', status: 'maybe', unknownField: 1 };
    const rest = await srv.request('POST', '/api/v1/events', body);
    const err = (await srv
      .client()
      .events.create.mutate(body as never)
      .catch((e: unknown) => e)) as TRPCClientError<any>;
    expect(err.data.code).toBe(rest.body.error.code);
    expect(err.message).toBe(rest.body.error.message);
    expect(err.data.issues).toEqual(rest.body.error.issues);
    expect(err.data.requestId).toEqual(expect.any(String));
    expect(err.message).toMatch(/^invalid input: /);
  });
});
