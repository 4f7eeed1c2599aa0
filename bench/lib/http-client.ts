/**
 * A minimal HTTP/1.1 client over `node:http` with a keep-alive Agent. The benchmark client shares
 * the machine's cores with the server and PostgreSQL, so it avoids everything that costs CPU and is
 * not needed: no fetch/undici stream machinery, no JSON parsing unless the caller asks for it.
 * Traffic only ever goes to the loopback address the server was started on.
 */
import http from 'node:http';
import { nowMs } from './stats';

/** One completed request. */
export interface HttpResult {
  status: number;
  body: string;
  /** Time from issuing the request to the last byte of the response, in ms. */
  ms: number;
}

/** A request that was still unanswered after the client's timeout. */
export class RequestTimeoutError extends Error {
  constructor(method: string, path: string, timeoutMs: number) {
    super(`${method} ${path.split('?')[0]} unanswered after ${timeoutMs} ms`);
  }
}

/** Keep-alive client bound to one base URL and one API key. */
export class HttpClient {
  private readonly agent: http.Agent;
  private readonly host: string;
  private readonly port: number;

  /**
   * @param baseUrl `http://127.0.0.1:<port>`; anything but a loopback host is refused.
   * @param apiKey sent as `Authorization: Bearer <apiKey>`.
   * @param maxSockets connections kept open (one per concurrent client).
   * @param timeoutMs a request still unanswered after this long is aborted and rejects (0: never).
   */
  constructor(
    baseUrl: string,
    private readonly apiKey: string,
    maxSockets: number,
    private readonly timeoutMs = 0,
  ) {
    const url = new URL(baseUrl);
    if (url.protocol !== 'http:' || url.hostname !== '127.0.0.1') {
      throw new Error(`benchmark traffic must stay on http://127.0.0.1, not ${baseUrl}`);
    }
    this.host = url.hostname;
    this.port = Number(url.port);
    // keepAlive: a TCP handshake per request would measure the kernel, not the server.
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'fifo' });
  }

  /** GET `path` (with query string). */
  get(path: string): Promise<HttpResult> {
    return this.request('GET', path, undefined);
  }

  /** POST a JSON body that is already serialized. */
  post(path: string, json: string): Promise<HttpResult> {
    return this.request('POST', path, json);
  }

  private request(method: string, path: string, json: string | undefined): Promise<HttpResult> {
    return new Promise<HttpResult>((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${this.apiKey}`, accept: 'application/json' };
      if (json !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(json);
      }
      const started = nowMs();
      const req = http.request({ host: this.host, port: this.port, method, path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: nowMs() - started });
        });
      });
      req.on('error', reject);
      if (this.timeoutMs > 0) req.setTimeout(this.timeoutMs, () => req.destroy(new RequestTimeoutError(method, path, this.timeoutMs)));
      if (json !== undefined) req.write(json);
      req.end();
    });
  }

  /** Closes the kept-alive sockets. */
  close(): void {
    this.agent.destroy();
  }
}

/** Throws with the status and the start of the body unless `result.status` is `expected`. */
export function expectStatus(result: HttpResult, expected: number, what: string): void {
  if (result.status !== expected) {
    throw new Error(`${what}: HTTP ${result.status} (expected ${expected}): ${result.body.slice(0, 300)}`);
  }
}
