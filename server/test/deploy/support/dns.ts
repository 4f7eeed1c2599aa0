/**
 * A small authoritative DNS server over UDP (RFC 1035 §4) for the deployment tests: it answers A
 * queries for the names it was given with their current addresses, the way Docker's embedded DNS
 * (127.0.0.11) answers a compose service name with one address per running replica. The tests
 * change the answer while nginx runs, as `docker-compose up --scale` does.
 */
import { createSocket } from 'node:dgram';

/** Docker's embedded DNS answers container records with a TTL of 600 s; nginx's `valid=` overrides it. */
const DOCKER_TTL_SECONDS = 600;

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE_FORMERR = 1;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;

/** A running DNS server. */
export interface DnsServer {
  /** UDP port on 127.0.0.1. */
  readonly port: number;
  /** Replaces the A records of `name` (an empty list answers with no address). */
  setAddresses(name: string, addresses: readonly string[]): void;
  /** How many queries for `name` arrived so far. */
  queries(name: string): number;
  /**
   * The distinct sources (`address:port`) that asked for `name`. Each nginx worker process
   * keeps its own resolver socket and its own cache, so this counts the workers that resolved.
   */
  askedBy(name: string): ReadonlySet<string>;
  close(): Promise<void>;
}

interface Question {
  readonly name: string;
  readonly type: number;
  readonly klass: number;
  /** Offset just past the question section. */
  readonly end: number;
}

/** Parses the single question of a query (labels only: queries carry no compression pointers). */
function parseQuestion(message: Buffer): Question | undefined {
  if (message.length < 12 || message.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  for (;;) {
    const length = message[offset];
    if (length === undefined || length > 63) return undefined;
    offset += 1;
    if (length === 0) break;
    if (offset + length > message.length) return undefined;
    labels.push(message.toString('latin1', offset, offset + length));
    offset += length;
  }
  if (offset + 4 > message.length) return undefined;
  return {
    name: labels.join('.').toLowerCase(),
    type: message.readUInt16BE(offset),
    klass: message.readUInt16BE(offset + 2),
    end: offset + 4,
  };
}

/** Header flags of a response: QR, the query's opcode, AA, the query's RD, RA, and `rcode`. */
function responseFlags(query: Buffer, rcode: number): number {
  const flags = query.readUInt16BE(2);
  return 0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | 0x0080 | rcode;
}

function answer(query: Buffer, question: Question | undefined, records: Map<string, string[]>): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.length >= 2 ? query.readUInt16BE(0) : 0, 0);
  if (question === undefined) {
    header.writeUInt16BE(query.length >= 4 ? responseFlags(query, RCODE_FORMERR) : 0x8000 | RCODE_FORMERR, 2);
    return header;
  }
  if (((query.readUInt16BE(2) >> 11) & 0xf) !== 0) {
    header.writeUInt16BE(responseFlags(query, RCODE_NOTIMP), 2);
    return header;
  }
  const addresses = records.get(question.name);
  const matches = question.klass === CLASS_IN && question.type === TYPE_A ? (addresses ?? []) : [];
  header.writeUInt16BE(responseFlags(query, addresses === undefined ? RCODE_NXDOMAIN : 0), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(matches.length, 6);
  const answers = matches.map((address) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the name in the question (offset 12)
    rr.writeUInt16BE(TYPE_A, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(DOCKER_TTL_SECONDS, 6);
    rr.writeUInt16BE(4, 10);
    address.split('.').forEach((octet, i) => rr.writeUInt8(Number(octet), 12 + i));
    return rr;
  });
  return Buffer.concat([header, query.subarray(12, question.end), ...answers]);
}

/** Starts the server on 127.0.0.1 (a kernel-chosen port) with the given A records. */
export async function startDnsServer(initial: Record<string, readonly string[]>): Promise<DnsServer> {
  const records = new Map<string, string[]>();
  const counts = new Map<string, number>();
  const sources = new Map<string, Set<string>>();
  const setAddresses = (name: string, addresses: readonly string[]) => {
    for (const address of addresses) {
      if (!/^(\d{1,3})(\.\d{1,3}){3}$/.test(address)) throw new Error(`not an IPv4 address: ${address}`);
    }
    records.set(name.toLowerCase(), [...addresses]);
  };
  for (const [name, addresses] of Object.entries(initial)) setAddresses(name, addresses);

  const socket = createSocket('udp4');
  socket.on('message', (message, remote) => {
    const question = parseQuestion(message);
    if (question) {
      counts.set(question.name, (counts.get(question.name) ?? 0) + 1);
      const asked = sources.get(question.name) ?? new Set<string>();
      asked.add(`${remote.address}:${remote.port}`);
      sources.set(question.name, asked);
    }
    socket.send(answer(message, question, records), remote.port, remote.address);
  });
  await new Promise<void>((done, fail) => {
    socket.once('error', fail);
    socket.bind(0, '127.0.0.1', () => done());
  });
  return {
    port: socket.address().port,
    setAddresses,
    queries: (name) => counts.get(name.toLowerCase()) ?? 0,
    askedBy: (name) => new Set(sources.get(name.toLowerCase())),
    close: () => new Promise((done) => socket.close(() => done())),
  };
}
