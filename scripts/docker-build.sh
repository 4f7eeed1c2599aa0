#!/usr/bin/env bash
# Build and push the SMEDREC Audit server image (the top-level Dockerfile).
#
#   scripts/docker-build.sh build                      # local image smedrec/audit-server:<version>
#   scripts/docker-build.sh build-prod                 # release image with OCI labels, fresh base
#   scripts/docker-build.sh push -r registry.example.org
#   scripts/docker-build.sh build-prod --dry-run       # print the commands, run nothing
# <version> is server/package.json's: the one tag of the manifests (manifests/environments.yaml)
# and compose/.env.example too.
set -euo pipefail

readonly SCRIPT_NAME="${0##*/}"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT

usage() {
  cat <<EOF
Usage: ${SCRIPT_NAME} <command> [options]

Commands:
  build         Build the runtime image for local use (target "runner").
  build-prod    Build the release image: pulls a fresh base, adds OCI labels
                (version, git revision, creation time), tags IMAGE:TAG.
  push          Tag IMAGE:TAG as REGISTRY/IMAGE:TAG and push it (needs -r).

Options:
  -t, --tag TAG            Image tag (default: the version in server/package.json)
  -r, --registry REGISTRY  Registry host[/path] to push to, e.g. registry.example.org
  -i, --image NAME         Image name (default: smedrec/audit-server)
  -p, --platform LIST      Target platform(s) for build-prod, e.g. linux/amd64
      --dry-run            Print the commands instead of running them
  -h, --help               Show this help

Environment:
  DOCKER             docker CLI to use (default: docker from PATH)
  SOURCE_DATE_EPOCH  Fixes the image creation time (reproducible builds)
EOF
}

DRY_RUN=false

require_docker() {
  [[ "${DRY_RUN}" == true ]] && return 0
  command -v "${DOCKER}" >/dev/null 2>&1 ||
    die "'${DOCKER}' not found: install the Docker CLI (https://docs.docker.com/engine/install/) or set DOCKER" 127
  "${DOCKER}" info >/dev/null 2>&1 ||
    die "cannot reach the Docker daemon with '${DOCKER}' (is it running? check DOCKER_HOST / the docker context)" 69
}

COMMAND=""
TAG=""
REGISTRY=""
IMAGE="smedrec/audit-server"
PLATFORM=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    build | build-prod | push)
      [[ -z "${COMMAND}" ]] || usage_error "only one command may be given (got '${COMMAND}' and '$1')"
      COMMAND="$1"
      ;;
    -t | --tag)
      [[ $# -ge 2 ]] || usage_error "$1 needs a value"
      TAG="$2"
      shift
      ;;
    -r | --registry)
      [[ $# -ge 2 ]] || usage_error "$1 needs a value"
      REGISTRY="${2%/}"
      shift
      ;;
    -i | --image)
      [[ $# -ge 2 ]] || usage_error "$1 needs a value"
      IMAGE="$2"
      shift
      ;;
    -p | --platform)
      [[ $# -ge 2 ]] || usage_error "$1 needs a value"
      PLATFORM="$2"
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

[[ -n "${COMMAND}" ]] || usage_error "no command given"
# Docker tag grammar (distribution/reference): [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
if [[ -n "${TAG}" && ! "${TAG}" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  usage_error "invalid tag '${TAG}' (letters, digits, '_', '.', '-'; at most 128 characters)"
fi
[[ "${TAG}" != "latest" ]] || usage_error "refusing the tag 'latest': use an explicit version"

DOCKER="${DOCKER:-docker}"
# The project's one image tag: the server's version (manifests/environments.yaml and
# compose/.env.example use the same; manifests/test/image-tag.test.ts checks).
if [[ -z "${TAG}" ]]; then
  TAG="$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "${REPO_ROOT}/server/package.json")"
  [[ -n "${TAG}" ]] || die "cannot read the version from ${REPO_ROOT}/server/package.json: pass -t TAG" 1
fi

case "${COMMAND}" in
  build)
    require_docker
    # BuildKit is required: the Dockerfile uses RUN --mount=type=cache.
    run env DOCKER_BUILDKIT=1 "${DOCKER}" build --file "${REPO_ROOT}/Dockerfile" --target runner \
      --tag "${IMAGE}:${TAG}" "${REPO_ROOT}"
    ;;
  build-prod)
    require_docker
    revision="$(git -C "${REPO_ROOT}" rev-parse HEAD 2>/dev/null || echo unknown)"
    source_url="$(git -C "${REPO_ROOT}" config --get remote.origin.url 2>/dev/null || true)"
    # RFC 3339 UTC; SOURCE_DATE_EPOCH (reproducible-builds.org) pins it.
    if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
      # GNU date takes -d @EPOCH, BSD/macOS date takes -r EPOCH.
      created="$(date -u -d "@${SOURCE_DATE_EPOCH}" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null ||
        date -u -r "${SOURCE_DATE_EPOCH}" +%Y-%m-%dT%H:%M:%SZ)"
    else
      created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    fi
    args=(build --file "${REPO_ROOT}/Dockerfile" --target runner --pull)
    [[ -z "${PLATFORM}" ]] || args+=(--platform "${PLATFORM}")
    args+=(
      --build-arg "VERSION=${TAG}"
      --build-arg "REVISION=${revision}"
      --build-arg "CREATED=${created}"
      --build-arg "SOURCE_URL=${source_url}"
      --tag "${IMAGE}:${TAG}"
      "${REPO_ROOT}"
    )
    run env DOCKER_BUILDKIT=1 "${DOCKER}" "${args[@]}"
    ;;
  push)
    [[ -n "${REGISTRY}" ]] || usage_error "push needs -r REGISTRY"
    require_docker
    run "${DOCKER}" tag "${IMAGE}:${TAG}" "${REGISTRY}/${IMAGE}:${TAG}"
    run "${DOCKER}" push "${REGISTRY}/${IMAGE}:${TAG}"
    ;;
  *) usage_error "unknown command '${COMMAND}'" ;;
esac
