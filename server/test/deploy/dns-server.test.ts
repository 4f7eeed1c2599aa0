/**
 * The test DNS server (support/dns.ts) that stands in for Docker's embedded DNS, checked with a
 * real resolver: Node's c-ares `Resolver`, which parses the wire format independently.
 */
import { Resolver } from 'node:dns/promises';
import { createSocket } from 'node:dgram';
import { startDnsServer } from './support/dns';
import type { DnsServer } from './support/dns';

describe('test DNS server', () => {
  let dns: DnsServer;
  let resolver: Resolver;

  beforeAll(async () => {
    dns = await startDnsServer({ 'audit-server': ['127.0.0.2', '127.0.0.3'] });
    resolver = new Resolver({ timeout: 2_000, tries: 1 });
    resolver.setServers([`127.0.0.1:${dns.port}`]);
  });

  afterAll(() => dns.close());

  it("answers A queries with every address and Docker's 600 s TTL, counting the queries", async () => {
    const before = dns.queries('audit-server');
    const records = await resolver.resolve4('audit-server', { ttl: true });
    expect(records).toEqual([
      { address: '127.0.0.2', ttl: 600 },
      { address: '127.0.0.3', ttl: 600 },
    ]);
    expect(dns.queries('AUDIT-SERVER')).toBe(before + 1);
    // c-ares asked from one socket on 127.0.0.1.
    expect([...dns.askedBy('audit-server')]).toEqual([expect.stringMatching(/^127\.0\.0\.1:\d+$/)]);
  });

  it('answers with the new addresses once they change, case-insensitively', async () => {
    dns.setAddresses('Audit-Server', ['127.0.0.4']);
    expect(await resolver.resolve4('audit-server')).toEqual(['127.0.0.4']);
    dns.setAddresses('audit-server', ['127.0.0.2', '127.0.0.3']);
  });

  it('answers NXDOMAIN for a name it does not serve and no record for AAAA', async () => {
    await expect(resolver.resolve4('postgres')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver.resolve6('audit-server')).rejects.toMatchObject({ code: 'ENODATA' });
  });

  it('rejects an address that is not IPv4', () => {
    expect(() => dns.setAddresses('audit-server', ['::1'])).toThrow(/not an IPv4 address/);
  });

  it('answers a malformed query with FORMERR instead of crashing', async () => {
    const socket = createSocket('udp4');
    try {
      const reply = await new Promise<Buffer>((done, fail) => {
        socket.once('message', done);
        socket.once('error', fail);
        socket.send(
          Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x7f]),
          dns.port,
          '127.0.0.1',
        );
      });
      expect(reply.readUInt16BE(0)).toBe(0x1234);
      expect(reply.readUInt16BE(2) & 0x800f).toBe(0x8001);
    } finally {
      socket.close();
    }
    expect(await resolver.resolve4('audit-server')).toHaveLength(2);
  });
});
