#!/usr/bin/env bash
# Builds Helm 3 (the chart must work with Helm 3 and Helm 4; e2e/local/build.sh builds Helm 4) from its Go module,
# once, into ~/.cache/stegocluster/helm-v3.22.0/helm, and prints that path. Never downloads a prebuilt binary.
set -euo pipefail
HELM3_VERSION="${HELM3_VERSION:-v3.22.0}"
dir="${STEGO_CACHE:-$HOME/.cache/stegocluster}/helm-${HELM3_VERSION}"
if [ ! -x "$dir/helm" ]; then
  mkdir -p "$dir"
  (cd "$dir" && GOBIN="$dir" GOTOOLCHAIN=local CGO_ENABLED=0 \
    go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM3_VERSION}" "helm.sh/helm/v3/cmd/helm@${HELM3_VERSION}" >&2)
fi
echo "$dir/helm"
