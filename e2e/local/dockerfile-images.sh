#!/usr/bin/env bash
# Builds node/Dockerfile and operator/Dockerfile for real, with Debian's buildah (no daemon, no container
# engine): vfs storage and chroot isolation, its own storage under $STEGO_CACHE/buildah. No base image can be
# pulled here, so the Dockerfiles' NODE_IMAGE build-arg names a Node 24 base built from local files
# (`images.sh node-base`: the Node 24 binary, the machine's npm, busybox), loaded from its OCI archive. The
# RUN steps' `npm ci` reaches the npm registry through the host network, as a docker build would.
# Layers are cached (--layers): a rebuild with the same package-lock.json skips `npm ci`; unchanged inputs
# (Dockerfile, base, the files of the build context it copies) reuse the last archive without buildah.
# Output: docker-archive tarballs under $STEGO_CACHE/images, imported into the local containerd with --import.
#
#   dockerfile-images.sh [--import]
#   env: STEGO_DOCKERFILE_NODE_IMAGE, STEGO_DOCKERFILE_OPERATOR_IMAGE (names, default
#        stegocluster.local/stego-{node,operator}:dockerfile), BUILDAH_ROOT
# Prints the two image names, one a line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$here/lib.sh"
command -v buildah >/dev/null || die "buildah not found: apt-get install buildah"

import=0
[[ "${1:-}" == "--import" ]] && import=1

node_image="${STEGO_DOCKERFILE_NODE_IMAGE:-$LOCAL_IMAGE_PREFIX/stego-node:dockerfile}"
operator_image="${STEGO_DOCKERFILE_OPERATOR_IMAGE:-$LOCAL_IMAGE_PREFIX/stego-operator:dockerfile}"
root="${BUILDAH_ROOT:-$STEGO_CACHE/buildah}"
images="$STEGO_CACHE/images"
bah() { buildah --root "$root/storage" --runroot "$root/run" --storage-driver vfs "$@"; }

base_archive="$("$here/images.sh" node-base)"
base="localhost/stego-node-base:24"
base_key="$(cat "$base_archive.key")"
if [[ "$(cat "$root/base.key" 2>/dev/null)" != "$base_key" ]] || ! bah inspect --type image "$base" >/dev/null 2>&1; then
  id="$(bah pull --quiet "oci-archive:$base_archive")"
  bah tag "$id" "$base"
  echo "$base_key" >"$root/base.key"
  log "base $base loaded from $base_archive"
fi

# What a build reads: the Dockerfile, the base, and the context files it copies (as .dockerignore leaves them).
# The same inputs reuse the last archive: buildah on vfs takes minutes even when every layer is cached.
inputs_key() {
  local dockerfile="$1"
  {
    echo "$base_key"
    sha256sum "$repo/$dockerfile"
    (cd "$repo" && find package.json package-lock.json tsconfig.json node operator assets -type f \
      -not -path '*/node_modules/*' -print0 | sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}

build() {
  local dockerfile="$1" name="$2" out key t0=$SECONDS
  out="$images/$(echo "$name" | tr '/:' '__').docker.tar"
  key="$(inputs_key "$dockerfile")"
  if [[ -f "$out" && "$(cat "$out.key" 2>/dev/null)" == "$key" ]]; then
    log "$dockerfile: inputs unchanged ($key), reusing $out"
    ((import)) && "$here/images.sh" import "$out"
    echo "$name"
    return
  fi
  # npm's cache from the host: the build's `npm ci` downloads only what the host has not cached
  mkdir -p "$HOME/.npm"
  bah build --isolation chroot --network host --pull=never --layers \
    --build-arg "NODE_IMAGE=$base" -v "$HOME/.npm:/root/.npm" \
    -f "$repo/$dockerfile" -t "$name" "$repo" >&2
  rm -f "$out"
  bah push --quiet "$name" "docker-archive:$out:$name" >&2
  echo "$key" >"$out.key"
  log "$dockerfile -> $name ($out, $(du -h "$out" | cut -f1)) in $((SECONDS - t0))s"
  ((import)) && "$here/images.sh" import "$out"
  echo "$name"
}

# vfs copies every layer in full, so the storage is kept bounded: when this run ends (built or failed), the
# working containers a failed build left go, and so do the untagged images of earlier runs (their layer cache;
# this run's stay as the next run's cache).
earlier_untagged="$(bah images --filter dangling=true --quiet 2>/dev/null || true)"
tidy_storage() {
  bah rm --all >/dev/null 2>&1 || true
  for id in $earlier_untagged; do bah rmi "$id" >/dev/null 2>&1 || true; done
}
trap tidy_storage EXIT

build node/Dockerfile "$node_image"
build operator/Dockerfile "$operator_image"
