#!/usr/bin/env bash
# Encrypted export (and re-import) of the Kubernetes Secrets the deployment needs: database and
# Redis passwords, signing keys, API keys, alert receivers, the backup repository passphrase.
# Server-managed metadata (uid, resourceVersion, timestamps, managedFields, owners) is dropped so
# that the file applies to a new cluster. The export is always gpg-encrypted, as backup.sh does.
#
#   scripts/secrets-backup.sh -n smedrec-audit -r ops@example.org -o /safe/place/secrets.json.gpg
#   scripts/secrets-backup.sh -n smedrec-audit -p /run/secrets/backup-passphrase -o secrets.json.gpg
#   scripts/secrets-backup.sh --restore -i secrets.json.gpg -p /run/secrets/backup-passphrase
set -euo pipefail

readonly SCRIPT_NAME="${0##*/}"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<EOF
Usage: ${SCRIPT_NAME} -o FILE (-r RECIPIENT | -p PASSPHRASE_FILE) [options]
       ${SCRIPT_NAME} --restore -i FILE [-p PASSPHRASE_FILE] [options]

Exports the Opaque and TLS Secrets of a namespace as JSON (kubectl get, server-managed metadata
removed by jq) encrypted with gpg, to a public key (-r) or symmetrically with AES-256 (-p). With
--restore, decrypts FILE and applies it (kubectl apply, server-side validation).

Options:
  -n, --namespace NS          Namespace (default: smedrec-audit)
  -l, --selector SELECTOR     Only Secrets matching this label selector
  -o, --output FILE           Encrypted export to write (mode 0600)
  -r, --recipient KEY         gpg recipient (key id, fingerprint or e-mail)
  -p, --passphrase-file FILE  Symmetric passphrase (export) or the passphrase to decrypt with
      --restore               Import instead of export
  -i, --input FILE            Encrypted export to import (with --restore)
      --context NAME          kubectl context
      --dry-run               Print the commands instead of running them
  -h, --help                  Show this help
EOF
}

NAMESPACE="smedrec-audit"
SELECTOR=""
OUTPUT=""
INPUT=""
RECIPIENT=""
PASSPHRASE_FILE=""
CONTEXT=""
RESTORE=false
DRY_RUN=false

while [[ $# -gt 0 ]]; do
  case "$1" in
    -n | --namespace | -l | --selector | -o | --output | -i | --input | -r | --recipient | -p | --passphrase-file | --context)
      [[ $# -ge 2 ]] || usage_error "$1 needs a value"
      case "$1" in
        -n | --namespace) NAMESPACE="$2" ;;
        -l | --selector) SELECTOR="$2" ;;
        -o | --output) OUTPUT="$2" ;;
        -i | --input) INPUT="$2" ;;
        -r | --recipient) RECIPIENT="$2" ;;
        -p | --passphrase-file) PASSPHRASE_FILE="$2" ;;
        --context) CONTEXT="$2" ;;
      esac
      shift
      ;;
    --restore) RESTORE=true ;;
    --dry-run) DRY_RUN=true ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done

[[ "${NAMESPACE}" =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || usage_error "namespace '${NAMESPACE}' is not a DNS label"
kubectl_cmd=(kubectl)
[[ -z "${CONTEXT}" ]] || kubectl_cmd+=("--context=${CONTEXT}")
kubectl_cmd+=(--namespace "${NAMESPACE}")

if [[ "${RESTORE}" == true ]]; then
  [[ -n "${INPUT}" ]] || usage_error "no export to import: pass -i FILE"
  gpg_cmd=(gpg --batch --no-tty --decrypt)
  [[ -z "${PASSPHRASE_FILE}" ]] || gpg_cmd+=(--pinentry-mode loopback --passphrase-file "${PASSPHRASE_FILE}")
  gpg_cmd+=("${INPUT}")
  apply_cmd=("${kubectl_cmd[@]}" apply --server-side --force-conflicts -f -)
  if [[ "${DRY_RUN}" == true ]]; then
    printf '%s | %s\n' "$(format_command "${gpg_cmd[@]}")" "$(format_command "${apply_cmd[@]}")"
    exit 0
  fi
  require_tool gpg "GnuPG (apt-get install gnupg)"
  require_tool kubectl "kubectl"
  [[ -r "${INPUT}" ]] || die "export '${INPUT}' is not readable"
  "${gpg_cmd[@]}" | "${apply_cmd[@]}" || die "import failed"
  exit 0
fi

[[ -n "${OUTPUT}" ]] || usage_error "no output file: pass -o FILE"
[[ -n "${RECIPIENT}" || -n "${PASSPHRASE_FILE}" ]] ||
  usage_error "exports are always encrypted: pass -r RECIPIENT or -p PASSPHRASE_FILE"
[[ -z "${RECIPIENT}" || -z "${PASSPHRASE_FILE}" ]] || usage_error "pass either -r or -p, not both"

get_cmd=("${kubectl_cmd[@]}" get secrets --field-selector 'type!=kubernetes.io/service-account-token' -o json)
[[ -z "${SELECTOR}" ]] || get_cmd+=(--selector "${SELECTOR}")
# Only what a new cluster needs: kind, name, namespace, labels, annotations, type and data.
readonly JQ_FILTER='{apiVersion: "v1", kind: "List", items: [.items[]
  | select(.type == "Opaque" or .type == "kubernetes.io/tls" or .type == "kubernetes.io/basic-auth")
  | {apiVersion: "v1", kind: "Secret", type, data,
     metadata: ({name: .metadata.name, namespace: .metadata.namespace}
       + (if .metadata.labels then {labels: .metadata.labels} else {} end)
       + (if .metadata.annotations then {annotations: (.metadata.annotations
           | del(."kubectl.kubernetes.io/last-applied-configuration"))} else {} end))}]}'
jq_cmd=(jq --exit-status "${JQ_FILTER}")
gpg_cmd=(gpg --batch --no-tty --yes --output "${OUTPUT}")
if [[ -n "${RECIPIENT}" ]]; then
  gpg_cmd+=(--encrypt --recipient "${RECIPIENT}")
else
  gpg_cmd+=(--pinentry-mode loopback --passphrase-file "${PASSPHRASE_FILE}" --symmetric --cipher-algo AES256)
fi

if [[ "${DRY_RUN}" == true ]]; then
  printf '%s | %s | %s\n' "$(format_command "${get_cmd[@]}")" "$(format_command jq --exit-status FILTER)" "$(format_command "${gpg_cmd[@]}")"
  exit 0
fi

require_tool kubectl "kubectl"
require_tool jq "jq (apt-get install jq)"
require_tool gpg "GnuPG (apt-get install gnupg)"
umask 077
"${get_cmd[@]}" | "${jq_cmd[@]}" | "${gpg_cmd[@]}" || die "export failed"
printf '%s\n' "${OUTPUT}"
