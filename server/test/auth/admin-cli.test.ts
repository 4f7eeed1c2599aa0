/**
 * `audit-admin users …` and `members …` against the server's database and Redis, from another
 * process: a user created and made a member by the CLI signs in on the running server, and
 * `users disable` in the CLI process ends that session on the server at once (the revocation
 * travels through Redis). The password is read from stdin, never from the command line.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Client } from 'pg';
import { createTestDatabase } from '../helpers/backends';
import { signIn, TEST_AUTH_ENV } from '../helpers/people';
import { startTestServer, type TestServer } from '../helpers/server';

const ROOT = path.resolve(__dirname, '../../..');
const both = Boolean(process.env.TEST_DATABASE_URL && process.env.TEST_REDIS_URL);

(both ? describe : describe.skip)('audit-admin users and members', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('postgres', TEST_AUTH_ENV);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  /** Runs the CLI with the server's database and Redis; resolves with its exit code and output. */
  function cli(args: string[], stdin = '', env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/cli/admin.ts', ...args], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', DATABASE_URL: srv.env.DATABASE_URL!, REDIS_URL: srv.env.REDIS_URL!, ...TEST_AUTH_ENV, ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(stdin);
    });
  }

  it('creates a user (password from stdin), makes them a member, and disabling ends their session on the server', async () => {
    const created = await cli(['users', 'create', '--email', 'Lee@Example.org', '--name', 'Lee'], 'lee password 12345\n');
    expect(created).toMatchObject({ code: 0 });
    expect(JSON.parse(created.stdout)).toMatchObject({ email: 'lee@example.org', name: 'Lee', disabledAt: null });
    expect(created.stdout).not.toContain('lee password');

    const added = await cli(['members', 'add', '--email', 'lee@example.org', '--role', 'compliance_officer', '--org', srv.organizationId]);
    expect(added).toMatchObject({ code: 0 });
    expect(JSON.parse(added.stdout)).toMatchObject({ email: 'lee@example.org', role: 'compliance_officer' });
    expect(await srv.runtime.services.identity!.listMembers(srv.organizationId)).toEqual([expect.objectContaining({ email: 'lee@example.org', role: 'compliance_officer' })]);

    const cookie = await signIn(srv.url, 'lee@example.org', 'lee password 12345');
    const me = () => fetch(`${srv.url}/trpc/account.me`, { headers: { cookie } });
    const before = await me();
    expect(before.status).toBe(200);
    expect(((await before.json()) as { result: { data: { role: string } } }).result.data.role).toBe('compliance_officer');

    const disabled = await cli(['users', 'disable', '--email', 'lee@example.org']);
    expect(disabled).toMatchObject({ code: 0 });
    expect(JSON.parse(disabled.stdout).disabledAt).not.toBeNull();
    expect((await me()).status).toBe(401);
    expect((await fetch(`${srv.url}/auth/sign-in/email`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'lee@example.org', password: 'lee password 12345' }) })).status).toBe(401);
  }, 600_000);

  it('refuses an unknown role and a short password with a usage error', async () => {
    const badRole = await cli(['members', 'add', '--email', 'x@example.org', '--role', 'superuser']);
    expect(badRole.code).toBe(2);
    expect(badRole.stderr).toContain('--role must be one of');
    const short = await cli(['users', 'create', '--email', 'y@example.org', '--name', 'Y'], 'short\n');
    expect(short.code).toBe(1);
    expect(short.stderr).toContain('password must have');
  }, 600_000);

  it('does not migrate where it does not own the schema: with DATABASE_MIGRATE_ON_START=false an out-of-date database is refused, untouched', async () => {
    const fresh = await createTestDatabase();
    try {
      const result = await cli(['users', 'list'], '', { DATABASE_URL: fresh.url, DATABASE_MIGRATE_ON_START: 'false' });
      expect(result).toMatchObject({ code: 1, stderr: expect.stringContaining('schema is not current') });
      const client = new Client({ connectionString: fresh.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations')::text AS t`);
        expect(rows[0]!.t).toBeNull();
      } finally {
        await client.end();
      }
    } finally {
      await fresh.drop();
    }
  }, 600_000);
});
