#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into an EMPTY database, then verify the ledger:
# every organization's whole log is re-verified (leaves, tree, every signed checkpoint) with the
# verifier keys given here, never the keys stored in the restored database (`admin verify-ledger`).
# A restore whose ledger does not verify exits 1.
#
#   scripts/restore.sh -i backups/audit-20260101T000000Z.dump.gz.gpg -d postgres://…/audit_restored --create \
#     --key 'smedrec.audit+1a2b3c4d+AU…'
#   scripts/restore.sh -i audit.dump.gz.gpg -p /run/secrets/backup-passphrase -d postgres://…
#   scripts/restore.sh -i audit.dump.gz.gpg -d postgres://… --dry-run    # print the commands only
#   scripts/restore.sh --to '2026-12-06 02:40:00+00' --pgdata /var/lib/postgresql/data --start -d …
#     (point-in-time restore from pgBackRest: scripts/pitr-restore.sh, docs/disaster-recovery.md)
set -euo pipefail

readonly SCRIPT_NAME="${0##*/}"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT

# A point-in-time restore (pgBackRest full backups + archived WAL) is its own script.
for arg in "$@"; do
  [[ "${arg}" != "--to" ]] || exec "$(dirname "${BASH_SOURCE[0]}")/pitr-restore.sh" "$@"
done

usage() {
  cat <<EOF
Usage: ${SCRIPT_NAME} -i FILE [options]

Decrypts (gpg), decompresses (gzip) and restores (pg_restore, one transaction) a backup into an
empty database, then runs the audit server's 'verify-ledger' against it, trusting only the keys
given with --key or by AUDIT_SIGNING_KEY / AUDIT_VERIFIER_KEY / AUDIT_TRUSTED_VERIFIER_KEYS
(never the signing_keys table of the restored database).

With --to TIMESTAMP it is a point-in-time restore from pgBackRest instead: see
'scripts/pitr-restore.sh --help'.

Options:
  -i, --input FILE            Backup file (*.dump.gz.gpg); FILE.sha256 is checked when present
  -d, --database URL          Target database (default: \$DATABASE_URL); must be empty
  -p, --passphrase-file FILE  Passphrase for a symmetric backup (public-key backups need the
                              private key in the gpg keyring instead)
      --create                Create the target database first (connects to 'postgres' on the
                              same server)
      --no-privileges         Skip the backup's GRANTs (for a server without the audit_runtime /
                              migration roles; grant them yourself afterwards)
  -k, --key VERIFIER_KEY      Trust this checkpoint verifier key (name+hexid+base64); repeat it
                              for every key the log was ever signed with
      --no-verify             Skip the ledger verification (not recommended)
      --dry-run               Print the commands instead of running them
  -h, --help                  Show this help

Environment:
  DATABASE_URL   used when -d is not given
  GNUPGHOME      gpg home holding the private key for public-key backups
  AUDIT_VERIFIER_KEY, AUDIT_TRUSTED_VERIFIER_KEYS (and their *_FILE forms)
                 verifier keys trusted besides --key
  AUDIT_ADMIN    admin CLI command (default: node server/dist/cli/admin.js, or the TypeScript
                 source through tsx when the server is not built)
EOF
}

INPUT=""
DATABASE="${DATABASE_URL:-}"
PASSPHRASE_FILE=""
KEYS=()
CREATE=false
PRIVILEGES=true
VERIFY=true
DRY_RUN=false

while [[ $# -gt 0 ]]; do
  case "$1" in
    -i | --input | -d | --database | -p | --passphrase-file | -k | --key)
      [[ $# -ge 2 ]] || usage_error "$1 needs a value"
      case "$1" in
        -i | --input) INPUT="$2" ;;
        -d | --database) DATABASE="$2" ;;
        -p | --passphrase-file) PASSPHRASE_FILE="$2" ;;
        -k | --key) KEYS+=("$2") ;;
      esac
      shift
      ;;
    --create) CREATE=true ;;
    --no-privileges) PRIVILEGES=false ;;
    --no-verify) VERIFY=false ;;
    --dry-run) DRY_RUN=true ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done

[[ -n "${INPUT}" ]] || usage_error "no backup file: pass -i FILE"
[[ -n "${DATABASE}" ]] || usage_error "no target database: pass -d URL or set DATABASE_URL"
[[ "${DATABASE}" =~ ^postgres(ql)?:// ]] || usage_error "the database must be a postgres:// or postgresql:// URL"

split_password "${DATABASE}"
target="${DATABASE_NO_PASSWORD}"
# postgres://user@host:port/NAME?params → NAME, and the same URL on the 'postgres' database.
target_base="${target%%\?*}"
target_query="${target#"${target_base}"}"
target_name="${target_base##*/}"
[[ "${target_name}" =~ ^[A-Za-z_][A-Za-z0-9_]{0,62}$ ]] ||
  usage_error "target database name '${target_name}' must be a plain identifier (letters, digits, _)"
maintenance="${target_base%/*}/postgres${target_query}"

# Everything outside the system schemas; an empty database has none of it.
readonly EMPTY_CHECK_SQL="SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"

gpg_cmd=(gpg --batch --no-tty --decrypt)
[[ -z "${PASSPHRASE_FILE}" ]] || gpg_cmd+=(--pinentry-mode loopback --passphrase-file "${PASSPHRASE_FILE}")
gpg_cmd+=("${INPUT}")
gunzip_cmd=(gzip -dc)
# One transaction: a failed restore leaves the target empty, never half-restored.
# --no-owner: objects belong to the role that restores, so connect as the migration role (the
# owner of every table, docs/verification.md "Database roles"). GRANTs to the runtime role are
# restored unless --no-privileges; they need that role to exist on the target server.
restore_cmd=(pg_restore --dbname="${target}" --no-owner --exit-on-error --single-transaction)
[[ "${PRIVILEGES}" == true ]] || restore_cmd+=(--no-privileges)
create_cmd=(psql --dbname="${maintenance}" --no-psqlrc --quiet -v ON_ERROR_STOP=1 --command "CREATE DATABASE \"${target_name}\"")
empty_cmd=(psql --dbname="${target}" --no-psqlrc --tuples-only --no-align -v ON_ERROR_STOP=1 --command "${EMPTY_CHECK_SQL}")
if [[ -n "${AUDIT_ADMIN:-}" ]]; then
  read -r -a admin_cmd <<<"${AUDIT_ADMIN}"
elif [[ -f "${REPO_ROOT}/server/dist/cli/admin.js" ]]; then
  admin_cmd=(node "${REPO_ROOT}/server/dist/cli/admin.js")
else
  admin_cmd=(node --import tsx "${REPO_ROOT}/server/src/cli/admin.ts")
fi
verify_cmd=(env "DATABASE_URL=${target}" "${admin_cmd[@]}" verify-ledger)
for key in "${KEYS[@]}"; do verify_cmd+=(--key "${key}"); done

if [[ "${DRY_RUN}" == true ]]; then
  [[ ! -f "${INPUT}.sha256" ]] || printf '(cd %s && sha256sum --check --quiet %s)\n' \
    "$(format_command "$(dirname "${INPUT}")")" "$(format_command "$(basename "${INPUT}").sha256")"
  [[ "${CREATE}" != true ]] || printf '%s\n' "$(format_command "${create_cmd[@]}")"
  printf '%s\n' "$(format_command "${empty_cmd[@]}")"
  printf '%s | %s | %s\n' "$(format_command "${gpg_cmd[@]}")" "$(format_command "${gunzip_cmd[@]}")" "$(format_command "${restore_cmd[@]}")"
  [[ "${VERIFY}" != true ]] || printf '%s\n' "$(format_command "${verify_cmd[@]}")"
  exit 0
fi

require_tool gpg "GnuPG (apt-get install gnupg)"
require_tool gzip "gzip"
require_tool pg_restore "the PostgreSQL client (apt-get install postgresql-client)"
require_tool psql "the PostgreSQL client (apt-get install postgresql-client)"
[[ -r "${INPUT}" ]] || die "backup file '${INPUT}' is not readable"
if [[ -n "${PASSPHRASE_FILE}" ]]; then
  [[ -r "${PASSPHRASE_FILE}" ]] || die "passphrase file '${PASSPHRASE_FILE}' is not readable"
fi

if [[ -f "${INPUT}.sha256" ]]; then
  (cd "$(dirname "${INPUT}")" && sha256sum --check --quiet "$(basename "${INPUT}").sha256") ||
    die "checksum mismatch for '${INPUT}': the backup is damaged or was altered"
fi

if [[ "${CREATE}" == true ]]; then
  "${create_cmd[@]}" || die "could not create database '${target_name}'"
fi

objects="$("${empty_cmd[@]}")" || die "cannot connect to the target database ${target}"
[[ "${objects//[[:space:]]/}" == "0" ]] ||
  die "target database '${target_name}' is not empty (${objects//[[:space:]]/} relations): restore only into an empty database"

printf '%s: restoring %s into %s\n' "${SCRIPT_NAME}" "${INPUT}" "${target}" >&2
"${gpg_cmd[@]}" | "${gunzip_cmd[@]}" | "${restore_cmd[@]}" || die "restore failed; the target database was left unchanged (single transaction)"

if [[ "${VERIFY}" == true ]]; then
  printf '%s: verifying every organization ledger against its latest signed checkpoint\n' "${SCRIPT_NAME}" >&2
  if ! (cd "${REPO_ROOT}" && "${verify_cmd[@]}"); then
    die "restored, but ledger verification FAILED: do not put this database into service"
  fi
  printf '%s: ledger verified\n' "${SCRIPT_NAME}" >&2
fi
