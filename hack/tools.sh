#!/usr/bin/env bash
# Installs the command-line tools the tests use and a fresh machine lacks, from the Go module
# proxy, into hack/bin (git-ignored). Prints that folder. Tools already there are reused.
#   helm: renders the Helm chart whose RBAC the operator tests run under.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin="$here/bin"
HELM_VERSION=v3.19.0
mkdir -p "$bin"
if ! "$bin/helm" version --short 2>/dev/null | grep -q "^${HELM_VERSION}"; then
  echo "[tools] installing helm ${HELM_VERSION} into $bin" >&2
  GOBIN="$bin" CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
fi
echo "$bin"
