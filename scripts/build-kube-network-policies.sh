#!/usr/bin/env bash
# Builds SIG Network's NetworkPolicy enforcer, sigs.k8s.io/kube-network-policies (the code kind's kindnet
# embeds since kind v0.24), from its Go module on the module proxy into a cache outside the repo, once.
# Prints the binary's path. A second run finds it and builds nothing. KUBE_NETWORK_POLICIES_VERSION picks
# another release.
#
# It enforces NetworkPolicy with nftables and NFQUEUE: the first packet of every connection to or from a
# pod that a policy selects goes to a userspace queue, where the controller evaluates the policies and
# accepts or drops it; established traffic stays in the kernel. Static (CGO off): nftables and nfqueue are
# spoken over netlink in Go, no libnftnl or libnetfilter_queue.
set -euo pipefail
VERSION="${KUBE_NETWORK_POLICIES_VERSION:-v0.8.0}"
MODULE=sigs.k8s.io/kube-network-policies
prefix="${STEGO_CACHE:-$HOME/.cache/stegocluster}/kube-network-policies-${VERSION}"
out="$prefix/kube-network-policies"

if [[ ! -x "$out" ]]; then
  mkdir -p "$prefix"
  staging="$(mktemp -d "$prefix/.build-XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  start=$SECONDS
  # The main package is the module's cmd/ directory, so `go install` names the binary "cmd".
  # Quiet on success so stdout is just the path; the log is shown on failure.
  if ! GOTOOLCHAIN=local GOBIN="$staging" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
      go install -trimpath -ldflags "-s -w" "$MODULE/cmd@$VERSION" >"$prefix/build.log" 2>&1; then
    cat "$prefix/build.log" >&2
    exit 1
  fi
  mv "$staging/cmd" "$out"
  echo "built kube-network-policies $VERSION in $((SECONDS - start)) s $(date -u +%FT%TZ)" >>"$prefix/build-times.log"
fi
echo "$out"
