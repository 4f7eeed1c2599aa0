/**
 * `node --import tsx bench/http-floor.ts [--requests N] [--clients N]`: the CPU floor of answering
 * one single-event POST over HTTP in Node, without the audit server: a child process serves
 * `POST /api/v1/events` with (a) bare `node:http` (read the body, `JSON.parse`, answer 201 with a
 * receipt-sized JSON body), (b) Express 5 reading the body by hand and (c) Express 5 +
 * `express.json()` doing the same, and the benchmark's
 * keep-alive client sends the workload's events from 32 connections. It prints the server's CPU
 * per request (from /proc), so the single-event figure of `bench:ingest` can be read against what
 * HTTP alone costs on the same machine at the same moment. Nothing is written to a database.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import { parseArgs } from 'node:util';
import express from 'express';
import { runBounded } from './lib/concurrency';
import { HttpClient, expectStatus } from './lib/http-client';
import { sampleProcess } from './lib/server-process';
import { makeEvent } from './lib/workload';

/** A receipt of the size the server answers for one event (a checkpoint note and a proof of 15 hashes). */
function receipt(i: number): unknown {
  const h = Buffer.alloc(32, i & 0xff).toString('base64');
  return {
    id: '01a24bdc-4752-75cc-a5bb-9d0520e300fc',
    leafIndex: i,
    leafHash: h,
    recordedAt: new Date(0).toISOString(),
    treeSize: i + 1,
    rootHash: h,
    checkpoint: `bench.audit/00000000-0000-0000-0000-000000000000\n${i + 1}\n${h}\n\n— bench.audit ${Buffer.alloc(68, 1).toString('base64')}\n`,
    inclusionProof: { leafIndex: i, treeSize: i + 1, hashes: Array.from({ length: 15 }, () => h) },
    duplicate: false,
  };
}

function serve(kind: string): void {
  let n = 0;
  let server: http.Server;
  if (kind === 'node') {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { action?: string };
        if (typeof body.action !== 'string') res.writeHead(400).end();
        const out = JSON.stringify(receipt(n++));
        res.writeHead(201, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      });
    });
  } else {
    const app = express();
    app.disable('x-powered-by');
    if (kind === 'express') app.use(express.json({ limit: 1024 * 1024, strict: true }));
    else {
      // Express routing and response, the body read by hand (what body-parser costs on top).
      app.use((req, _res, next) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          req.body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          next();
        });
      });
    }
    app.post('/api/v1/events', (req, res) => {
      if (typeof (req.body as { action?: string }).action !== 'string') return void res.status(400).end();
      res.status(201).json(receipt(n++));
    });
    server = http.createServer(app);
  }
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
}

async function measure(kind: string, requests: number, clients: number): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, '--serve', kind], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  const client = new HttpClient(`http://127.0.0.1:${port}`, 'bench_floor_key_0123456789', clients);
  try {
    const bodies = Array.from({ length: 1000 }, (_, i) => JSON.stringify(makeEvent(1, i)));
    const send = async (i: number) => expectStatus(await client.post('/api/v1/events', bodies[i % bodies.length]!), 201, kind);
    await runBounded(clients * 50, clients, send); // warm-up
    const cpu0 = sampleProcess(child.pid!).cpuSeconds;
    const t0 = performance.now();
    await runBounded(requests, clients, send);
    const wall = (performance.now() - t0) / 1000;
    const cpu = sampleProcess(child.pid!).cpuSeconds - cpu0;
    console.log(
      `${kind.padEnd(8)} ${requests} requests in ${wall.toFixed(2)} s = ${(requests / wall).toFixed(0)}/s · server CPU ${((cpu * 1e6) / requests).toFixed(0)} µs/request (${((100 * cpu) / wall).toFixed(0)}% of a core) · load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    );
  } finally {
    client.close();
    child.kill();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { serve: { type: 'string' }, requests: { type: 'string' }, clients: { type: 'string' } } });
  if (values.serve) return serve(values.serve);
  const requests = Number(values.requests ?? 20_000);
  const clients = Number(values.clients ?? 32);
  console.log(`HTTP floor of a single-event POST: ${requests} requests, ${clients} keep-alive clients, workload events (~600 B), ~1.3 KB receipts`);
  for (const kind of ['node', 'express-raw', 'express', 'node', 'express-raw', 'express']) await measure(kind, requests, clients);
}

void main();
