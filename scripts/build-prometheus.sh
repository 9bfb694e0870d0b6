#!/usr/bin/env bash
# Builds Prometheus 3.x (`prometheus` and `promtool`) from its Go module on the module proxy into a cache
# outside the repo, once, one binary at a time (2 shared cores; a link takes most of a GiB). Prints the
# directory holding both binaries. A second run finds them and builds nothing.
#
# Module versions map to releases as v0.3MM.P ↔ 3.MM.P (v0.316.0 is Prometheus 3.16.0). The build uses
# upstream's `remove_all_sd` tag: the cloud service-discovery plugins (AWS, Azure, GCE, Kubernetes, ...)
# are left out, which removes most of the dependency graph; static and file discovery, the TSDB, the rule
# engine, the HTTP API and promtool are the same code as the release. Tests scrape static targets. The web
# UI's compiled assets are not part of the module (upstream builds them with npm for the `builtinassets`
# tag), so the UI is absent; the HTTP API is complete.
set -euo pipefail
MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-v0.316.0}"
minor="${MODULE_VERSION#v0.3}"; minor="${minor%%.*}"; patch="${MODULE_VERSION##*.}"
release="3.$((10#$minor)).$patch"
prefix="${STEGO_CACHE:-$HOME/.cache/stegocluster}/prometheus-${release}"
tags="remove_all_sd"

build_one() {
  local cmd="$1"
  if [ -x "$prefix/$cmd" ] && "$prefix/$cmd" --version 2>&1 | grep -q "version ${release}"; then
    return 0
  fi
  mkdir -p "$prefix"
  local staging; staging="$(mktemp -d "$prefix/.build-XXXXXX")"
  local v=github.com/prometheus/common/version
  local start=$SECONDS
  # quiet on success so the caller's stdout is just the directory; the log is shown on failure
  if ! GOTOOLCHAIN=local GOBIN="$staging" GOFLAGS=-mod=mod CGO_ENABLED=0 go install -trimpath -tags "$tags" \
      -ldflags "-s -w -X $v.Version=${release} -X $v.Revision=${MODULE_VERSION} -X $v.Branch=module -X $v.BuildUser=stegocluster -X $v.BuildDate=module-proxy" \
      "github.com/prometheus/prometheus/cmd/${cmd}@${MODULE_VERSION}" >"$prefix/build-${cmd}.log" 2>&1; then
    cat "$prefix/build-${cmd}.log" >&2
    rm -rf "$staging"
    exit 1
  fi
  mv "$staging/$cmd" "$prefix/$cmd"
  rm -rf "$staging"
  echo "built $cmd ${release} in $((SECONDS - start)) s" >>"$prefix/build-times.log"
}

build_one promtool
build_one prometheus
echo "$prefix"
