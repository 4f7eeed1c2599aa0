/**
 * A TCP proxy between a client and PostgreSQL that loses one transaction's connection at the worst
 * moment, for tests of what the client does when it cannot know whether its COMMIT happened.
 * It reads the PostgreSQL wire protocol (v3: a startup packet, then messages of one type byte and
 * a 32-bit length that counts itself) in both directions; once armed with a marker, the first
 * connection that sends the marker (a parameter of a statement: the Bind or Query message carries
 * it) is cut at its next COMMIT:
 *
 * - `before-commit`: the COMMIT is never forwarded; PostgreSQL rolls the transaction back when the
 *   connection closes. Nothing was stored.
 * - `after-commit`: the COMMIT is forwarded and PostgreSQL's CommandComplete("COMMIT") is
 *   swallowed; then both sides are closed. The transaction is stored, and the client never heard.
 *
 * While PostgreSQL is down, a connection is accepted and closed at once, and counted (`refused`):
 * a test can wait until its client has tried to connect.
 */
import net from 'node:net';

/** Where the cut falls; see the module comment. */
export type CutMode = 'before-commit' | 'after-commit';

/** A running proxy. */
export interface CommitCutter {
  readonly port: number;
  /** Cuts the connection whose statements carry `marker` at its next COMMIT (once). */
  arm(marker: string, mode: CutMode): void;
  /** Cuts done so far. */
  readonly cuts: number;
  /** Connections whose upstream (PostgreSQL) could not be reached. */
  readonly refused: number;
  close(): Promise<void>;
}

/** Splits a byte stream into whole protocol messages (the first may be an untyped startup packet). */
class MessageReader {
  private buffer = Buffer.alloc(0);
  constructor(private startup: boolean) {}

  /** Appends `chunk`; returns the complete messages it finishes (type '' for the startup packet). */
  push(chunk: Buffer): Array<{ type: string; bytes: Buffer }> {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const out: Array<{ type: string; bytes: Buffer }> = [];
    for (;;) {
      if (this.startup) {
        if (this.buffer.length < 4) break;
        const length = this.buffer.readInt32BE(0);
        if (this.buffer.length < length) break;
        out.push({ type: '', bytes: this.buffer.subarray(0, length) });
        this.buffer = this.buffer.subarray(length);
        this.startup = false;
        continue;
      }
      if (this.buffer.length < 5) break;
      const length = this.buffer.readInt32BE(1) + 1;
      if (this.buffer.length < length) break;
      out.push({ type: String.fromCharCode(this.buffer[0]!), bytes: this.buffer.subarray(0, length) });
      this.buffer = this.buffer.subarray(length);
    }
    return out;
  }
}

/** Whether a Query ('Q') or Parse ('P') message is a COMMIT. */
function isCommit(type: string, bytes: Buffer): boolean {
  if (type === 'Q') return /^\s*commit\b/i.test(bytes.subarray(5).toString('utf8'));
  if (type === 'P') {
    const nameEnd = bytes.indexOf(0, 5);
    return /^\s*commit\b/i.test(bytes.subarray(nameEnd + 1).toString('utf8'));
  }
  return false;
}

/** Starts the proxy on a port the kernel picks, forwarding to 127.0.0.1:`targetPort`. */
export async function startCommitCutter(targetPort: number): Promise<CommitCutter> {
  let armed: { marker: Buffer; mode: CutMode } | null = null;
  let cuts = 0;
  let refused = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    let connected = false;
    upstream.on('connect', () => (connected = true));
    client.on('error', drop);
    upstream.on('error', () => {
      if (!connected) refused++;
      drop();
    });
    client.on('close', () => {
      sockets.delete(client);
      upstream.end();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.end();
    });
    const fromClient = new MessageReader(true);
    const fromServer = new MessageReader(false);
    /** This connection carries the marked transaction: 'marked' until its COMMIT, then 'awaiting' the server's answer. */
    let state: 'idle' | 'marked' | 'awaiting' = 'idle';
    let mode: CutMode = 'after-commit';
    client.on('data', (chunk: Buffer) => {
      const pending: Buffer[] = [];
      for (const m of fromClient.push(chunk)) {
        if (state === 'idle' && armed && m.bytes.includes(armed.marker)) {
          state = 'marked';
          mode = armed.mode;
          armed = null;
        }
        if (state === 'marked' && isCommit(m.type, m.bytes)) {
          if (mode === 'before-commit') {
            if (pending.length > 0) upstream.write(Buffer.concat(pending));
            cuts++;
            drop();
            return;
          }
          state = 'awaiting';
        }
        pending.push(m.bytes);
      }
      if (pending.length > 0) upstream.write(Buffer.concat(pending));
    });
    upstream.on('data', (chunk: Buffer) => {
      const pending: Buffer[] = [];
      for (const m of fromServer.push(chunk)) {
        if (state === 'awaiting' && m.type === 'C' && m.bytes.subarray(5).toString('utf8').startsWith('COMMIT')) {
          if (pending.length > 0) client.write(Buffer.concat(pending));
          cuts++;
          drop();
          return;
        }
        pending.push(m.bytes);
      }
      if (pending.length > 0) client.write(Buffer.concat(pending));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    arm: (marker, mode) => {
      armed = { marker: Buffer.from(marker, 'utf8'), mode };
    },
    get cuts() {
      return cuts;
    },
    get refused() {
      return refused;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
