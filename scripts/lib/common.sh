# shellcheck shell=bash disable=SC2154 # SCRIPT_NAME and DRY_RUN are set by the sourcing script
# Helpers shared by the operator scripts. Sourced, never run: the caller defines SCRIPT_NAME,
# usage() and DRY_RUN before calling these.

# Prints "<script>: error: <message>" to stderr and exits with $2 (default 1).
die() {
  printf '%s: error: %s\n' "${SCRIPT_NAME}" "$1" >&2
  exit "${2:-1}"
}

# A usage mistake: the message, then the usage text, exit 2.
usage_error() {
  printf '%s: error: %s\n\n' "${SCRIPT_NAME}" "$1" >&2
  usage >&2
  exit 2
}

# Formats a command so that it can be pasted into a shell, quoting only words that need it.
format_command() {
  local word line=""
  for word in "$@"; do
    if [[ "${word}" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
      line+="${word} "
    else
      line+="$(printf '%q' "${word}") "
    fi
  done
  printf '%s' "${line% }"
}

# Prints the command (with --dry-run) or runs it.
run() {
  if [[ "${DRY_RUN}" == true ]]; then
    printf '%s\n' "$(format_command "$@")"
  else
    "$@"
  fi
}

# Moves a password out of a postgres:// URL into PGPASSWORD (libpq reads it from there), so it
# appears neither in the process list nor in --dry-run output. Sets DATABASE_NO_PASSWORD for the caller.
# shellcheck disable=SC2034 # DATABASE_NO_PASSWORD is read by the sourcing script
split_password() {
  local url="$1"
  if [[ "${url}" =~ ^(postgres(ql)?://)([^:@/]*):([^@/]*)@(.*)$ ]]; then
    local encoded="${BASH_REMATCH[4]}"
    # RFC 3986 §2.1 percent-decoding.
    PGPASSWORD="$(printf '%b' "${encoded//%/\\x}")"
    export PGPASSWORD
    DATABASE_NO_PASSWORD="${BASH_REMATCH[1]}${BASH_REMATCH[3]}@${BASH_REMATCH[5]}"
  else
    DATABASE_NO_PASSWORD="${url}"
  fi
}

# Exits 127 with an install hint when a tool is missing.
require_tool() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found: install $2" 127
}
