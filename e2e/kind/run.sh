#!/usr/bin/env bash
# `npm run e2e:kind`: the same e2e suite on kind. Creates the cluster from the repository's kind-config.yaml,
# builds the node and operator images from their Dockerfiles, loads them into kind, runs the suite (which
# installs the chart) and deletes the cluster, whatever the outcome. Needs Docker (or Podman via
# KIND_EXPERIMENTAL_PROVIDER), kind, kubectl and helm on PATH, and `npm run build` done (the suite is in dist/).
#   STEGO_E2E_KEEP=1   keep the cluster afterwards (kind delete cluster --name stegocluster)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"

for c in docker kind kubectl helm; do
  command -v "$c" >/dev/null || { echo "e2e:kind needs $c on PATH" >&2; exit 1; }
done
cluster="$(awk '/^name:/ { print $2; exit }' kind-config.yaml)"
cluster="${cluster:-stegocluster}"
tag="e2e-$(git rev-parse --short HEAD 2>/dev/null || echo local)"
node_image="stegocluster/node:$tag"
operator_image="stegocluster/operator:$tag"

teardown() { [[ "${STEGO_E2E_KEEP:-0}" == 1 ]] || kind delete cluster --name "$cluster"; }

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  echo "kind cluster $cluster exists: deleting it for a clean run" >&2
  kind delete cluster --name "$cluster"
fi
docker build -t "$node_image" -f node/Dockerfile .
docker build -t "$operator_image" -f operator/Dockerfile .

trap teardown EXIT
kind create cluster --config kind-config.yaml --wait 180s
kind load docker-image --name "$cluster" "$node_image" "$operator_image"
export KUBECONFIG="${KUBECONFIG:-$HOME/.kube/config}"
kubectl config use-context "kind-$cluster"

# kind-config.yaml maps the gateway's NodePort to the host's port 8080.
export STEGO_E2E_FRONT_DOOR="${STEGO_E2E_FRONT_DOOR:-http://127.0.0.1:8080}"
export STEGO_E2E_HELM_ARGS="${STEGO_E2E_HELM_ARGS:-\
--set image.repository=${operator_image%:*} --set image.tag=${operator_image##*:} --set image.pullPolicy=Never \
--set node.image.repository=${node_image%:*} --set node.image.tag=${node_image##*:} --set node.image.pullPolicy=Never}"
npx mocha --timeout 600000 'dist/e2e/suite/**/*.test.js'
