/**
 * compose/nginx.conf under the real nginx binary: `nginx -t` accepts it (with a certificate the
 * test generates), and the template used by the production simulation leaves every directive
 * that matters untouched.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { REPO_ROOT, describeResult, freePort, makeTempDir, requireBinary, run } from './support/tools';
import { generateCertificate, nginxConfigTest, templateNginxConf } from './support/services';
import type { NginxTemplateOptions } from './support/services';

describe('compose/nginx.conf', () => {
  const temp = makeTempDir('nginx-t');
  let options: NginxTemplateOptions;

  beforeAll(async () => {
    requireBinary('nginx', 'nginx');
    const certDir = join(temp.dir, 'certs');
    run('mkdir', ['-p', certDir]);
    generateCertificate(certDir);
    options = {
      prefixDir: join(temp.dir, 'prefix'),
      certDir,
      httpPort: await freePort(),
      httpsPort: await freePort(),
      resolver: '127.0.0.1:53',
      upstreamPort: await freePort(),
    };
  });

  afterAll(() => temp.remove());

  it('passes `nginx -t` with a generated certificate', () => {
    const result = nginxConfigTest(options);
    expect({ status: result.status, detail: describeResult('nginx -t', result) }).toEqual(
      expect.objectContaining({ status: 0 }),
    );
    expect(result.stderr).toContain('syntax is ok');
    expect(result.stderr).toContain('test is successful');
  });

  it('is rewritten only in ports, the resolver address, certificate paths and the temp prefix', () => {
    const original = readFileSync(join(REPO_ROOT, 'compose', 'nginx.conf'), 'utf8');
    const templated = templateNginxConf(options);
    const keep = (text: string) =>
      text
        .split('\n')
        .filter(
          (line) =>
            !/listen |resolver \S+ valid=|set \$audit_server |\/etc\/nginx\/certs|\/tmp\/nginx|audit-deploy-/.test(
              line,
            ),
        )
        .join('\n');
    expect(keep(templated)).toBe(keep(original));
    expect(templated).toContain('resolver 127.0.0.1:53 valid=10s ipv6=off;');
    expect(
      templated.match(new RegExp(`set \\$audit_server audit-server:${options.upstreamPort};`, 'g')),
    ).toHaveLength(2);
  });

  it("finds the replicas through Docker's DNS at request time, never through a static upstream", () => {
    const text = readFileSync(join(REPO_ROOT, 'compose', 'nginx.conf'), 'utf8');
    // Docker's embedded DNS, re-asked at least every 10 s: `--scale` adds replicas without a reload.
    expect(text).toMatch(/^\s*resolver 127\.0\.0\.11 valid=10s ipv6=off;$/m);
    // An upstream block naming the service would be resolved once, at start-up.
    expect(text).not.toMatch(/^\s*upstream\s/m);
    const passes = [...text.matchAll(/^\s*proxy_pass\s+(\S+);$/gm)].map((m) => m[1]);
    expect(passes.length).toBeGreaterThan(0);
    expect(new Set(passes)).toEqual(new Set(['http://$audit_server']));
  });

  it('keeps every writable path directly under /tmp so the container can run read-only', () => {
    // nginx creates a temp directory at start-up but not its missing parents, and the
    // container's /tmp is an empty tmpfs: each path must be a direct child of /tmp.
    const text = readFileSync(join(REPO_ROOT, 'compose', 'nginx.conf'), 'utf8');
    const paths = [...text.matchAll(/^\s*(pid|\w+_temp_path)\s+(\S+);/gm)].map((m) => m[2]);
    expect(paths).toHaveLength(6);
    for (const path of paths) expect(path).toMatch(/^\/tmp\/[^/]+$/);
  });

  it('declares the rate-limit zones, 429 status, HSTS, the HTTP→HTTPS redirect and retries', () => {
    const text = readFileSync(join(REPO_ROOT, 'compose', 'nginx.conf'), 'utf8');
    expect(text).toMatch(/limit_req_zone \$binary_remote_addr zone=api:\d+m rate=\d+r\/s;/);
    expect(text).toMatch(/limit_req_status 429;/);
    expect(text).toMatch(/add_header Strict-Transport-Security "max-age=\d+; includeSubDomains" always;/);
    expect(text).toMatch(/return 301 https:\/\/\$host\$request_uri;/);
    // A failed replica is skipped; a POST that reached one is never re-sent (no non_idempotent).
    expect(text).toMatch(/^\s*proxy_next_upstream error timeout http_502 http_503 http_504;$/m);
  });
});
