#!/usr/bin/env bash
# Builds container images from local files as OCI archives (one uncompressed tar layer, config, manifest,
# index.json naming the image) and imports them into the local containerd, so no image is ever pulled.
# Archives are cached under $STEGO_CACHE/images; pods reference them with imagePullPolicy: Never.
#
#   images.sh base                       pause (upstream pause.c from the k8s.io/kubernetes module, static),
#                                        busybox (Debian busybox-static), coredns, nginx (Debian nginx + ldd libs),
#                                        kube-network-policies (the NetworkPolicy enforcer, static)
#   images.sh node NAME -- CMD ...       Node 24 + the app's dist/ and production node_modules, entry CMD
#                                        (the node and the operator are the same runtime, different entry)
#   images.sh node-base                  Node 24 + npm + busybox: the NODE_IMAGE the Dockerfiles are built FROM
#                                        here (dockerfile-images.sh), where node:24-bookworm-slim cannot be pulled
#   images.sh import ARCHIVE ...         import archives into containerd's k8s.io namespace
#   images.sh all                        base + stegocluster node and operator images, imported (entries:
#                                        STEGO_NODE_ENTRY, STEGO_OPERATOR_ENTRY, relative to /app)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$here/lib.sh"

IMAGES="$STEGO_CACHE/images"
# the Node 24 that CI and run-e2e.sh use (scripts/ensure-node24.sh installs it once, cached)
NODE24_DIR="${NODE24_DIR:-$(dirname "$(bash "$repo/scripts/ensure-node24.sh")")}"
mkdir -p "$IMAGES"

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# Copies a dynamically linked binary and every library ldd lists for it into a root directory.
copy_with_libs() {
  local root="$1" bin="$2" dest="${3:-$2}"
  install -D -m 0755 "$bin" "$root$dest"
  # a static binary (CoreDNS, built with CGO_ENABLED=0) has no libraries: ldd says so and exits 1
  { ldd "$bin" 2>/dev/null || true; } | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | while read -r lib; do
    install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# Minimal files every image gets: users, a writable /tmp, hosts/resolv.conf mount points.
base_root() {
  local root="$1"
  mkdir -p "$root"/{etc,tmp,proc,sys,dev,run,var/run}
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\nwww-data:x:33:\n' >"$root/etc/group"
  : >"$root/etc/hosts"; : >"$root/etc/resolv.conf"
}

add_busybox() {
  local root="$1"
  [[ -x /bin/busybox ]] || die "busybox not found: apt-get install busybox-static"
  install -D -m 0755 /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
  done
}

# Writes an OCI image archive. Args: root dir, image name, output archive, then a JSON array for the
# entrypoint and optional JSON object fragments: env array, working dir.
write_oci_archive() {
  local root="$1" name="$2" out="$3" entrypoint="$4" env="${5:-[\"PATH=/usr/local/bin:/usr/bin:/bin\"]}" workdir="${6:-/}"
  local work; work="$(mktemp -d)"
  mkdir -p "$work/blobs/sha256"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/layer.tar" .
  local layer_digest layer_size; layer_digest="$(sha256 "$work/layer.tar")"; layer_size="$(stat -c %s "$work/layer.tar")"
  mv "$work/layer.tar" "$work/blobs/sha256/$layer_digest"
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":%s,"WorkingDir":"%s"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"e2e/local/images.sh"}]}' \
    "$entrypoint" "$env" "$workdir" "$layer_digest" >"$work/config.json"
  local config_digest config_size; config_digest="$(sha256 "$work/config.json")"; config_size="$(stat -c %s "$work/config.json")"
  mv "$work/config.json" "$work/blobs/sha256/$config_digest"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$work/manifest.json"
  local manifest_digest manifest_size; manifest_digest="$(sha256 "$work/manifest.json")"; manifest_size="$(stat -c %s "$work/manifest.json")"
  mv "$work/manifest.json" "$work/blobs/sha256/$manifest_digest"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "$manifest_size" "$name" "${name##*:}" >"$work/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work" -cf "$out.tmp" oci-layout index.json blobs
  mv "$out.tmp" "$out"
  rm -rf "$work"
  log "image $name -> $out ($(du -h "$out" | cut -f1))"
}

archive_path() { local n="${1//\//_}"; echo "$IMAGES/${n//:/_}.oci.tar"; }

build_pause() {
  local name="$LOCAL_IMAGE_PREFIX/pause:local" out; out="$(archive_path "$name")"
  [[ -f "$out" ]] && { echo "$out"; return; }
  local src; src="$(cd "$here/k8s-build" && GOTOOLCHAIN=local go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  local root; root="$(mktemp -d)"
  base_root "$root"
  gcc -Os -Wall -Werror -static -DVERSION="$K8S_VERSION-local" -o "$root/pause" "$src"
  strip "$root/pause"
  write_oci_archive "$root" "$name" "$out" '["/pause"]'
  rm -rf "$root"; echo "$out"
}

build_busybox() {
  local name="$LOCAL_IMAGE_PREFIX/busybox:local" out; out="$(archive_path "$name")"
  [[ -f "$out" ]] && { echo "$out"; return; }
  local root; root="$(mktemp -d)"
  base_root "$root"; add_busybox "$root"
  write_oci_archive "$root" "$name" "$out" '["/bin/sh"]'
  rm -rf "$root"; echo "$out"
}

build_coredns() {
  local name="$LOCAL_IMAGE_PREFIX/coredns:$COREDNS_VERSION" out; out="$(archive_path "$name")"
  [[ -f "$out" ]] && { echo "$out"; return; }
  [[ -x "$TOOLS_BIN/coredns" ]] || "$here/build.sh" coredns >&2
  local root; root="$(mktemp -d)"
  base_root "$root"
  copy_with_libs "$root" "$(readlink -f "$TOOLS_BIN/coredns")" /coredns
  write_oci_archive "$root" "$name" "$out" '["/coredns"]'
  rm -rf "$root"; echo "$out"
}

# The NetworkPolicy enforcer's DaemonSet image: the static binary alone (it speaks nftables and NFQUEUE over
# netlink itself; no nft, no libraries).
build_netpol() {
  local name="$LOCAL_IMAGE_PREFIX/kube-network-policies:$KUBE_NETWORK_POLICIES_VERSION" out; out="$(archive_path "$name")"
  [[ -f "$out" ]] && { echo "$out"; return; }
  [[ -x "$NETPOL_BIN" ]] || "$here/build.sh" kube-network-policies >&2
  local root; root="$(mktemp -d)"
  base_root "$root"
  install -D -m 0755 "$NETPOL_BIN" "$root/bin/netpol"
  write_oci_archive "$root" "$name" "$out" '["/bin/netpol"]'
  rm -rf "$root"; echo "$out"
}

build_nginx() {
  local name="$LOCAL_IMAGE_PREFIX/nginx:local" out; out="$(archive_path "$name")"
  [[ -f "$out" ]] && { echo "$out"; return; }
  [[ -x /usr/sbin/nginx ]] || die "nginx not found: apt-get install nginx-light (or nginx)"
  local root; root="$(mktemp -d)"
  base_root "$root"; add_busybox "$root"
  copy_with_libs "$root" /usr/sbin/nginx
  # Debian's configuration tree (mime.types etc.), without the packaged sites and dynamic modules: the
  # operator mounts its own nginx.conf.
  mkdir -p "$root/etc/nginx" "$root/var/lib/nginx" "$root/var/log/nginx" "$root/usr/share/nginx/html"
  cp -a /etc/nginx/mime.types /etc/nginx/nginx.conf "$root/etc/nginx/"
  sed -i '/include \/etc\/nginx\/modules-enabled/d; /include \/etc\/nginx\/sites-enabled/d' "$root/etc/nginx/nginx.conf"
  mkdir -p "$root/etc/nginx/conf.d"
  # A default server so the image answers on its own; the operator's configuration replaces nginx.conf.
  printf 'server {\n    listen 80 default_server;\n    location / { return 200 "stegocluster nginx\\n"; }\n}\n' >"$root/etc/nginx/conf.d/default.conf"
  ln -s /dev/stdout "$root/var/log/nginx/access.log"; ln -s /dev/stderr "$root/var/log/nginx/error.log"
  # /usr/sbin on PATH as in the upstream nginx images: the operator's gateway runs plain `nginx`.
  write_oci_archive "$root" "$name" "$out" '["/usr/sbin/nginx","-g","daemon off;"]' \
    '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
  rm -rf "$root"; echo "$out"
}

# The StegoCluster runtime: Node 24, the compiled dist/, package.json and production node_modules.
# Production node_modules are installed once per package-lock.json (npm ci --omit=dev) and cached.
build_node_image() {
  local name="$1"; shift
  local entry="[" first=1 arg
  for arg in "$@"; do
    ((first)) || entry+=","; first=0
    entry+="\"${arg//\"/\\\"}\""
  done
  entry+="]"
  [[ -x "$NODE24_DIR/bin/node" ]] || die "Node 24 not found at $NODE24_DIR (scripts/ensure-node24.sh installs it)"
  [[ -d "$repo/dist" ]] || die "no dist/ in $repo: run npm run build first"
  local lock_hash; lock_hash="$(cat "$repo/package.json" "$repo/package-lock.json" | sha256sum | cut -c1-16)"
  local prod="$IMAGES/node_modules-$lock_hash"
  if [[ ! -d "$prod/node_modules" ]]; then
    log "installing production node_modules ($lock_hash)"
    rm -rf "$prod.tmp"; mkdir -p "$prod.tmp"
    cp "$repo/package.json" "$repo/package-lock.json" "$prod.tmp/"
    (cd "$prod.tmp" && PATH="$NODE24_DIR/bin:$PATH" npm ci --omit=dev --ignore-scripts --no-audit --no-fund >&2)
    mv "$prod.tmp" "$prod"
  fi
  node_runtime_root "$prod"
  BUILT_ARCHIVE="$(archive_path "$name")"
  write_oci_archive "$NODE_ROOT" "$name" "$BUILT_ARCHIVE" "$entry" \
    '["PATH=/usr/local/bin:/usr/bin:/bin","NODE_ENV=production"]' /app
}

# The runtime's files, assembled once per run into $NODE_ROOT: the node and operator images share them.
# (Called directly, never in a command substitution, so the assignment survives.)
NODE_ROOT=""
node_runtime_root() {
  local prod="$1"
  if [[ -z "$NODE_ROOT" ]]; then
    NODE_ROOT="$(mktemp -d)"
    trap 'rm -rf "$NODE_ROOT"' EXIT
    base_root "$NODE_ROOT"; add_busybox "$NODE_ROOT"
    copy_with_libs "$NODE_ROOT" "$NODE24_DIR/bin/node" /usr/local/bin/node
    mkdir -p "$NODE_ROOT/app"
    cp -a "$repo/dist" "$repo/package.json" "$NODE_ROOT/app/"
    [[ -d "$repo/assets" ]] && cp -a "$repo/assets" "$NODE_ROOT/app/"
    cp -a "$prod/node_modules" "$NODE_ROOT/app/"
    # Tests, benchmarks and the e2e suite are not part of the runtime.
    rm -rf "$NODE_ROOT/app/dist/e2e" "$NODE_ROOT/app/dist/node/test" "$NODE_ROOT/app/dist/node/bench"
    find "$NODE_ROOT/app/dist" \( -name '*.test.js' -o -name '*.test.js.map' -o -name '*.test.d.ts' \) -delete
  fi
}

# A stand-in for node:24-bookworm-slim that the Dockerfiles' RUN steps work on: busybox (/bin/sh, mkdir,
# chown), the Node 24 binary and the machine's npm (Debian's /usr/lib/node_modules/npm, or NPM_DIR).
NPM_DIR="${NPM_DIR:-/usr/lib/node_modules/npm}"
build_node_base() {
  local name="$LOCAL_IMAGE_PREFIX/node-base:24" out; out="$(archive_path "$name")"
  [[ -x "$NODE24_DIR/bin/node" ]] || die "Node 24 not found at $NODE24_DIR"
  [[ -f "$NPM_DIR/bin/npm-cli.js" ]] || die "npm not found at $NPM_DIR (apt-get install npm, or set NPM_DIR)"
  local key; key="2-$("$NODE24_DIR/bin/node" --version)-$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$NPM_DIR/package.json" | head -1)"
  [[ -f "$out" && "$(cat "$out.key" 2>/dev/null)" == "$key" ]] && { echo "$out"; return; }
  local root; root="$(mktemp -d)"
  base_root "$root"; add_busybox "$root"
  mkdir -p "$root/root" "$root/usr/local/lib/node_modules" "$root/usr/bin"
  ln -s /bin/env "$root/usr/bin/env"   # npm's `#!/usr/bin/env node`
  copy_with_libs "$root" "$NODE24_DIR/bin/node" /usr/local/bin/node
  cp -a "$NPM_DIR" "$root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  write_oci_archive "$root" "$name" "$out" '["node"]' '["PATH=/usr/local/bin:/usr/bin:/bin","HOME=/root"]'
  echo "$key" >"$out.key"
  rm -rf "$root"; echo "$out"
}

import_archives() {
  local sock="$STATE/run/containerd/containerd.sock"
  [[ -S "$sock" ]] || die "containerd is not running (stage 2 up?)"
  for a in "$@"; do
    ctr --address "$sock" -n k8s.io images import --no-unpack=false "$a" >&2
  done
}

cmd="${1:-}"; shift || true
case "$cmd" in
  base) for f in build_pause build_busybox build_coredns build_nginx build_netpol; do $f; done ;;
  node)
    name="${1:?image name}"; shift
    [[ "${1:-}" == "--" ]] && shift
    (($#)) || die "usage: images.sh node NAME -- CMD ..."
    build_node_image "$name" "$@"
    echo "$BUILT_ARCHIVE" ;;
  node-base) build_node_base ;;
  import) import_archives "$@" ;;
  all)
    archives=("$(build_pause)" "$(build_busybox)" "$(build_coredns)" "$(build_nginx)" "$(build_netpol)")
    build_node_image "$STEGO_NODE_IMAGE" node "${STEGO_NODE_ENTRY:-dist/node/src/main.js}"
    archives+=("$BUILT_ARCHIVE")
    build_node_image "$STEGO_OPERATOR_IMAGE" node "${STEGO_OPERATOR_ENTRY:-dist/operator/src/main.js}"
    archives+=("$BUILT_ARCHIVE")
    import_archives "${archives[@]}" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
