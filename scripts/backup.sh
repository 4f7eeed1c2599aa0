#!/usr/bin/env bash
# Encrypted logical backup of the audit database: pg_dump (custom format) | gzip | gpg.
#
#   DATABASE_URL=postgres://… scripts/backup.sh -r ops@example.org -o /var/backups/audit
#   scripts/backup.sh -d postgres://… -p /run/secrets/backup-passphrase -f audit.dump.gz.gpg
#   scripts/backup.sh -d postgres://… -r <fingerprint> --dry-run    # print the pipeline only
#
# The output is `<name>.dump.gz.gpg` plus `<name>.dump.gz.gpg.sha256`. Restore with
# scripts/restore.sh, which also verifies every organization's ledger after the restore.
set -euo pipefail

readonly SCRIPT_NAME="${0##*/}"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<EOF
Usage: ${SCRIPT_NAME} [options]

Dumps the database in pg_dump custom format, compresses it with gzip and encrypts it with gpg,
either to a public key (-r) or with a passphrase read from a file (-p). Plain-text backups of
audit data are not offered.

Options:
  -d, --database URL          Database to back up (default: \$DATABASE_URL)
  -r, --recipient KEY         Encrypt to this gpg public key (prefer the full fingerprint)
  -p, --passphrase-file FILE  Encrypt symmetrically (AES-256) with the passphrase in FILE
  -o, --output-dir DIR        Directory for <db>-<UTC timestamp>.dump.gz.gpg (default: ./backups)
  -f, --file FILE             Exact output file instead of a generated name in -o
      --dry-run               Print the commands instead of running them
  -h, --help                  Show this help

Environment:
  DATABASE_URL   used when -d is not given
  GNUPGHOME      gpg home holding the recipient's public key
EOF
}

DATABASE="${DATABASE_URL:-}"
RECIPIENT=""
PASSPHRASE_FILE=""
OUTPUT_DIR="./backups"
OUTPUT_FILE=""
DRY_RUN=false

while [[ $# -gt 0 ]]; do
  case "$1" in
    -d | --database | -r | --recipient | -p | --passphrase-file | -o | --output-dir | -f | --file)
      [[ $# -ge 2 ]] || usage_error "$1 needs a value"
      case "$1" in
        -d | --database) DATABASE="$2" ;;
        -r | --recipient) RECIPIENT="$2" ;;
        -p | --passphrase-file) PASSPHRASE_FILE="$2" ;;
        -o | --output-dir) OUTPUT_DIR="$2" ;;
        -f | --file) OUTPUT_FILE="$2" ;;
      esac
      shift
      ;;
    --dry-run) DRY_RUN=true ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done

[[ -n "${DATABASE}" ]] || usage_error "no database: pass -d URL or set DATABASE_URL"
[[ "${DATABASE}" =~ ^postgres(ql)?:// ]] || usage_error "the database must be a postgres:// or postgresql:// URL"
if [[ -n "${RECIPIENT}" && -n "${PASSPHRASE_FILE}" ]]; then
  usage_error "choose one of -r (public key) and -p (passphrase file)"
fi
[[ -n "${RECIPIENT}" || -n "${PASSPHRASE_FILE}" ]] || usage_error "backups are always encrypted: pass -r RECIPIENT or -p PASSPHRASE_FILE"

if [[ -z "${OUTPUT_FILE}" ]]; then
  base="${DATABASE%%\?*}"
  db_name="${base##*/}"
  OUTPUT_FILE="${OUTPUT_DIR%/}/${db_name:-database}-$(date -u +%Y%m%dT%H%M%SZ).dump.gz.gpg"
fi
partial="${OUTPUT_FILE}.partial"

# Custom format (-Fc) keeps everything pg_restore needs to restore selectively and in order;
# --compress=0 leaves compression to gzip so the archive is compressed exactly once.
split_password "${DATABASE}"
dump_cmd=(pg_dump --format=custom --compress=0 --dbname="${DATABASE_NO_PASSWORD}")
gzip_cmd=(gzip -9)
gpg_cmd=(gpg --batch --yes --no-tty --output "${partial}")
if [[ -n "${RECIPIENT}" ]]; then
  # Trust comes from naming the key explicitly (a fingerprint), not from the web of trust.
  gpg_cmd+=(--trust-model always --encrypt --recipient "${RECIPIENT}")
else
  gpg_cmd+=(--pinentry-mode loopback --passphrase-file "${PASSPHRASE_FILE}" --symmetric --cipher-algo AES256)
fi
out_dir="$(dirname "${OUTPUT_FILE}")"
out_name="$(basename "${OUTPUT_FILE}")"

if [[ "${DRY_RUN}" == true ]]; then
  printf '%s\n' "$(format_command mkdir -p "${out_dir}")"
  printf '%s | %s | %s\n' "$(format_command "${dump_cmd[@]}")" "$(format_command "${gzip_cmd[@]}")" "$(format_command "${gpg_cmd[@]}")"
  printf '%s\n' "$(format_command mv "${partial}" "${OUTPUT_FILE}")"
  printf '(cd %s && sha256sum %s) > %s\n' "$(format_command "${out_dir}")" "$(format_command "${out_name}")" "$(format_command "${OUTPUT_FILE}.sha256")"
  exit 0
fi

require_tool pg_dump "the PostgreSQL client (apt-get install postgresql-client)"
require_tool gzip "gzip"
require_tool gpg "GnuPG (apt-get install gnupg)"
require_tool sha256sum "coreutils"
if [[ -n "${PASSPHRASE_FILE}" ]]; then
  [[ -r "${PASSPHRASE_FILE}" ]] || die "passphrase file '${PASSPHRASE_FILE}' is not readable"
  [[ -s "${PASSPHRASE_FILE}" ]] || die "passphrase file '${PASSPHRASE_FILE}' is empty"
fi
if [[ -n "${RECIPIENT}" ]]; then
  gpg --batch --list-keys "${RECIPIENT}" >/dev/null 2>&1 ||
    die "no gpg public key for recipient '${RECIPIENT}' (import it with gpg --import; GNUPGHOME=${GNUPGHOME:-~/.gnupg})"
fi

umask 077
mkdir -p "${out_dir}"
trap 'rm -f "${partial}"' EXIT
# pipefail: a failing pg_dump fails the whole pipeline even though gpg succeeded.
"${dump_cmd[@]}" | "${gzip_cmd[@]}" | "${gpg_cmd[@]}"
mv "${partial}" "${OUTPUT_FILE}"
trap - EXIT
# The checksum names the file relative to its directory, so `sha256sum -c` works after a copy.
(cd "${out_dir}" && sha256sum "${out_name}") >"${OUTPUT_FILE}.sha256"
printf '%s\n' "${OUTPUT_FILE}"
