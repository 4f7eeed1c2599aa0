#!/usr/bin/env bash
# Writes the Docker secret files that compose/docker-compose.prod.yml mounts into its containers.
#
#   scripts/compose-secrets.sh                        # into compose/secrets/ (git-ignored)
#   scripts/compose-secrets.sh -o /srv/audit/secrets  # then set AUDIT_SECRETS_DIR in compose/.env
#   scripts/compose-secrets.sh --dry-run              # list what would be written, no values
#
# A file that exists is kept: PostgreSQL keeps the role passwords it was initialized with, and
# checkpoints signed with the signing key must stay verifiable. Delete a file to regenerate it.
set -euo pipefail

readonly SCRIPT_NAME="${0##*/}"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT

usage() {
  cat <<EOF
Usage: ${SCRIPT_NAME} [options]

Writes every secret compose/docker-compose.prod.yml reads, one file each, into a directory
(mode 700; the files are mode 444 because the containers' users must read them):

  postgres-password          PostgreSQL superuser (used by nobody but an operator)
  audit-migrator-password    role audit_migrator (owner; the migrate service)
  audit-runtime-password     role audit_runtime (the api and worker services)
  migrator-database-url      postgres://audit_migrator:…@postgres:5432/audit
  database-url               postgres://audit_runtime:…@postgres:5432/audit
  redis-password             Redis requirepass
  redis-url                  redis://:…@redis:6379/0
  audit-signing-key          Ed25519 checkpoint signing key (PRIVATE+KEY+ORIGIN+…)
  audit-verifier-key         its public verifier key (publish it; the worker trusts it)
  audit-auth-secret          signs session cookies at /auth (the same for every replica)
  audit-delivery-secret-key  seals delivery destinations' secrets (32 bytes, base64; api and worker)
  audit-bootstrap-api-key    admin API key registered on the first start

Passwords are 32 random bytes in hex (safe inside URLs). Existing files are kept. The Inngest
signing key (compose/docker-compose.inngest.yml) is not written: it is the Inngest server's own
key, copied into audit-inngest-signing-key by hand.

Options:
  -o, --output-dir DIR  Directory (default: \$AUDIT_SECRETS_DIR, else compose/secrets)
      --origin NAME     Key name of the signing key, = AUDIT_LOG_ORIGIN (default: smedrec.audit)
      --dry-run         List the files that would be written and how, print no secret
  -h, --help            Show this help
EOF
}

OUTPUT_DIR="${AUDIT_SECRETS_DIR:-${REPO_ROOT}/compose/secrets}"
ORIGIN="smedrec.audit"
DRY_RUN=false

while [[ $# -gt 0 ]]; do
  case "$1" in
    -o | --output-dir | --origin)
      [[ $# -ge 2 ]] || usage_error "$1 needs a value"
      case "$1" in
        -o | --output-dir) OUTPUT_DIR="$2" ;;
        --origin) ORIGIN="$2" ;;
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

[[ -n "${OUTPUT_DIR}" ]] || usage_error "the output directory must not be empty"
# A key name the server accepts (server/src/ledger/note.ts), in AUDIT_LOG_ORIGIN's alphabet.
[[ "${ORIGIN}" =~ ^[!-*,-~]+$ ]] || usage_error "origin '${ORIGIN}' must be printable ASCII without spaces or '+'"
# The database compose/docker-compose.prod.yml creates (POSTGRES_DB).
readonly DATABASE="audit"

# The signing key comes from the server's own key generator (server/src/ledger/note.ts), run from
# this checkout through tsx, so its format is exactly what the server parses.
readonly KEYGEN_JS="const k = require('./server/src/ledger').generateSignerKey(process.argv[1]); process.stdout.write(k.signerKey + '\n' + k.verifierKey + '\n');"

# "<file> <how>" for --dry-run, in the order the files are written.
plan=(
  "postgres-password:openssl rand -hex 32"
  "audit-migrator-password:openssl rand -hex 32"
  "audit-runtime-password:openssl rand -hex 32"
  "redis-password:openssl rand -hex 32"
  "migrator-database-url:postgres://audit_migrator:<audit-migrator-password>@postgres:5432/${DATABASE}"
  "database-url:postgres://audit_runtime:<audit-runtime-password>@postgres:5432/${DATABASE}"
  "redis-url:redis://:<redis-password>@redis:6379/0"
  "audit-signing-key:generateSignerKey('${ORIGIN}') (server/src/ledger), private half"
  "audit-verifier-key:the same key's public half"
  "audit-auth-secret:openssl rand -hex 32"
  "audit-delivery-secret-key:openssl rand -base64 32"
  "audit-bootstrap-api-key:openssl rand -hex 32"
)

if [[ "${DRY_RUN}" == true ]]; then
  printf '%s\n' "$(format_command install -d -m 700 "${OUTPUT_DIR}")"
  for entry in "${plan[@]}"; do
    file="${OUTPUT_DIR%/}/${entry%%:*}"
    if [[ -e "${file}" ]]; then
      printf 'keep %s\n' "$(format_command "${file}")"
    else
      printf 'write %s (mode 444): %s\n' "$(format_command "${file}")" "${entry#*:}"
    fi
  done
  exit 0
fi

require_tool openssl "OpenSSL (apt-get install openssl)"
require_tool node "Node.js 20 or later"
[[ -d "${REPO_ROOT}/node_modules/tsx" ]] || die "run 'npm ci' in ${REPO_ROOT} first (the signing key is made by the server's code)"

umask 077
install -d -m 700 "${OUTPUT_DIR}"
dir="$(cd "${OUTPUT_DIR}" && pwd)"

# Writes $2 into $dir/$1 unless the file exists; reports either way (never the value).
put() {
  local file="${dir}/$1"
  if [[ -e "${file}" ]]; then
    printf '%s: kept %s\n' "${SCRIPT_NAME}" "${file}" >&2
    return 0
  fi
  printf '%s\n' "$2" >"${file}.partial"
  chmod 444 "${file}.partial"
  mv "${file}.partial" "${file}"
  printf '%s: wrote %s\n' "${SCRIPT_NAME}" "${file}" >&2
}

# The first line of $dir/$1.
value_of() {
  local line
  IFS= read -r line <"${dir}/$1" || true
  [[ -n "${line}" ]] || die "${dir}/$1 is empty: delete it to regenerate it"
  printf '%s' "${line}"
}

for name in postgres-password audit-migrator-password audit-runtime-password redis-password audit-auth-secret audit-bootstrap-api-key; do
  put "${name}" "$(openssl rand -hex 32)"
done
# Each URL is built from its password file; one kept from an earlier run must still match it.
url_with() {
  local url="$2" password
  password="$(value_of "$3")"
  put "$1" "${url/<password>/${password}}"
  [[ "$(value_of "$1")" == "${url/<password>/${password}}" ]] ||
    die "${dir}/$1 does not match ${dir}/$3: delete $1 to rebuild it from the password"
}
# DELIVERY_SECRET_KEY is 32 bytes in standard base64 (server/src/config.ts).
put audit-delivery-secret-key "$(openssl rand -base64 32)"
url_with migrator-database-url "postgres://audit_migrator:<password>@postgres:5432/${DATABASE}" audit-migrator-password
url_with database-url "postgres://audit_runtime:<password>@postgres:5432/${DATABASE}" audit-runtime-password
url_with redis-url "redis://:<password>@redis:6379/0" redis-password

if [[ ! -e "${dir}/audit-signing-key" ]]; then
  keys="$(cd "${REPO_ROOT}" && node --import tsx -e "${KEYGEN_JS}" "${ORIGIN}")" || die "could not generate a signing key"
  put audit-signing-key "${keys%%$'\n'*}"
  rm -f "${dir}/audit-verifier-key"
  put audit-verifier-key "${keys#*$'\n'}"
elif [[ ! -e "${dir}/audit-verifier-key" ]]; then
  die "${dir}/audit-signing-key exists without audit-verifier-key: restore the verifier key from your secret store"
else
  printf '%s: kept %s and audit-verifier-key\n' "${SCRIPT_NAME}" "${dir}/audit-signing-key" >&2
fi

printf '%s\n' "${dir}"
