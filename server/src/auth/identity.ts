/**
 * People: users who sign in with e-mail and password, their sessions, and their memberships of
 * organizations. Sign-in, sign-out, sessions and password changes are the `better-auth` library's
 * (mounted at /auth; scrypt password hashes; sessions in the {@link SessionStore}, Redis when
 * configured, so a revocation reaches every replica at once); users and memberships are managed
 * by operators (`audit-admin users …`, `members …`) and admins, never by self sign-up unless
 * AUTH_SIGN_UP_ENABLED is set. A session resolves to exactly one organization: the user's only
 * membership, or the one named by the `x-organization-id` header.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import type { Database } from '../db/client';
import { authVerifications, memberships, organizations, userAccounts, userSessions, users } from '../db/schema';
import { AppError } from '../errors';
import type { Logger } from '../observability/logger';
import type { Principal } from './api-keys';
import { isRole, type Role } from './permissions';
import type { SessionStore } from './session-store';

/** How sign-in is configured (from AUTH_* variables). */
export interface IdentityOptions {
  /** Signs session cookies; the same on every replica, at least 32 characters. */
  secret: string;
  /** Public URL of the server (`https://audit.example.org`); unset = taken from each request. */
  baseURL: string | undefined;
  /** Browser origins allowed to call /auth with cookies (besides the server's own). */
  trustedOrigins: string[];
  /** `Secure` cookies (`__Secure-` prefix); only plain-http development turns it off. */
  secureCookies: boolean;
  signUpEnabled: boolean;
  sessionTtlSeconds: number;
  store: SessionStore;
  logger: Logger;
}

/** A user as listed (never a password hash). */
export interface UserInfo {
  id: string;
  email: string;
  name: string;
  createdAt: string;
  disabledAt: string | null;
}

/** A membership as listed. */
export interface MemberInfo {
  userId: string;
  email: string;
  name: string;
  role: Role;
  createdAt: string;
}

/** A signed-in session as resolved from a request's cookie. */
export interface SessionIdentity {
  userId: string;
  sessionId: string;
  email: string;
}

/** The header that picks the organization of a user who belongs to several. */
export const ORGANIZATION_HEADER = 'x-organization-id';

const PASSWORD_MIN = 12;
const PASSWORD_MAX = 128;

// The parts of the library's auth object the server uses (it is ESM-only and loaded at start-up).
interface SessionRecord {
  session: { id: string; userId: string; token: string };
  user: { id: string; email: string; name: string };
}
interface AuthInstance {
  handler: (request: Request) => Promise<Response>;
  api: { getSession(opts: { headers: Headers; query?: { disableCookieCache?: boolean; disableRefresh?: boolean } }): Promise<SessionRecord | null> };
  $context: Promise<{
    password: { hash(password: string): Promise<string> };
    internalAdapter: {
      createUser(user: Record<string, unknown>): Promise<{ id: string }>;
      linkAccount(account: Record<string, unknown>): Promise<unknown>;
      deleteUserSessions(userId: string): Promise<void>;
    };
  }>;
}

type Row = typeof users.$inferSelect;
const info = (r: Row): UserInfo => ({
  id: r.id,
  email: r.email,
  name: r.name,
  createdAt: r.createdAt.toISOString(),
  disabledAt: r.disabledAt ? r.disabledAt.toISOString() : null,
});

/** Checks an address the way sign-in does (lower-cased, bounded, one @). */
function normalizeEmail(email: string): string {
  const e = email.trim().toLowerCase();
  // The pattern needs a character on each side of the @: at least 3 in all.
  if (e.length > 254 || !/^[^\s@]+@[^\s@]+$/.test(e)) {
    throw new AppError('BAD_REQUEST', 'email must be an e-mail address', [{ path: 'email', message: 'invalid e-mail address' }]);
  }
  return e;
}

function checkPassword(password: string): void {
  if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
    throw new AppError('BAD_REQUEST', `password must have ${PASSWORD_MIN}–${PASSWORD_MAX} characters`, [
      { path: 'password', message: `${PASSWORD_MIN}–${PASSWORD_MAX} characters` },
    ]);
  }
}

/** The library, once loaded. */
interface Loaded {
  auth: AuthInstance;
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  headersOf: (h: IncomingHttpHeaders) => Headers;
}

const COOKIE_PREFIX = 'audit';

/**
 * Users, memberships and the sign-in library behind /auth. The library (ESM) is loaded on first
 * use, so a server nobody signs in to never pays for it.
 */
export class IdentityService {
  /** Name of the session cookie (with its `__Secure-` prefix when secure). */
  readonly cookieName: string;
  private loading: Promise<Loaded> | null = null;

  constructor(
    private readonly database: Database,
    private readonly o: IdentityOptions,
  ) {
    this.cookieName = `${o.secureCookies ? '__Secure-' : ''}${COOKIE_PREFIX}.session_token`;
  }

  private load(): Promise<Loaded> {
    this.loading ??= this.configure().catch((err: unknown) => {
      this.loading = null;
      throw err;
    });
    return this.loading;
  }

  /** Loads the library and configures it for this database and store. */
  private async configure(): Promise<Loaded> {
    const { database, o } = this;
    // One after the other: the modules share dependencies, and Jest's ESM loader fails on
    // concurrent imports of the same graph.
    const { betterAuth } = await import('better-auth');
    const { drizzleAdapter } = await import('better-auth/adapters/drizzle');
    const { toNodeHandler, fromNodeHeaders } = await import('better-auth/node');
    const { APIError, createAuthMiddleware } = await import('better-auth/api');
    let hashPassword: ((p: string) => Promise<string>) | null = null;
    const auth = betterAuth({
      appName: 'SMEDREC Audit',
      basePath: '/auth',
      ...(o.baseURL ? { baseURL: o.baseURL } : {}),
      secret: o.secret,
      trustedOrigins: o.trustedOrigins,
      telemetry: { enabled: false },
      database: drizzleAdapter(database.db, {
        provider: 'pg',
        schema: { user: users, account: userAccounts, session: userSessions, verification: authVerifications },
      }),
      secondaryStorage: o.store,
      user: { additionalFields: { disabledAt: { type: 'date', required: false, input: false } } },
      emailAndPassword: {
        enabled: true,
        disableSignUp: !o.signUpEnabled,
        minPasswordLength: PASSWORD_MIN,
        maxPasswordLength: PASSWORD_MAX,
        revokeSessionsOnPasswordReset: true,
      },
      session: {
        expiresIn: o.sessionTtlSeconds,
        updateAge: Math.min(o.sessionTtlSeconds, 3600),
        storeSessionInDatabase: false,
        cookieCache: { enabled: false },
      },
      // Limits per client address and per account are the server's (http/auth-routes.ts).
      rateLimit: { enabled: false },
      advanced: {
        cookiePrefix: COOKIE_PREFIX,
        useSecureCookies: o.secureCookies,
        defaultCookieAttributes: { httpOnly: true, sameSite: 'strict', secure: o.secureCookies, path: '/' },
        database: { generateId: () => randomUUID() },
      },
      logger: {
        // Into the server's log, message only (they name outcomes and origins, never secrets or
        // addresses); warnings and errors. At `info` the library does not also print every
        // refused request to the console.
        level: 'info',
        log: (level: string, message: string) => {
          if (level === 'error') o.logger.error({ component: 'auth' }, message);
          else if (level === 'warn') o.logger.warn({ component: 'auth' }, message);
        },
      },
      hooks: {
        // A disabled user's sign-in fails exactly like a wrong password (same status and body, and
        // a password hash for the same cost), so disabling reveals nothing.
        before: createAuthMiddleware(async (ctx) => {
          if (ctx.path !== '/sign-in/email') return;
          const body = ctx.body as { email?: unknown; password?: unknown } | undefined;
          if (typeof body?.email !== 'string' || typeof body.password !== 'string') return;
          const rows = await database.db.select({ disabledAt: users.disabledAt }).from(users).where(eq(users.email, body.email.trim().toLowerCase()));
          if (rows[0]?.disabledAt) {
            await hashPassword!(body.password);
            throw APIError.from('UNAUTHORIZED', { code: 'INVALID_EMAIL_OR_PASSWORD', message: 'Invalid email or password' });
          }
        }),
      },
    }) as unknown as AuthInstance;
    const ctx = await auth.$context;
    hashPassword = (p) => ctx.password.hash(p);
    return { auth, handler: toNodeHandler(auth), headersOf: (h) => fromNodeHeaders(h) };
  }

  /** Answers an /auth request (the library's handler). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { handler } = await this.load();
    await handler(req, res);
  }

  /** Whether a request carries the session cookie at all (cheap; no look-up). */
  hasSessionCookie(cookieHeader: string | undefined): boolean {
    return cookieHeader !== undefined && cookieHeader.includes(this.cookieName + '=');
  }

  /** The live session of a request's cookie, or null (expired, revoked, forged, disabled user). */
  async sessionOf(headers: IncomingHttpHeaders): Promise<SessionIdentity | null> {
    const { auth, headersOf } = await this.load();
    // No refresh: this answers a request, whose response cannot carry a renewed cookie, so an
    // extended session would outlive its cookie. A session lasts sessionTtlSeconds from sign-in.
    const found = await auth.api.getSession({ headers: headersOf(headers), query: { disableCookieCache: true, disableRefresh: true } });
    if (!found) return null;
    return { userId: found.user.id, sessionId: found.session.id, email: found.user.email };
  }

  /**
   * The principal of a signed-in user: the organization is the user's only membership, or the one
   * `requestedOrg` names (which must be one of the user's). A disabled user has none.
   */
  async principalOf(s: SessionIdentity, requestedOrg: string | undefined): Promise<Principal> {
    const rows = await this.database.db
      .select({ organizationId: memberships.organizationId, role: memberships.role })
      .from(memberships)
      .innerJoin(users, eq(users.id, memberships.userId))
      .where(and(eq(memberships.userId, s.userId), isNull(users.disabledAt)));
    let chosen = rows[0];
    if (requestedOrg !== undefined) chosen = rows.find((r) => r.organizationId === requestedOrg);
    else if (rows.length > 1) {
      throw new AppError('BAD_REQUEST', `this user belongs to ${rows.length} organizations: name one in the ${ORGANIZATION_HEADER} header`, [
        { path: ORGANIZATION_HEADER, message: 'required for a member of several organizations' },
      ]);
    }
    if (!chosen || !isRole(chosen.role)) throw new AppError('FORBIDDEN', requestedOrg ? `not a member of organization ${requestedOrg}` : 'not a member of any organization');
    return { organizationId: chosen.organizationId, role: chosen.role, keyId: `user:${s.userId}`, kind: 'session', userId: s.userId, sessionId: s.sessionId, subject: s.email };
  }

  /** Creates a user with a password (operators and admins; sign-up is off by default). */
  async createUser(input: { email: string; name: string; password: string }): Promise<UserInfo> {
    const email = normalizeEmail(input.email);
    checkPassword(input.password);
    const name = input.name.trim();
    if (name.length === 0 || name.length > 200) throw new AppError('BAD_REQUEST', 'name must have 1–200 characters', [{ path: 'name', message: '1–200 characters' }]);
    const existing = await this.database.db.select({ id: users.id }).from(users).where(eq(users.email, email));
    if (existing[0]) throw new AppError('CONFLICT', 'a user with this e-mail address exists');
    const ctx = await (await this.load()).auth.$context;
    const hash = await ctx.password.hash(input.password);
    const user = await ctx.internalAdapter.createUser({ email, name, emailVerified: false });
    await ctx.internalAdapter.linkAccount({ userId: user.id, providerId: 'credential', accountId: user.id, password: hash });
    return this.user(user.id);
  }

  /** One user by id or e-mail; 404 otherwise. */
  async findUser(idOrEmail: string): Promise<UserInfo> {
    const byEmail = idOrEmail.includes('@');
    const rows = await this.database.db
      .select()
      .from(users)
      .where(byEmail ? eq(users.email, idOrEmail.trim().toLowerCase()) : eq(users.id, idOrEmail));
    if (!rows[0]) throw new AppError('NOT_FOUND', 'no such user');
    return info(rows[0]);
  }

  private async user(id: string): Promise<UserInfo> {
    return this.findUser(id);
  }

  /** Every user, oldest first. */
  async listUsers(): Promise<UserInfo[]> {
    const rows = await this.database.db.select().from(users).orderBy(asc(users.createdAt), asc(users.id));
    return rows.map(info);
  }

  /** Disables a user: no more sign-ins, and every session ends at once (on every replica). */
  async disableUser(idOrEmail: string): Promise<UserInfo> {
    const u = await this.findUser(idOrEmail);
    await this.database.db.update(users).set({ disabledAt: sql`coalesce(${users.disabledAt}, now())` }).where(eq(users.id, u.id));
    await this.revokeUserSessions(u.id);
    return this.findUser(u.id);
  }

  /** Ends every session of a user (the library marks them revoked in the shared store). */
  async revokeUserSessions(userId: string): Promise<void> {
    const ctx = await (await this.load()).auth.$context;
    await ctx.internalAdapter.deleteUserSessions(userId);
  }

  /** Adds (or changes the role of) a member of `org`. */
  async addMember(org: string, idOrEmail: string, role: Role): Promise<MemberInfo> {
    const u = await this.findUser(idOrEmail);
    const exists = await this.database.db.select({ id: organizations.id }).from(organizations).where(eq(organizations.id, org));
    if (!exists[0]) throw new AppError('NOT_FOUND', `no organization ${org}`);
    await this.database.db
      .insert(memberships)
      .values({ organizationId: org, userId: u.id, role })
      .onConflictDoUpdate({ target: [memberships.organizationId, memberships.userId], set: { role } });
    const m = (await this.listMembers(org)).find((x) => x.userId === u.id);
    return m!;
  }

  /** The current role of a user in `org`, or null. */
  async roleOf(org: string, idOrEmail: string): Promise<Role | null> {
    const u = await this.findUser(idOrEmail);
    const rows = await this.database.db
      .select({ role: memberships.role })
      .from(memberships)
      .where(and(eq(memberships.organizationId, org), eq(memberships.userId, u.id)));
    return rows[0]?.role ?? null;
  }

  /** Removes a member of `org`; 404 when not a member. */
  async removeMember(org: string, idOrEmail: string): Promise<{ userId: string }> {
    const u = await this.findUser(idOrEmail);
    const rows = await this.database.db
      .delete(memberships)
      .where(and(eq(memberships.organizationId, org), eq(memberships.userId, u.id)))
      .returning({ userId: memberships.userId });
    if (rows.length === 0) throw new AppError('NOT_FOUND', 'no such member');
    return { userId: u.id };
  }

  /** Organizations a user (by e-mail address) belongs to; empty for an unknown address. */
  async organizationsOf(email: string): Promise<string[]> {
    const rows = await this.database.db
      .select({ organizationId: memberships.organizationId })
      .from(memberships)
      .innerJoin(users, eq(users.id, memberships.userId))
      .where(eq(users.email, email.trim().toLowerCase()));
    return rows.map((r) => r.organizationId);
  }

  /** Members of `org`, oldest first. */
  async listMembers(org: string): Promise<MemberInfo[]> {
    const rows = await this.database.db
      .select({ userId: users.id, email: users.email, name: users.name, role: memberships.role, createdAt: memberships.createdAt })
      .from(memberships)
      .innerJoin(users, eq(users.id, memberships.userId))
      .where(eq(memberships.organizationId, org))
      .orderBy(asc(memberships.createdAt), asc(users.id));
    return rows.map((r) => ({ ...r, createdAt: r.createdAt.toISOString() }));
  }
}
