/**
 * The wire formats of the three destination kinds (docs/delivery.md): an HTTPS webhook signed with
 * HMAC-SHA256 over the timestamp and the body, syslog (RFC 5424 messages) over TLS with RFC 5425
 * octet-counting framing, and Splunk's HTTP Event Collector. A send resolves only once the
 * receiver accepted the whole batch (2xx, or for syslog a clean TLS close after the last message);
 * anything else throws and the batch is sent again, whole, with the same ids.
 */
import { createHmac } from 'node:crypto';
import https from 'node:https';
import os from 'node:os';
import { isIP } from 'node:net';
import tls from 'node:tls';

/** One batch as it goes out: events (a slice of an export bundle) or one alert. */
export interface DeliveryBatch {
  /** Stable across retries and replays: a receiver drops a duplicate by it. */
  id: string;
  organizationId: string;
  destinationId: string;
  type: 'events' | 'alert';
  /** Leaves [start, end) for events. */
  range: { start: number; end: number } | null;
  /** The latest signed checkpoint when the batch was built: what a copy is verified against. */
  checkpoint: { treeSize: number; rootHash: string; note: string } | null;
  /** Export-bundle records (events) or the alert. */
  records: unknown[];
}

/** Where and how to send (a destination with its secrets opened). */
export interface SendTarget {
  kind: 'webhook' | 'syslog' | 'splunk_hec';
  url: string;
  /** PEM certificates to trust instead of the system's (a private CA or a self-signed receiver). */
  ca?: string | undefined;
  /** Webhook HMAC secrets (current first, then a previous one still in its rotation window); HEC token. */
  secrets: string[];
  /** Splunk index and sourcetype. */
  index?: string | undefined;
  sourcetype?: string | undefined;
  timeoutMs: number;
}

/** The webhook's signature header: `v1=<hex>` per secret, comma-separated. */
export function webhookSignature(secrets: string[], timestamp: string, body: string): string {
  // HMAC-SHA256(secret, timestamp || "." || body), hex.
  return secrets.map((s) => `v1=${createHmac('sha256', s).update(`${timestamp}.${body}`).digest('hex')}`).join(',');
}

/** Sends one batch; resolves once the receiver took all of it. */
export async function sendBatch(target: SendTarget, batch: DeliveryBatch): Promise<void> {
  switch (target.kind) {
    case 'webhook':
      return sendWebhook(target, batch);
    case 'splunk_hec':
      return sendHec(target, batch);
    case 'syslog':
      return sendSyslog(target, batch);
  }
}

async function sendWebhook(target: SendTarget, batch: DeliveryBatch): Promise<void> {
  const body = JSON.stringify(batch);
  const timestamp = String(Math.floor(Date.now() / 1000));
  await post(target, body, {
    'content-type': 'application/json',
    'x-audit-delivery-id': batch.id,
    'x-audit-timestamp': timestamp,
    ...(target.secrets.length > 0 ? { 'x-audit-signature': webhookSignature(target.secrets, timestamp, body) } : {}),
  });
}

async function sendHec(target: SendTarget, batch: DeliveryBatch): Promise<void> {
  const host = os.hostname();
  const time = Date.now() / 1000;
  // HEC's batch form: JSON event objects one after the other; each carries the batch id and its place in it.
  const body = batch.records
    .map((record, seq) =>
      JSON.stringify({
        time,
        host,
        source: 'smedrec-audit',
        sourcetype: target.sourcetype ?? 'smedrec:audit',
        ...(target.index ? { index: target.index } : {}),
        event: { batch: batch.id, seq, count: batch.records.length, type: batch.type, organizationId: batch.organizationId, range: batch.range, checkpoint: seq === 0 ? batch.checkpoint : undefined, record },
      }),
    )
    .join('\n');
  const url = new URL(target.url);
  if (!url.pathname.startsWith('/services/collector')) url.pathname = '/services/collector/event';
  await post({ ...target, url: url.toString() }, body, { 'content-type': 'application/json', authorization: `Splunk ${target.secrets[0] ?? ''}`, 'x-splunk-request-channel': batch.destinationId });
}

/** POSTs `body`; resolves on 2xx, throws naming the status otherwise. */
function post(target: SendTarget, body: string, headers: Record<string, string>): Promise<void> {
  const url = new URL(target.url);
  if (url.protocol !== 'https:') return Promise.reject(new Error(`destination URL must be https (got ${url.protocol})`));
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) }, ...(target.ca ? { ca: target.ca } : {}), timeout: target.timeoutMs },
      (res) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new Error(`the receiver answered ${status}`));
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${target.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** RFC 5424 PRI for facility 13 (log audit), severity 6 (informational) or 4 (warning, alerts). */
const PRI = { events: 13 * 8 + 6, alert: 13 * 8 + 4 };

/** An RFC 5424 structured-data parameter value: `"`, `\` and `]` escaped (RFC 5424 §6.3.3). */
function sdValue(v: string): string {
  return v.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/**
 * One RFC 5424 message per record, with the batch id, the record's place and the organization as
 * structured data (`[audit@32473 …]`, 32473 being the documentation enterprise number of RFC 5612)
 * and the record as JSON in MSG, each framed `MSG-LEN SP SYSLOG-MSG` (RFC 5425 §4.3).
 */
export function syslogFrames(batch: DeliveryBatch, hostname = os.hostname()): Buffer[] {
  const ts = new Date().toISOString();
  return batch.records.map((record, seq) => {
    const sd = `[audit@32473 batch="${sdValue(batch.id)}" seq="${seq}" count="${batch.records.length}" org="${sdValue(batch.organizationId)}" type="${batch.type}"${batch.range ? ` start="${batch.range.start}" end="${batch.range.end}"` : ''}${seq === 0 && batch.checkpoint ? ` treeSize="${batch.checkpoint.treeSize}" rootHash="${sdValue(batch.checkpoint.rootHash)}"` : ''}]`;
    const msg = `<${PRI[batch.type]}>1 ${ts} ${hostname.slice(0, 255) || '-'} smedrec-audit ${process.pid} ${batch.type} ${sd} ${JSON.stringify(record)}`;
    const bytes = Buffer.from(msg, 'utf8');
    return Buffer.concat([Buffer.from(`${bytes.length} `, 'ascii'), bytes]);
  });
}

/**
 * Writes the batch's frames over one TLS connection and closes it; resolves when the receiver
 * closed its side cleanly after reading everything (syslog has no acknowledgement: a connection
 * that breaks before that is a failed send, and the batch goes again).
 */
function sendSyslog(target: SendTarget, batch: DeliveryBatch): Promise<void> {
  const url = new URL(target.url);
  if (url.protocol !== 'syslog+tls:' && url.protocol !== 'tls:') return Promise.reject(new Error(`syslog destination URL must be syslog+tls://host:port (got ${url.protocol})`));
  const port = Number(url.port || 6514);
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    // SNI carries host names only (RFC 6066 §3); an IP address is checked against the certificate's IP SANs.
    const socket = tls.connect({ host: url.hostname, port, ...(isIP(url.hostname) ? {} : { servername: url.hostname }), ...(target.ca ? { ca: target.ca } : {}) }, () => {
      for (const frame of syslogFrames(batch)) socket.write(frame);
      socket.end();
    });
    socket.setTimeout(target.timeoutMs, () => finish(new Error(`syslog receiver did not close within ${target.timeoutMs} ms`)));
    socket.on('error', (err: Error) => finish(err));
    socket.resume(); // the receiver sends nothing; its FIN arrives as 'end'
    socket.on('end', () => finish());
    socket.on('close', (hadError) => finish(hadError ? new Error('syslog connection broke') : new Error('syslog connection closed before the receiver finished')));
  });
}
