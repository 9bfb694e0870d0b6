# Shared settings for the local Kubernetes scripts (sourced, not run).
# Everything built is cached under $STEGO_CACHE keyed by version; everything running lives under $STATE.

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.12.4}"
HELM_MODULE="${HELM_MODULE:-helm.sh/helm/v4}"
HELM_VERSION="${HELM_VERSION:-v4.3.1}"
CRICTL_VERSION="${CRICTL_VERSION:-v1.34.0}"
# The NetworkPolicy enforcer (SIG Network's, as in kind's kindnet): scripts/build-kube-network-policies.sh.
export KUBE_NETWORK_POLICIES_VERSION="${KUBE_NETWORK_POLICIES_VERSION:-v0.8.0}"

STEGO_CACHE="${STEGO_CACHE:-$HOME/.cache/stegocluster}"
K8S_CACHE="$STEGO_CACHE/k8s-$K8S_VERSION"
K8S_BIN="$K8S_CACHE/bin"
TOOLS_BIN="$STEGO_CACHE/k8s-tools/bin"
NETPOL_BIN="$STEGO_CACHE/kube-network-policies-$KUBE_NETWORK_POLICIES_VERSION/kube-network-policies"
# Its nftables table (inet family) and NFQUEUE number; down.sh deletes the table, host-state.sh lists both.
NETPOL_NFT_TABLE="kube-network-policies"
NETPOL_QUEUE_ID=100
NETPOL_METRICS_PORT=10280

# Running state: certificates, etcd data, logs, pid files, the kubeconfig. Not in the repo, not in the cache.
STATE="${STEGO_K8S_STATE:-/var/lib/stegocluster-k8s}"
KUBECONFIG_PATH="$STATE/admin.kubeconfig"

# Addresses: all from 198.18.0.0/15 (RFC 2544 benchmarking range), never from the private ranges that are
# real networks on users' machines. The node's address sits on an interface the scripts create (an empty
# bridge: kernels without the dummy driver still have bridges), so the API server advertises a non-loopback
# address and the kubelet is reachable at the node's InternalIP.
NODE_IF="stego-k8s0"
NODE_IP="198.18.0.1"
NODE_NAME="stego-local"
SERVICE_CIDR="198.18.16.0/20"
KUBERNETES_SVC_IP="198.18.16.1"
DNS_SVC_IP="198.18.16.10"
POD_CIDR="198.18.32.0/20"
BRIDGE_IF="stego-cni0"
BRIDGE_GW="198.18.32.1"
APISERVER_PORT=6443
ETCD_CLIENT_PORT=12379
ETCD_PEER_PORT=12380
CLUSTER_DOMAIN="cluster.local"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Polls a command until it succeeds or the deadline (seconds) passes.
wait_for() {
  local what="$1" deadline="$2"; shift 2
  local end=$((SECONDS + deadline))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || die "timed out after ${deadline}s waiting for $what"
    sleep 0.2
  done
}

# Starts a daemon in the background with its log under $STATE/logs and its pid under $STATE/pids.
start_daemon() {
  local name="$1"; shift
  mkdir -p "$STATE/logs" "$STATE/pids"
  if is_running "$name"; then log "$name already running"; return 0; fi
  setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$name.pid"
  log "started $name (pid $!)"
}

is_running() {
  local pidfile="$STATE/pids/$1.pid"
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# Stops a daemon started by start_daemon: SIGTERM, then SIGKILL after a deadline; waits until it is gone.
stop_daemon() {
  local name="$1" pidfile="$STATE/pids/$1.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local end=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop on SIGTERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    log "stopped $name"
  fi
  rm -f "$pidfile"
}

# Whether this kernel's nftables has the queue expression the NetworkPolicy enforcer's own rules use (tried in
# a scratch table, removed again).
nft_queue_supported() {
  local t=stego-k8s-probe ok=0
  nft add table inet "$t" 2>/dev/null && nft add chain inet "$t" c 2>/dev/null &&
    nft add rule inet "$t" c queue num "$NETPOL_QUEUE_ID" 2>/dev/null && ok=1
  nft delete table inet "$t" 2>/dev/null || true
  ((ok))
}

kubectl_local() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# Images built by images.sh from local files (never pulled).
LOCAL_IMAGE_PREFIX="stegocluster.local"
STEGO_NODE_IMAGE="${STEGO_NODE_IMAGE:-$LOCAL_IMAGE_PREFIX/stegocluster-node:local}"
STEGO_OPERATOR_IMAGE="${STEGO_OPERATOR_IMAGE:-$LOCAL_IMAGE_PREFIX/stegocluster-operator:local}"

# Pre-created hostPath PersistentVolumes behind the default StorageClass "standard" (stage 2).
LOCAL_PV_COUNT="${LOCAL_PV_COUNT:-16}"
LOCAL_PV_SIZE="${LOCAL_PV_SIZE:-2Gi}"

# containerd's proxy: a closed port on loopback (discard), so no registry is ever reached.
NO_REGISTRY_PROXY="http://127.0.0.1:9"
