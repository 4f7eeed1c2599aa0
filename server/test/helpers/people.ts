/** Signing people in, for tests of sessions, roles and the audit trail of reads. */

/** Sign-in settings every test server with people uses (a fixed secret, shared by replicas). */
export const TEST_AUTH_ENV = { AUTH_SECRET: 'test-auth-secret-0123456789abcdefghijklmnopqrstuvwxyz' } as const;

/** A `cookie` header value holding a session. */
export type Cookie = string;

/** Signs in at `url` and returns the session cookie (`name=value`); throws unless 200. */
export async function signIn(url: string, email: string, password: string, headers: Record<string, string> = {}): Promise<Cookie> {
  const res = await fetch(`${url}/auth/sign-in/email`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ email, password }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`sign-in of ${email} answered ${res.status}: ${text}`);
  const cookie = res.headers.getSetCookie().find((c) => /^(__Secure-)?audit\.session_token=/.test(c));
  if (!cookie) throw new Error('sign-in set no session cookie');
  return cookie.split(';')[0]!;
}
