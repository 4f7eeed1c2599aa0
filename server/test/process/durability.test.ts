/**
 * Durability: a server that is SIGKILLed at random moments while clients ingest never loses an
 * acknowledged event. After the last restart every acknowledged event is present, in the tree,
 * and verifies against the checkpoint; every checkpoint a client received is consistent with it.
 */
import { openCheckpoint, parseVerifierKey, verifyConsistency, verifyInclusion } from '../../src/ledger';
import { describeEachBackend } from '../helpers/backends';
import { getJson, killServer, postJson, spawnServer, type ServerProcess } from '../helpers/process';
import { backendEnv, TEST_ADMIN_KEY } from '../helpers/server';
import { generateSignerKey } from '../../src/ledger';

jest.setTimeout(400_000);

interface Ack {
  id: string;
  leafIndex: number;
  leafHash: string;
  treeSize: number;
  rootHash: string;
  checkpoint: string;
}

const b = (s: string) => Buffer.from(s, 'base64');

describeEachBackend('durability under SIGKILL on %s', (backend) => {
  it('keeps every acknowledged event across random kills', async () => {
    const { env: benv, cleanup } = await backendEnv(backend);
    const { signerKey, verifierKey } = generateSignerKey('durability.audit');
    const env = {
      ...benv,
      AUDIT_SIGNING_KEY: signerKey,
      AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
      RATE_LIMIT_PER_MINUTE: '0',
      AUDIT_LOG_ORIGIN: 'durability.audit',
    };
    const acks: Ack[] = [];
    const outcomes: string[] = [];
    let server: ServerProcess | null = null;
    try {
      for (let round = 0; round < 3; round++) {
        server = await spawnServer(env);
        const url = server.url;
        let stop = false;
        let killing = false;
        const before = acks.length;
        // Every request's outcome is counted: acknowledged, refused (with its status), or cut by
        // the kill. Nothing may fail before the kill; after it every request fails, and a client
        // stops at its first failure then.
        const client = async (c: number) => {
          for (let i = 0; !stop; i++) {
            try {
              if (i % 5 === 0) {
                const res = await postJson(`${url}/api/v1/events/bulk`, TEST_ADMIN_KEY, {
                  events: Array.from({ length: 20 }, (_, k) => ({
                    action: 'durability.bulk',
                    status: 'success',
                    correlationId: `r${round}-c${c}-i${i}-k${k}`,
                  })),
                });
                if (res.status !== 200) outcomes.push(`bulk HTTP ${res.status}`);
                else
                  for (const r of res.body.results) {
                    if (r.ok) acks.push(r.receipt);
                    else outcomes.push('bulk item refused');
                  }
              } else {
                const res = await postJson(`${url}/api/v1/events`, TEST_ADMIN_KEY, {
                  action: 'durability.single',
                  status: 'success',
                  correlationId: `r${round}-c${c}-i${i}`,
                });
                if (res.status === 201) acks.push(res.body);
                else outcomes.push(`HTTP ${res.status}`);
              }
            } catch (err) {
              if (!killing) outcomes.push(`network error before the kill: ${String(err)}`);
              return; // cut by the kill: that request was never acknowledged
            }
          }
        };
        const clients = Array.from({ length: 6 }, (_, c) => client(c));
        // Kill at a random point of the load: after 20 to 80 acknowledgements in this round.
        const killAt = before + 20 + Math.floor(Math.random() * 60);
        const deadline = Date.now() + 120_000;
        while (acks.length < killAt && outcomes.length === 0) {
          if (Date.now() > deadline)
            throw new Error(
              `round ${round}: ${acks.length - before} acknowledgements before the deadline\n${server.output()}`,
            );
          await new Promise((r) => setTimeout(r, 10));
        }
        killing = true;
        await killServer(server, 'SIGKILL');
        stop = true;
        await Promise.all(clients);
        expect(outcomes).toEqual([]);
      }
      expect(acks.length).toBeGreaterThanOrEqual(3 * 20);

      server = await spawnServer(env);
      const verifier = parseVerifierKey(verifierKey);
      const cp = await getJson(`${server.url}/api/v1/ledger/checkpoint`, TEST_ADMIN_KEY);
      const { checkpoint } = openCheckpoint(cp.body.note, [verifier]);
      const maxAcked = Math.max(...acks.map((a) => a.treeSize));
      expect(checkpoint.size).toBeGreaterThanOrEqual(maxAcked);

      // Leaf indexes of acknowledged events are unique (no index handed out twice across kills).
      expect(new Set(acks.map((a) => a.leafIndex)).size).toBe(acks.length);

      // Every receipt's checkpoint is signed and a prefix of today's tree.
      const sizes = [...new Set(acks.map((a) => a.treeSize))];
      for (const size of sizes) {
        const a = acks.find((x) => x.treeSize === size)!;
        const opened = openCheckpoint(a.checkpoint, [verifier]);
        const proof = await getJson(
          `${server.url}/api/v1/ledger/proofs/consistency?fromSize=${size}&toSize=${checkpoint.size}`,
          TEST_ADMIN_KEY,
        );
        verifyConsistency(
          size,
          checkpoint.size,
          proof.body.hashes.map(b),
          opened.checkpoint.rootHash,
          checkpoint.rootHash,
        );
      }
      // Every acknowledged event is present, unchanged, and included in the current tree.
      for (const a of acks) {
        const ev = await getJson(`${server.url}/api/v1/events/${a.id}`, TEST_ADMIN_KEY);
        expect(ev.status).toBe(200);
        expect(ev.body.event.leafHash).toBe(a.leafHash);
        expect(ev.body.event.leafIndex).toBe(a.leafIndex);
      }
      for (const a of acks.filter((_, i) => i % 7 === 0)) {
        const p = await getJson(
          `${server.url}/api/v1/ledger/proofs/inclusion?leafIndex=${a.leafIndex}&treeSize=${checkpoint.size}`,
          TEST_ADMIN_KEY,
        );
        verifyInclusion(
          b(a.leafHash),
          a.leafIndex,
          checkpoint.size,
          p.body.hashes.map(b),
          checkpoint.rootHash,
        );
      }
    } finally {
      if (server) await killServer(server, 'SIGTERM');
      await cleanup();
    }
  });
});
