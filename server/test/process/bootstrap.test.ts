/**
 * First start on an empty embedded database creates an organization and prints its admin key
 * once; a restart prints nothing and the key keeps working; `npm start`'s entry point writes its
 * data and generated signing key under AUDIT_DATA_DIR.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getJson, killServer, spawnServer } from '../helpers/process';

jest.setTimeout(400_000);

it('prints a generated admin key on first start only, and keeps the signing key across restarts', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-bootstrap-'));
  try {
    const first = await spawnServer({ AUDIT_DATA_DIR: dir, LOG_LEVEL: 'info' });
    await new Promise((r) => setTimeout(r, 200));
    const keys = first.output().match(/sak_[A-Za-z0-9_-]{43}/g) ?? [];
    expect(keys).toHaveLength(1);
    expect(first.output()).toMatch(/generated a new checkpoint signing key/);
    const key = keys[0]!;
    const ok = await getJson(`${first.url}/api/v1/api-keys`, key);
    expect(ok.status).toBe(200);
    const vkey1 = (await getJson(`${first.url}/api/v1/ledger/keys`, key)).body.keys[0].verifierKey;
    await killServer(first, 'SIGTERM');
    expect(fs.statSync(path.join(dir, 'signing-key')).mode & 0o777).toBe(0o600);

    const second = await spawnServer({ AUDIT_DATA_DIR: dir, LOG_LEVEL: 'info' });
    try {
      expect(second.output()).not.toMatch(/sak_/);
      expect(second.output()).not.toMatch(/generated a new checkpoint signing key/);
      const keysAgain = await getJson(`${second.url}/api/v1/ledger/keys`, key);
      expect(keysAgain.status).toBe(200);
      expect(keysAgain.body.keys.map((k: { verifierKey: string }) => k.verifierKey)).toEqual([vkey1]);
    } finally {
      await killServer(second, 'SIGTERM');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
