#!/usr/bin/env bash
# Point-in-time restore from a pgBackRest repository (full backups + archived WAL), then the
# ledger verification: the cluster is restored to the state of TIMESTAMP (every transaction
# committed at or before it, none after), promoted, and every organization's log is re-verified
# with the verifier keys given here (`admin verify-ledger`). Run it as the owner of the data
# directory (the postgres user) with PostgreSQL stopped. scripts/restore.sh --to calls it.
#
#   scripts/pitr-restore.sh --to '2026-12-06 02:40:00+00' --pgdata /var/lib/postgresql/data \
#     --start -d postgres://postgres@127.0.0.1:5432/audit --key 'smedrec.audit+1a2b3c4d+AU…'
#   scripts/pitr-restore.sh --to '2026-12-06 02:40:00+00' --pgdata /data --dry-run
set -euo pipefail

readonly SCRIPT_NAME="${0##*/}"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT

usage() {
  cat <<EOF
Usage: ${SCRIPT_NAME} --to TIMESTAMP --pgdata DIR [options]

Restores a PostgreSQL cluster from its pgBackRest repository to TIMESTAMP (pgbackrest restore
--type=time --target-action=promote, in place with --delta), optionally starts it, waits until
recovery has ended, and runs the audit server's 'verify-ledger' against it, trusting only the
keys given with --key or by AUDIT_SIGNING_KEY / AUDIT_VERIFIER_KEY / AUDIT_TRUSTED_VERIFIER_KEYS.
PostgreSQL must be stopped. The repository, its encryption passphrase and the archive settings
come from the pgBackRest configuration file.

Options:
      --to TIMESTAMP          Recovery target, e.g. '2026-12-06 02:40:00+00' (an explicit UTC offset
                              is required: the server's time zone must not decide)
      --pgdata DIR            Data directory to restore into (its content is replaced)
      --stanza NAME           pgBackRest stanza (default: audit)
      --config FILE           pgBackRest configuration (default: pgBackRest's own default)
      --start                 Start PostgreSQL with pg_ctl after the restore (otherwise start it
                              yourself; the script waits for it)
      --pg-bin DIR            Directory of pg_ctl (default: PATH)
      --log FILE              pg_ctl log file with --start (default: DIR/../pitr-restore.log)
      --timeout SECONDS       How long to wait for the end of recovery (default: 3600)
  -d, --database URL          Database to verify once recovered (default: \$DATABASE_URL)
  -k, --key VERIFIER_KEY      Trust this checkpoint verifier key; repeat it for every key the log
                              was ever signed with
      --no-verify             Skip the ledger verification (not recommended)
      --dry-run               Print the commands instead of running them
  -h, --help                  Show this help

Environment:
  DATABASE_URL   used when -d is not given
  AUDIT_ADMIN    admin CLI command (default: node server/dist/cli/admin.js, or the TypeScript
                 source through tsx when the server is not built)
EOF
}

TARGET=""
PGDATA_DIR=""
STANZA="audit"
CONFIG=""
START=false
PG_BIN=""
LOG_FILE=""
TIMEOUT=3600
DATABASE="${DATABASE_URL:-}"
KEYS=()
VERIFY=true
DRY_RUN=false

while [[ $# -gt 0 ]]; do
  case "$1" in
    --to | --pgdata | --stanza | --config | --pg-bin | --log | --timeout | -d | --database | -k | --key)
      [[ $# -ge 2 ]] || usage_error "$1 needs a value"
      case "$1" in
        --to) TARGET="$2" ;;
        --pgdata) PGDATA_DIR="$2" ;;
        --stanza) STANZA="$2" ;;
        --config) CONFIG="$2" ;;
        --pg-bin) PG_BIN="$2" ;;
        --log) LOG_FILE="$2" ;;
        --timeout) TIMEOUT="$2" ;;
        -d | --database) DATABASE="$2" ;;
        -k | --key) KEYS+=("$2") ;;
      esac
      shift
      ;;
    --start) START=true ;;
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

[[ -n "${TARGET}" ]] || usage_error "no recovery target: pass --to TIMESTAMP"
# YYYY-MM-DD HH:MM:SS[.ffffff] followed by an explicit offset (+00, +0100, +01:00, Z is not PostgreSQL's).
[[ "${TARGET}" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}[\ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?[+-][0-9]{2}(:?[0-9]{2})?$ ]] ||
  usage_error "--to '${TARGET}' must look like '2026-12-06 02:40:00+00' (date, time and an explicit UTC offset)"
[[ -n "${PGDATA_DIR}" ]] || usage_error "no data directory: pass --pgdata DIR"
[[ "${STANZA}" =~ ^[A-Za-z0-9_-]+$ ]] || usage_error "--stanza '${STANZA}' must be letters, digits, - and _"
[[ "${TIMEOUT}" =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout '${TIMEOUT}' must be a positive number of seconds"
if [[ "${VERIFY}" == true ]]; then
  [[ -n "${DATABASE}" ]] || usage_error "no database to verify: pass -d URL or set DATABASE_URL (or --no-verify)"
  [[ "${DATABASE}" =~ ^postgres(ql)?:// ]] || usage_error "the database must be a postgres:// or postgresql:// URL"
fi

pg_ctl="pg_ctl"
[[ -z "${PG_BIN}" ]] || pg_ctl="${PG_BIN%/}/pg_ctl"
[[ -n "${LOG_FILE}" ]] || LOG_FILE="$(dirname "${PGDATA_DIR%/}")/pitr-restore.log"

pgbackrest_cmd=(pgbackrest)
[[ -z "${CONFIG}" ]] || pgbackrest_cmd+=("--config=${CONFIG}")
pgbackrest_cmd+=("--stanza=${STANZA}")
restore_cmd=("${pgbackrest_cmd[@]}" "--pg1-path=${PGDATA_DIR}" --delta --type=time "--target=${TARGET}" --target-action=promote restore)
status_cmd=("${pg_ctl}" status -D "${PGDATA_DIR}")
start_cmd=("${pg_ctl}" start -D "${PGDATA_DIR}" -w -t "${TIMEOUT}" -l "${LOG_FILE}")

target_url=""
if [[ -n "${DATABASE}" ]]; then
  split_password "${DATABASE}"
  target_url="${DATABASE_NO_PASSWORD}"
fi
recovery_cmd=(psql --dbname="${target_url}" --no-psqlrc --tuples-only --no-align --command "SELECT pg_is_in_recovery()")
if [[ -n "${AUDIT_ADMIN:-}" ]]; then
  read -r -a admin_cmd <<<"${AUDIT_ADMIN}"
elif [[ -f "${REPO_ROOT}/server/dist/cli/admin.js" ]]; then
  admin_cmd=(node "${REPO_ROOT}/server/dist/cli/admin.js")
else
  admin_cmd=(node --import tsx "${REPO_ROOT}/server/src/cli/admin.ts")
fi
verify_cmd=(env "DATABASE_URL=${target_url}" "${admin_cmd[@]}" verify-ledger)
for key in "${KEYS[@]}"; do verify_cmd+=(--key "${key}"); done

if [[ "${DRY_RUN}" == true ]]; then
  printf '%s\n' "$(format_command "${status_cmd[@]}")"
  printf '%s\n' "$(format_command "${restore_cmd[@]}")"
  [[ "${START}" != true ]] || printf '%s\n' "$(format_command "${start_cmd[@]}")"
  if [[ "${VERIFY}" == true ]]; then
    printf '%s\n' "$(format_command "${recovery_cmd[@]}")"
    printf '%s\n' "$(format_command "${verify_cmd[@]}")"
  fi
  exit 0
fi

require_tool pgbackrest "pgBackRest (apt-get install pgbackrest)"
[[ "${START}" != true ]] || command -v "${pg_ctl}" >/dev/null 2>&1 || die "'${pg_ctl}' not found: pass --pg-bin DIR" 127
[[ "${VERIFY}" != true ]] || require_tool psql "the PostgreSQL client (apt-get install postgresql-client)"
[[ -d "${PGDATA_DIR}" ]] || die "data directory '${PGDATA_DIR}' does not exist"

# pg_ctl status exits 3 when no server runs on the directory; refuse to restore under a live server.
if command -v "${pg_ctl}" >/dev/null 2>&1; then
  set +e
  "${status_cmd[@]}" >/dev/null 2>&1
  status=$?
  set -e
  [[ "${status}" -ne 0 ]] || die "PostgreSQL is running on '${PGDATA_DIR}': stop it before a restore"
fi

printf '%s: restoring stanza %s into %s to %s\n' "${SCRIPT_NAME}" "${STANZA}" "${PGDATA_DIR}" "${TARGET}" >&2
"${restore_cmd[@]}" || die "pgbackrest restore failed"

if [[ "${START}" == true ]]; then
  "${start_cmd[@]}" >/dev/null || die "PostgreSQL did not start; see ${LOG_FILE}"
fi

if [[ "${VERIFY}" == true ]]; then
  printf '%s: waiting for the end of recovery\n' "${SCRIPT_NAME}" >&2
  recovered=false
  for ((i = 0; i < TIMEOUT; i++)); do
    if [[ "$("${recovery_cmd[@]}" 2>/dev/null || true)" == "f" ]]; then
      recovered=true
      break
    fi
    sleep 1
  done
  [[ "${recovered}" == true ]] || die "recovery did not end within ${TIMEOUT} s (is the WAL up to the target archived?)"
  printf '%s: verifying every organization ledger against its latest signed checkpoint\n' "${SCRIPT_NAME}" >&2
  if ! (cd "${REPO_ROOT}" && "${verify_cmd[@]}"); then
    die "restored to ${TARGET}, but ledger verification FAILED: do not put this database into service"
  fi
  printf '%s: restored to %s; ledger verified\n' "${SCRIPT_NAME}" "${TARGET}" >&2
fi
