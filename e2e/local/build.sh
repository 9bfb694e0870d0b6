#!/usr/bin/env bash
# Builds the Kubernetes binaries (and CoreDNS, helm, crictl) from the Go module proxy into a cache keyed by
# version, one binary at a time. Usage: build.sh [component ...]; no arguments builds everything.
# Components: kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns helm crictl
# kube-network-policies (the NetworkPolicy enforcer; scripts/build-kube-network-policies.sh)
# A binary already in the cache is not rebuilt; set K8S_VERSION to build another Kubernetes version.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
# Static binaries, as upstream builds them (and no external linker: links are much faster).
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0

K8S_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
STAGE1=(kube-apiserver kubectl)
ALL=("${K8S_COMPONENTS[@]}" coredns helm crictl kube-network-policies)

pinned_version() { sed -n 's/^[[:space:]]*k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$here/k8s-build/go.mod"; }

# The wrapper module lives in the repo pinned at one version; other versions get a generated copy in the
# cache whose replace block lists the staging modules that version's own go.mod replaces.
prepare_k8s_module() {
  local src="$K8S_CACHE/src"
  mkdir -p "$src"
  cp -r "$here/k8s-build/cmd" "$src/"
  if [[ "$K8S_VERSION" == "$(pinned_version)" ]]; then
    cp "$here/k8s-build/go.mod" "$here/k8s-build/go.sum" "$src/"
  elif [[ ! -f "$src/go.sum" ]]; then
    log "generating the wrapper module for $K8S_VERSION"
    local upstream_mod staging_version="v0.${K8S_VERSION#v1.}"
    upstream_mod="$(cd "$src" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    {
      sed -n '1,/^module /p' "$here/k8s-build/go.mod"
      echo; echo "go 1.24"; echo; echo "require k8s.io/kubernetes $K8S_VERSION"; echo; echo "replace ("
      sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' "$upstream_mod" | sort -u |
        while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"; done
      echo ")"
    } >"$src/go.mod"
    (cd "$src" && go mod tidy)
  fi
}

k8s_ldflags() {
  local v="$K8S_VERSION" minor major date
  major="${v#v}"; major="${major%%.*}"
  minor="${v#v*.}"; minor="${minor%%.*}"
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date -X $pkg.gitCommit=module-proxy-$v"
  done
  echo "$flags"
}

build_k8s() {
  local name="$1" out="$K8S_BIN/$1"
  [[ -x "$out" ]] && { log "$name $K8S_VERSION cached"; return 0; }
  prepare_k8s_module
  log "building $name $K8S_VERSION"
  local t0=$SECONDS
  (cd "$K8S_CACHE/src" && go build -tags selinux,notest -trimpath -ldflags "$(k8s_ldflags)" -o "$out.tmp" "./cmd/$name")
  mv "$out.tmp" "$out"
  log "built $name in $((SECONDS - t0))s"
  echo "$name $K8S_VERSION $((SECONDS - t0))s $(date -u +%FT%TZ)" >>"$K8S_CACHE/build-times.txt"
}

# Tools that install with `go install module@version` (no replace lines needed), each keyed by its version.
build_tool() {
  local name="$1" pkg="$2" version="$3" ldflags="$4" out="$TOOLS_BIN/$1-$3"
  [[ -x "$out" ]] || {
    log "building $name $version"
    local t0=$SECONDS gobin
    gobin="$(mktemp -d)"
    GOBIN="$gobin" go install -trimpath -ldflags "$ldflags" "$pkg@$version"
    mkdir -p "$TOOLS_BIN"; mv "$gobin/$name" "$out"; rmdir "$gobin"
    log "built $name in $((SECONDS - t0))s"
    echo "$name $version $((SECONDS - t0))s $(date -u +%FT%TZ)" >>"$TOOLS_BIN/build-times.txt"
  }
  ln -sfn "$out" "$TOOLS_BIN/$name"
}

mkdir -p "$K8S_BIN"
targets=("$@")
((${#targets[@]})) || targets=("${ALL[@]}")
[[ "${targets[*]}" == "stage1" ]] && targets=("${STAGE1[@]}")
for t in "${targets[@]}"; do
  case "$t" in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | kubectl) build_k8s "$t" ;;
    coredns) build_tool coredns github.com/coredns/coredns "$COREDNS_VERSION" "-s -w" ;;
    helm) build_tool helm "$HELM_MODULE/cmd/helm" "$HELM_VERSION" \
      "-s -w -X $HELM_MODULE/internal/version.version=$HELM_VERSION" ;;
    crictl) build_tool crictl sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_VERSION" \
      "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" ;;
    kube-network-policies) "$here/../../scripts/build-kube-network-policies.sh" >/dev/null ;;
    *) die "unknown component $t" ;;
  esac
done
