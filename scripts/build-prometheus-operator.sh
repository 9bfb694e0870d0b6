#!/usr/bin/env bash
# Builds the Prometheus Operator (`operator`, its cmd/operator) from its Go module on the module proxy into a
# cache outside the repo, once, and prints the directory holding the binary and the module's own CRDs
# (`crds/monitoring.coreos.com_*.yaml`, copied from the module's example/prometheus-operator-crd). A second
# run finds them and builds nothing. Never downloads a prebuilt binary.
#
# The module's go.mod replaces its two sub-modules (pkg/apis/monitoring, pkg/client) with local directories,
# and a module zip leaves nested modules out, so `go install module/cmd/operator@version` cannot build it: the
# script copies the module's source into a staging directory, points the two requirements at their own
# module versions on the proxy (the same version as the main module) instead of the missing directories, and
# runs `go build` there.
#
# Version: the proxy serves the main module at v0.85.0 only (v0.95.2, where the apis module is, answers
# "403 This module version is not available"), so v0.85.0 with its apis and client modules at v0.85.0.
set -euo pipefail
VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
module=github.com/prometheus-operator/prometheus-operator
prefix="${STEGO_CACHE:-$HOME/.cache/stegocluster}/prometheus-operator-${VERSION#v}"

if [ -x "$prefix/operator" ] && "$prefix/operator" --version 2>&1 | grep -q "version ${VERSION#v}" \
    && [ -f "$prefix/crds/monitoring.coreos.com_servicemonitors.yaml" ]; then
  echo "$prefix"
  exit 0
fi

mkdir -p "$prefix"
staging="$(mktemp -d "$prefix/.build-XXXXXX")"
trap 'chmod -R u+w "$staging" 2>/dev/null; rm -rf "$staging"' EXIT
log="$prefix/build-operator.log"
start=$SECONDS
# quiet on success so the caller's stdout is just the directory; the log is shown on failure
exec 3>&1 4>&2 >"$log" 2>&1
trap 'cat "$log" >&4' ERR
src="$(GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "${module}@${VERSION}" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
[ -n "$src" ] && [ -d "$src" ] || { echo "go mod download ${module}@${VERSION} gave no source directory"; exit 1; }
cp -r "$src/." "$staging/src"
chmod -R u+w "$staging/src"
cd "$staging/src"
GOTOOLCHAIN=local go mod edit \
  -dropreplace "${module}/pkg/apis/monitoring" -dropreplace "${module}/pkg/client" \
  -require "${module}/pkg/apis/monitoring@${VERSION}" -require "${module}/pkg/client@${VERSION}"
v=github.com/prometheus/common/version
GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$staging/operator" \
  -ldflags "-s -w -X $v.Version=${VERSION#v} -X $v.Revision=${VERSION} -X $v.Branch=module -X $v.BuildUser=stegocluster -X $v.BuildDate=module-proxy" \
  ./cmd/operator
mkdir -p "$staging/crds"
cp example/prometheus-operator-crd/monitoring.coreos.com_*.yaml "$staging/crds/"
exec 1>&3 2>&4
trap - ERR

rm -rf "$prefix/crds"
mv "$staging/crds" "$prefix/crds"
mv "$staging/operator" "$prefix/operator"
echo "built operator ${VERSION} in $((SECONDS - start)) s" >>"$prefix/build-times.log"
echo "$prefix"
