/**
 * Real receivers for the delivery tests, started by the test on ports the kernel picks: an HTTPS
 * webhook receiver, a Splunk HEC-speaking HTTPS server and a syslog-over-TLS listener (RFC 5425
 * octet counting), all with a self-signed certificate generated for the run by openssl. Each can
 * be killed mid-stream (every connection destroyed while a batch is arriving) and started again
 * on the same port.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

/** A self-signed certificate for 127.0.0.1. */
export function selfSignedCert(): { key: string; cert: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'delivery-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    return { key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One message a receiver took: the HTTP request (body, headers) or one syslog frame. */
export interface Received {
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A receiver that can be killed mid-stream and started again. */
export class Receiver {
  readonly received: Received[] = [];
  private server: https.Server | tls.Server;
  private readonly sockets = new Set<net.Socket>();
  private killAfter: number | null = null;
  port = 0;
  /** Answer HTTP requests with this status (500: the receiver is failing). */
  status = 200;
  /** How many times it was killed. */
  kills = 0;

  private constructor(
    private readonly kind: 'http' | 'syslog',
    private readonly tlsOptions: { key: string; cert: string },
    private readonly answer: (r: Received) => { status: number; body: string },
  ) {
    this.server = this.create();
  }

  /** An HTTPS receiver (webhook or HEC): `answer` decides the reply. */
  static async https(cert: { key: string; cert: string }, answer: (r: Received) => { status: number; body: string }): Promise<Receiver> {
    const r = new Receiver('http', cert, answer);
    await r.listen(0);
    return r;
  }

  /** A syslog-over-TLS listener. */
  static async syslog(cert: { key: string; cert: string }): Promise<Receiver> {
    const r = new Receiver('syslog', cert, () => ({ status: 200, body: '' }));
    await r.listen(0);
    return r;
  }

  private create(): https.Server | tls.Server {
    const server =
      this.kind === 'http'
        ? https.createServer(this.tlsOptions, (req, res) => {
            const chunks: Buffer[] = [];
            req.on('data', (c: Buffer) => chunks.push(c));
            req.on('end', () => {
              const r = { body: Buffer.concat(chunks).toString('utf8'), headers: req.headers };
              this.take(r);
              if (this.dead) return; // killed with the request read but unanswered
              const a = this.status === 200 ? this.answer(r) : { status: this.status, body: '{}' };
              res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
            });
          })
        : tls.createServer(this.tlsOptions, (socket) => {
            let buf = Buffer.alloc(0);
            socket.on('data', (d: Buffer) => {
              buf = Buffer.concat([buf, d]);
              // RFC 5425 §4.3: MSG-LEN SP SYSLOG-MSG.
              for (;;) {
                const sp = buf.indexOf(0x20);
                if (sp < 0) break;
                const len = Number(buf.subarray(0, sp).toString('ascii'));
                if (buf.length < sp + 1 + len) break;
                this.take({ body: buf.subarray(sp + 1, sp + 1 + len).toString('utf8'), headers: {} });
                buf = buf.subarray(sp + 1 + len);
                if (this.dead) return;
              }
            });
            socket.on('end', () => socket.end());
            socket.on('error', () => undefined);
          });
    server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('tlsClientError', () => undefined);
    return server;
  }

  private dead = false;

  private take(r: Received): void {
    if (this.dead) return;
    this.received.push(r);
    if (this.killAfter !== null && --this.killAfter <= 0) {
      this.killAfter = null;
      this.kill();
    }
  }

  /** Dies after `n` more messages: every connection destroyed at once, the port closed. */
  dieAfter(n: number): void {
    this.killAfter = n;
  }

  /**
   * Dies now, as a killed process does: the port closes and every connection is cut. The syslog
   * listener's connections are reset (RST), as the kernel does for a process that dies with
   * frames still unread; what it read it had already stored.
   */
  kill(): void {
    this.dead = true;
    this.kills++;
    this.server.close();
    for (const s of this.sockets) {
      if (this.kind === 'syslog') s.resetAndDestroy();
      else s.destroy();
    }
  }

  /** Starts again on the same port. */
  async restart(): Promise<void> {
    this.server = this.create();
    await this.listen(this.port);
    this.dead = false;
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.port = (this.server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.dead = true;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
