-- 0011: people. Users, their credentials (scrypt password hashes), sessions and one-time values in
-- the shapes of the sign-in library (server/src/auth/identity.ts), and memberships: which user
-- belongs to which organization with which role (server/src/auth/permissions.ts). Sessions are kept
-- in Redis (in process on the embedded default) so a revocation reaches every replica at once;
-- user_sessions stays empty but completes the library's schema. Hand-written like the others.
CREATE TABLE users (
  id text PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL,
  email_verified boolean NOT NULL DEFAULT false,
  image text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);
CREATE UNIQUE INDEX users_email_idx ON users (email);

CREATE TABLE user_accounts (
  id text PRIMARY KEY,
  account_id text NOT NULL,
  provider_id text NOT NULL,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  access_token text,
  refresh_token text,
  id_token text,
  access_token_expires_at timestamptz,
  refresh_token_expires_at timestamptz,
  scope text,
  password text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_accounts_user_idx ON user_accounts (user_id);

CREATE TABLE user_sessions (
  id text PRIMARY KEY,
  expires_at timestamptz NOT NULL,
  token text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  ip_address text,
  user_agent text,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX user_sessions_token_idx ON user_sessions (token);
CREATE INDEX user_sessions_user_idx ON user_sessions (user_id);

CREATE TABLE auth_verifications (
  id text PRIMARY KEY,
  identifier text NOT NULL,
  value text NOT NULL,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_verifications_identifier_idx ON auth_verifications (identifier);

CREATE TABLE memberships (
  organization_id uuid NOT NULL REFERENCES organizations (id),
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'auditor', 'compliance_officer', 'developer', 'member', 'producer')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

-- The runtime role reads and writes people; nothing here is append-only (users are disabled, never
-- deleted by the server; memberships are removed).
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_runtime') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON users, user_accounts, user_sessions, auth_verifications, memberships TO audit_runtime;
  END IF;
END $$;
