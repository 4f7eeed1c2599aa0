import { boolean, index, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { organizations } from './organizations';

/**
 * People who sign in (migration 0011). The columns are the sign-in library's user model (ids are
 * UUIDs it generates as text); `disabledAt` is ours: a disabled user cannot sign in and loses every
 * session at once.
 */
export const users = pgTable(
  'users',
  {
    id: text().primaryKey(),
    name: text().notNull(),
    email: text().notNull(),
    emailVerified: boolean().notNull().default(false),
    image: text(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    disabledAt: timestamp({ withTimezone: true, mode: 'date' }),
  },
  (t) => [uniqueIndex('users_email_idx').on(t.email)],
);

/** Credentials of a user (the password hash, scrypt, lives here), as the sign-in library models them. */
export const userAccounts = pgTable(
  'user_accounts',
  {
    id: text().primaryKey(),
    accountId: text().notNull(),
    providerId: text().notNull(),
    userId: text().notNull().references(() => users.id, { onDelete: 'cascade' }),
    accessToken: text(),
    refreshToken: text(),
    idToken: text(),
    accessTokenExpiresAt: timestamp({ withTimezone: true, mode: 'date' }),
    refreshTokenExpiresAt: timestamp({ withTimezone: true, mode: 'date' }),
    scope: text(),
    password: text(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('user_accounts_user_idx').on(t.userId)],
);

/**
 * Sessions, when they are kept in the database. The server keeps them in Redis (or in process on
 * the embedded default) so a revocation reaches every replica at once; the table exists because
 * the library's schema has it and stays empty.
 */
export const userSessions = pgTable(
  'user_sessions',
  {
    id: text().primaryKey(),
    expiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
    token: text().notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    ipAddress: text(),
    userAgent: text(),
    userId: text().notNull().references(() => users.id, { onDelete: 'cascade' }),
  },
  (t) => [uniqueIndex('user_sessions_token_idx').on(t.token), index('user_sessions_user_idx').on(t.userId)],
);

/** One-time values of the sign-in library (verification tokens); unused while e-mail flows are off. */
export const authVerifications = pgTable(
  'auth_verifications',
  {
    id: text().primaryKey(),
    identifier: text().notNull(),
    value: text().notNull(),
    expiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('auth_verifications_identifier_idx').on(t.identifier)],
);

/** Who belongs to which organization, with which role (auth/permissions.ts). */
export const memberships = pgTable(
  'memberships',
  {
    organizationId: uuid().notNull().references(() => organizations.id),
    userId: text().notNull().references(() => users.id, { onDelete: 'cascade' }),
    role: text({ enum: ['owner', 'admin', 'auditor', 'compliance_officer', 'developer', 'member', 'producer'] }).notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.userId] }), index('memberships_user_idx').on(t.userId)],
);
