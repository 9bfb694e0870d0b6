#!/usr/bin/env bash
# `npm run e2e:local`: builds what is missing (cached), brings up the stage-2 local Kubernetes, builds and
# imports the StegoCluster images from dist/ (run `npm run build` first), runs the e2e suite against it and
# tears everything down, whatever the outcome. Exit status is the suite's.
#   STEGO_E2E_KEEP=1   leave the cluster up afterwards (tear down later with e2e/local/down.sh)
#   STEGO_E2E_IMAGES=dockerfile   run the node and operator images built from node/Dockerfile and
#                      operator/Dockerfile with buildah (dockerfile-images.sh) instead of images.sh's
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$here/lib.sh"

t0=$SECONDS
"$here/build.sh" >&2
log "binaries ready after $((SECONDS - t0))s"

teardown() { [[ "${STEGO_E2E_KEEP:-0}" == 1 ]] || "$here/down.sh"; }
trap teardown EXIT

t1=$SECONDS
export KUBECONFIG
KUBECONFIG="$("$here/stage2-up.sh" | tail -1)"
log "stage 2 up in $((SECONDS - t1))s"

t2=$SECONDS
if [[ "${STEGO_E2E_IMAGES:-local}" == dockerfile ]]; then
  "$here/images.sh" import $("$here/images.sh" base)
  built="$("$here/dockerfile-images.sh" --import)"
  STEGO_NODE_IMAGE="$(sed -n 1p <<<"$built")"; STEGO_OPERATOR_IMAGE="$(sed -n 2p <<<"$built")"
else
  "$here/images.sh" all >/dev/null
fi
log "images built and imported in $((SECONDS - t2))s (node $STEGO_NODE_IMAGE, operator $STEGO_OPERATOR_IMAGE)"

nginx_image="$LOCAL_IMAGE_PREFIX/nginx:local"
# The suite runs on Node 24 (the project's runtime), not whatever `node` is first on PATH: Node 20's fetch, for
# one, refuses request bodies over resizable ArrayBuffers, which is what the PNG encoder returns.
NODE24_BIN="$(bash "$repo/scripts/ensure-node24.sh")"
export PATH="$NODE24_BIN:$K8S_BIN:$TOOLS_BIN:$PATH"
log "suite runs on Node $(node --version)"
# The chart's image values (see e2e/INTEGRATION.md): the local images, never pulled.
export STEGO_E2E_HELM_ARGS="${STEGO_E2E_HELM_ARGS:-\
--set image.repository=${STEGO_OPERATOR_IMAGE%:*} --set image.tag=${STEGO_OPERATOR_IMAGE##*:} --set image.pullPolicy=Never \
--set node.image.repository=${STEGO_NODE_IMAGE%:*} --set node.image.tag=${STEGO_NODE_IMAGE##*:} --set node.image.pullPolicy=Never \
--set gateway.image.repository=${nginx_image%:*} --set gateway.image.tag=${nginx_image##*:} --set gateway.image.pullPolicy=Never}"

# The NetworkPolicy steps' outsider pod: the local busybox image (kind pulls busybox).
export STEGO_E2E_PROBE_IMAGE="${STEGO_E2E_PROBE_IMAGE:-$LOCAL_IMAGE_PREFIX/busybox:local}"
export STEGO_E2E_PROBE_PULL_POLICY="${STEGO_E2E_PROBE_PULL_POLICY:-Never}"

t3=$SECONDS
cd "$repo"
status=0
npx mocha --timeout 600000 'dist/e2e/suite/**/*.test.js' || status=$?
log "suite finished in $((SECONDS - t3))s (status $status); total $((SECONDS - t0))s"
exit "$status"
