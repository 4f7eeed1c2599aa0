#!/bin/sh
# Creates the pgvector extension and the two database roles of the audit server (docs/verification.md,
# "Database roles"), with the same SQL as PgVectorDb's init script in manifests/ (a test keeps
# them equal): audit_migrator owns the database and schema and runs the migrations (only the
# one-shot audit-migrate service connects as it); audit_runtime is the role of the api and worker
# services, whose table rights the server's own migrations grant, table by table.
#
# compose/docker-compose.prod.yml mounts this file into /docker-entrypoint-initdb.d/: the postgres
# image runs it once, when it initializes an empty data directory, as the postgres user against
# a temporary server that listens on the Unix socket only. The role passwords come from the
# Docker secret files named by AUDIT_MIGRATOR_PASSWORD_FILE and AUDIT_RUNTIME_PASSWORD_FILE.
set -eu

die() {
  printf '10-audit-roles.sh: error: %s\n' "$1" >&2
  exit 1
}

# Prints the first line of the secret file $1 (named by the variable $2, for messages).
read_secret() {
  [ -n "$1" ] || die "$2 is not set"
  [ -r "$1" ] || die "cannot read $1 ($2)"
  value=""
  IFS= read -r value <"$1" || true
  [ -n "${value}" ] || die "$1 ($2) is empty"
  printf '%s' "${value}"
}

AUDIT_MIGRATOR_PASSWORD="$(read_secret "${AUDIT_MIGRATOR_PASSWORD_FILE:-}" AUDIT_MIGRATOR_PASSWORD_FILE)"
AUDIT_APP_PASSWORD="$(read_secret "${AUDIT_RUNTIME_PASSWORD_FILE:-}" AUDIT_RUNTIME_PASSWORD_FILE)"
export AUDIT_MIGRATOR_PASSWORD AUDIT_APP_PASSWORD

# psql reads the passwords from its environment (\getenv), never from its command line.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v migrator=audit_migrator -v app=audit_runtime <<'SQL'
\getenv migrator_password AUDIT_MIGRATOR_PASSWORD
\getenv app_password AUDIT_APP_PASSWORD
\getenv db POSTGRES_DB
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE ROLE :"migrator" LOGIN PASSWORD :'migrator_password';
CREATE ROLE :"app" LOGIN PASSWORD :'app_password';
-- Only the two roles (and the superuser) may connect; the migrator owns database and schema.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
ALTER DATABASE :"db" OWNER TO :"migrator";
GRANT CONNECT ON DATABASE :"db" TO :"app";
ALTER SCHEMA public OWNER TO :"migrator";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";
-- No default privileges: the runtime role gets exactly the grants the server's migrations name
-- (SELECT/INSERT, UPDATE only where a trigger narrows it), never rights on tables by accident.
ALTER ROLE :"app" SET statement_timeout = '30s';
SQL
