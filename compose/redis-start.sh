#!/bin/sh
# Starts redis-server for compose/docker-compose.prod.yml with the password from a Docker secret
# file. The password never appears on a command line (every user can read those, in `ps` and in
# /proc/<pid>/cmdline) nor in a committed file: it is written, with an `include` of the committed
# configuration, into a file only the redis user can read, on the container's /tmp tmpfs.
#
#   REDIS_PASSWORD_FILE  the secret (default /run/secrets/redis-password)
#   REDIS_CONFIG         the committed configuration (default /usr/local/etc/redis/redis.conf)
#   REDIS_RUNTIME_DIR    where the generated file goes, a tmpfs (default /tmp)
#
# Arguments are passed on to redis-server after the generated file. POSIX sh (busybox ash in the
# alpine image); `read` and `printf` are shell builtins, so no child process sees the password.
set -eu

password_file="${REDIS_PASSWORD_FILE:-/run/secrets/redis-password}"
config="${REDIS_CONFIG:-/usr/local/etc/redis/redis.conf}"
runtime_dir="${REDIS_RUNTIME_DIR:-/tmp}"

die() {
  printf 'redis-start: error: %s\n' "$1" >&2
  exit 1
}

[ -r "${password_file}" ] || die "cannot read the password file ${password_file}"
[ -r "${config}" ] || die "cannot read the configuration ${config}"
password=""
# The last line of a secret file often has no newline; `read` still fills the variable.
IFS= read -r password <"${password_file}" || true
[ -n "${password}" ] || die "the password file ${password_file} is empty"
# The same value is part of REDIS_URL, and Redis splits configuration lines on blanks and quotes:
# only RFC 3986 unreserved characters are safe in both without escaping.
case "${password}" in
  *[!A-Za-z0-9._~-]*) die "the password in ${password_file} may hold only letters, digits and . _ ~ - (it is also part of REDIS_URL)" ;;
esac
[ "${#password}" -ge 32 ] || die "the password in ${password_file} is shorter than 32 characters (openssl rand -hex 32)"

umask 077
generated="${runtime_dir}/redis-with-secrets.conf"
{
  printf 'include %s\n' "${config}"
  printf 'requirepass %s\n' "${password}"
} >"${generated}"
unset password

exec redis-server "${generated}" "$@"
