#!/usr/bin/env bash
# Deploy SMEDREC Audit to Kubernetes from the synthesized manifests in dist-k8s/<environment>
# (`npm run synth` writes them; they are committed and never edited by hand). With Argo CD the
# same folder is the GitOps source and this script is only needed for status, scale, rollback.
#
#   scripts/k8s-deploy.sh deploy -n smedrec-audit
#   scripts/k8s-deploy.sh update -n smedrec-audit
#   scripts/k8s-deploy.sh status -n smedrec-audit
#   scripts/k8s-deploy.sh scale -r 6 -n smedrec-audit
#   scripts/k8s-deploy.sh rollback -n smedrec-audit
#   scripts/k8s-deploy.sh deploy -e dev --dry-run          # print the commands, run nothing
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
  deploy     Apply dist-k8s/<env> and wait for the rollout (first install).
  update     Show the diff against the cluster, apply dist-k8s/<env>, wait for the rollout.
  status     Show deployments, pods, services, autoscalers and disruption budgets.
  scale      Set the API replica count (-r N). An HPA keeps replicas within its min/max.
  rollback   Roll the API deployment back to its previous revision and wait.

Options:
  -n, --namespace NAME     Kubernetes namespace (default: smedrec-audit for prod,
                           smedrec-audit-<env> otherwise, as the synthesized manifests name it)
  -e, --env NAME           Manifest set under dist-k8s/ (default: prod)
  -d, --deployment NAME    API deployment name (default: audit-server)
  -w, --worker NAME        Worker deployment name (default: <deployment>-worker)
  -r, --replicas N         Replica count for scale
      --context NAME       kubectl context to use (default: the current context)
      --timeout DURATION   Rollout wait limit (default: 300s)
      --dry-run            Print the commands instead of running them
  -h, --help               Show this help

Environment:
  KUBECTL     kubectl binary to use (default: kubectl from PATH)
  DIST_K8S    folder holding the synthesized environments (default: <repo>/dist-k8s)
EOF
}

DRY_RUN=false

COMMAND=""
NAMESPACE=""
ENVIRONMENT="prod"
DEPLOYMENT="audit-server"
WORKER=""
REPLICAS=""
CONTEXT=""
TIMEOUT="300s"

while [[ $# -gt 0 ]]; do
  case "$1" in
    deploy | update | status | scale | rollback)
      [[ -z "${COMMAND}" ]] || usage_error "only one command may be given (got '${COMMAND}' and '$1')"
      COMMAND="$1"
      ;;
    -n | --namespace | -e | --env | -d | --deployment | -w | --worker | -r | --replicas | --context | --timeout)
      [[ $# -ge 2 ]] || usage_error "$1 needs a value"
      case "$1" in
        -n | --namespace) NAMESPACE="$2" ;;
        -e | --env) ENVIRONMENT="$2" ;;
        -d | --deployment) DEPLOYMENT="$2" ;;
        -w | --worker) WORKER="$2" ;;
        -r | --replicas) REPLICAS="$2" ;;
        --context) CONTEXT="$2" ;;
        --timeout) TIMEOUT="$2" ;;
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

[[ -n "${COMMAND}" ]] || usage_error "no command given"
# manifests/main.ts puts prod in smedrec-audit and every other environment in smedrec-audit-<env>.
if [[ -z "${NAMESPACE}" ]]; then
  if [[ "${ENVIRONMENT}" == prod ]]; then NAMESPACE="smedrec-audit"; else NAMESPACE="smedrec-audit-${ENVIRONMENT}"; fi
fi
# RFC 1123 label, as Kubernetes requires for namespace and deployment names.
dns_label='^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'
[[ "${NAMESPACE}" =~ ${dns_label} ]] || usage_error "invalid namespace '${NAMESPACE}' (RFC 1123 label)"
[[ "${DEPLOYMENT}" =~ ${dns_label} ]] || usage_error "invalid deployment name '${DEPLOYMENT}' (RFC 1123 label)"
WORKER="${WORKER:-${DEPLOYMENT}-worker}"
[[ "${WORKER}" =~ ${dns_label} ]] || usage_error "invalid worker deployment name '${WORKER}' (RFC 1123 label)"
[[ "${ENVIRONMENT}" =~ ^[A-Za-z0-9_-]+$ ]] || usage_error "invalid environment '${ENVIRONMENT}'"
[[ "${TIMEOUT}" =~ ^[0-9]+[smh]$ ]] || usage_error "invalid timeout '${TIMEOUT}' (e.g. 300s, 10m)"

KUBECTL="${KUBECTL:-kubectl}"
kubectl_cmd=("${KUBECTL}")
[[ -z "${CONTEXT}" ]] || kubectl_cmd+=(--context "${CONTEXT}")

require_kubectl() {
  [[ "${DRY_RUN}" == true ]] && return 0
  command -v "${KUBECTL}" >/dev/null 2>&1 ||
    die "'${KUBECTL}' not found: install kubectl (https://kubernetes.io/docs/tasks/tools/) or set KUBECTL" 127
}

manifest_dir() {
  local dir="${DIST_K8S:-${REPO_ROOT}/dist-k8s}/${ENVIRONMENT}"
  [[ -d "${dir}" ]] || die "no manifests in ${dir}: run 'npm run synth' (or pick another -e)" 66
  compgen -G "${dir}/*.yaml" >/dev/null || die "no *.yaml files in ${dir}: run 'npm run synth'" 66
  printf '%s\n' "${dir}"
}

# Waits for the API deployment, and with "all" for the worker too (both change on apply).
wait_for_rollout() {
  run "${kubectl_cmd[@]}" --namespace "${NAMESPACE}" rollout status "deployment/${DEPLOYMENT}" --timeout "${TIMEOUT}"
  if [[ "${1:-}" == all ]]; then
    run "${kubectl_cmd[@]}" --namespace "${NAMESPACE}" rollout status "deployment/${WORKER}" --timeout "${TIMEOUT}"
  fi
}

case "${COMMAND}" in
  deploy)
    dir="$(manifest_dir)"
    require_kubectl
    # The manifests carry their own namespaces (the Namespace object included); -R applies
    # every file in the folder.
    run "${kubectl_cmd[@]}" apply --recursive --filename "${dir}"
    wait_for_rollout all
    ;;
  update)
    dir="$(manifest_dir)"
    require_kubectl
    # kubectl diff exits 1 when there are differences: that is the expected case here.
    if [[ "${DRY_RUN}" == true ]]; then
      run "${kubectl_cmd[@]}" diff --recursive --filename "${dir}"
    else
      "${kubectl_cmd[@]}" diff --recursive --filename "${dir}" || [[ $? -eq 1 ]] || die "kubectl diff failed"
    fi
    run "${kubectl_cmd[@]}" apply --recursive --filename "${dir}"
    wait_for_rollout all
    ;;
  status)
    require_kubectl
    run "${kubectl_cmd[@]}" --namespace "${NAMESPACE}" get deployments,statefulsets,pods,services,horizontalpodautoscalers,poddisruptionbudgets --output wide
    run "${kubectl_cmd[@]}" --namespace "${NAMESPACE}" rollout history "deployment/${DEPLOYMENT}"
    ;;
  scale)
    [[ -n "${REPLICAS}" ]] || usage_error "scale needs -r N"
    [[ "${REPLICAS}" =~ ^(0|[1-9][0-9]{0,3})$ ]] || usage_error "invalid replica count '${REPLICAS}' (0-9999)"
    require_kubectl
    run "${kubectl_cmd[@]}" --namespace "${NAMESPACE}" scale "deployment/${DEPLOYMENT}" --replicas "${REPLICAS}"
    wait_for_rollout
    ;;
  rollback)
    require_kubectl
    printf '%s: note: with Argo CD auto-sync, also revert the commit in dist-k8s/ or the sync undoes this\n' "${SCRIPT_NAME}" >&2
    run "${kubectl_cmd[@]}" --namespace "${NAMESPACE}" rollout undo "deployment/${DEPLOYMENT}"
    wait_for_rollout
    ;;
  *) usage_error "unknown command '${COMMAND}'" ;;
esac
