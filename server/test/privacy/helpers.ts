/**
 * Helpers of the privacy and retention tests: export and verify, wait for an erasure, and read
 * every table of a database as text (the PGlite stand-in for a pg_dump).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BundleVerifier, parseVerifierKey, type BundleReport } from '../../src/ledger';
import type { TestServer } from '../helpers/server';

const ROOT = path.resolve(__dirname, '../../..');

/** The organization's export bundle over REST, as NDJSON text. */
export async function exportNdjson(srv: TestServer, query = '', key = srv.adminKey): Promise<string> {
  const res = await fetch(`${srv.url}/api/v1/ledger/export${query}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  if (res.status !== 200) throw new Error(`export answered ${res.status}`);
  return res.text();
}

/** Verifies NDJSON in process. */
export function verifyNdjson(text: string, verifierKey: string): BundleReport {
  const v = new BundleVerifier({ verifiers: [parseVerifierKey(verifierKey)] });
  for (const line of text.trimEnd().split('\n')) v.push(JSON.parse(line));
  return v.finish();
}

/** Runs `audit-verify bundle` on NDJSON text, as an auditor would. */
export function auditVerifyBundle(
  text: string,
  verifierKey: string,
): { status: number | null; stdout: string; stderr: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'privacy-verify-'));
  try {
    const file = path.join(dir, 'bundle.ndjson');
    fs.writeFileSync(file, text);
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'server/src/cli/audit-verify.ts', 'bundle', file, '--key', verifierKey],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 170_000,
      },
    );
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Every fake timer but Date: while `atLastMonth` runs, only the clock the server reads moves back.
const REAL_TIMERS = ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] as const;

/** Runs `fn` with Date at noon of the first day of last month (timers stay real): events it ingests are last month's. */
export async function atLastMonth<T>(fn: () => Promise<T>): Promise<T> {
  const now = new Date();
  jest.useFakeTimers({ doNotFake: [...REAL_TIMERS], now: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1, 12)) });
  try {
    return await fn();
  } finally {
    jest.useRealTimers();
  }
}

/** An erasure request as listed. */
export interface Erasure {
  id: string;
  state: 'running' | 'completed';
  eventsErased: number;
  batches: number;
  subjectHash: string;
  keyVersion: number;
}

/** Polls the list until the erasure `id` is completed (no fixed sleeps: a short back-off). */
export async function waitForErasure(srv: TestServer, id: string, deadlineMs = 120_000): Promise<Erasure> {
  const end = Date.now() + deadlineMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 500)) {
    const res = await srv.request('GET', '/api/v1/privacy/erasures?limit=1000');
    const found = (res.body as { erasures: Erasure[] }).erasures.find((e) => e.id === id);
    if (found?.state === 'completed') return found;
    if (Date.now() > end) throw new Error(`erasure ${id} not completed: ${JSON.stringify(found)}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Every row of every table of the public schema as text (what a logical dump holds), PGlite or PostgreSQL. */
export async function allRowsText(srv: TestServer): Promise<string> {
  const conn = await srv.runtime.database.connect();
  try {
    const { rows } = await conn.query<{ t: string }>(
      `SELECT c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition`,
    );
    let out = '';
    for (const { t } of rows) {
      const r = await conn.query<{ x: string }>(`SELECT string_agg(t::text, E'\\n') AS x FROM "${t}" t`);
      out += `-- ${t}\n${r.rows[0]?.x ?? ''}\n`;
    }
    return out;
  } finally {
    conn.release();
  }
}

/** pg_dump of a PostgreSQL database (data only), as text. */
export function pgDump(url: string): string {
  const r = spawnSync('pg_dump', ['--data-only', '--no-owner', url], {
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`pg_dump failed: ${r.stderr}`);
  return r.stdout;
}
