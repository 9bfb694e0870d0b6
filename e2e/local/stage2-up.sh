#!/usr/bin/env bash
# Stage 2 of the local Kubernetes: a full single-node cluster. Stage 1 (etcd, kube-apiserver) plus
# kube-controller-manager, kube-scheduler, containerd + runc + CNI bridge, kubelet, kube-proxy and CoreDNS
# (serving cluster.local only), and the NetworkPolicy enforcer kube-network-policies (a DaemonSet: nftables +
# NFQUEUE). Images come from images.sh (never pulled). Idempotent.
# Prints the admin kubeconfig's path on stdout (last line). STEGO_K8S_BUILD=1 builds missing binaries first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
source "$here/pki.sh"

[[ $EUID -eq 0 ]] || die "needs root"
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  [[ -x "$K8S_BIN/$b" ]] && continue
  [[ "${STEGO_K8S_BUILD:-0}" == 1 ]] || die "$b $K8S_VERSION not built: run e2e/local/build.sh"
  "$here/build.sh" "$b" >&2
done
for t in coredns; do
  [[ -x "$TOOLS_BIN/$t" ]] || { [[ "${STEGO_K8S_BUILD:-0}" == 1 ]] && "$here/build.sh" "$t" >&2; } || die "$t not built: run e2e/local/build.sh $t"
done
[[ -x "$NETPOL_BIN" ]] || { [[ "${STEGO_K8S_BUILD:-0}" == 1 ]] && "$here/build.sh" kube-network-policies >&2; } ||
  die "kube-network-policies not built: run e2e/local/build.sh kube-network-policies"
for c in containerd runc ctr iptables nft; do command -v "$c" >/dev/null || die "$c not found (see docs/e2e.md for the apt packages)"; done
CNI_BIN_DIR="${CNI_BIN_DIR:-/usr/lib/cni}"
[[ -x "$CNI_BIN_DIR/bridge" ]] || die "CNI plugins not found in $CNI_BIN_DIR: apt-get install containernetworking-plugins"

# Host facts to undo on teardown, recorded before anything of ours starts.
mkdir -p "$STATE"; chmod 700 "$STATE"
if [[ ! -f "$STATE/netns-before" ]]; then
  ls /run/netns 2>/dev/null >"$STATE/netns-before" || : >"$STATE/netns-before"
  : >"$STATE/dirs-created.tmp"
  # The kubelet, containerd's shims and the CNI library write here whatever their configured roots are.
  for d in /var/log/pods /var/log/containers /var/lib/cni /run/netns /run/containerd /var/lib/kubelet /etc/cni; do
    [[ -e "$d" ]] || echo "$d" >>"$STATE/dirs-created.tmp"
  done
  mv "$STATE/dirs-created.tmp" "$STATE/dirs-created"
fi

"$here/stage1-up.sh" >/dev/null
make_node_pki

CONTAINERD_RUN="$STATE/run/containerd"
CONTAINERD_SOCK="$CONTAINERD_RUN/containerd.sock"
mkdir -p "$STATE/containerd" "$CONTAINERD_RUN" "$STATE/cni/net.d" "$STATE/cni/ipam" "$STATE/kubelet" "$STATE/pod-logs"

# No registry is configured and the sandbox image is the local pause image, so nothing is ever pulled.
cat >"$STATE/containerd/config.toml" <<TOML
version = 2
root = "$STATE/containerd/root"
state = "$CONTAINERD_RUN"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_RUN/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$LOCAL_IMAGE_PREFIX/pause:local"
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails in runc ("can't get final child's PID").
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
TOML

# A bridge with the pod range from 198.18.0.0/15; no masquerading: pods only ever talk to addresses on
# this machine (other pods, Service IPs, the node's address).
cat >"$STATE/cni/net.d/10-stegocluster.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "stegocluster",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE_IF",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$BRIDGE_GW" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON

# Registry traffic goes to a closed local port: an image missing locally fails to pull at once instead of
# being fetched from the internet.
start_daemon containerd env HTTP_PROXY="$NO_REGISTRY_PROXY" HTTPS_PROXY="$NO_REGISTRY_PROXY" NO_PROXY= \
  containerd --config "$STATE/containerd/config.toml"
wait_for "containerd socket" 20 ctr --address "$CONTAINERD_SOCK" version

# Base images (pause for sandboxes, busybox, coredns, nginx) built from local files and imported.
mapfile -t base_images < <("$here/images.sh" base)
"$here/images.sh" import "${base_images[@]}"

# Pods may reach only addresses in 198.18.0.0/15 (this machine's interfaces, pods, Services).
if ! iptables -S STEGO-K8S-EGRESS >/dev/null 2>&1; then
  iptables -N STEGO-K8S-EGRESS
  iptables -A STEGO-K8S-EGRESS -d 198.18.0.0/15 -j RETURN
  iptables -A STEGO-K8S-EGRESS -j DROP
  iptables -I FORWARD 1 -s "$POD_CIDR" -j STEGO-K8S-EGRESS
fi

start_daemon kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10257 --leader-elect=false \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
  --use-service-account-credentials --service-cluster-ip-range "$SERVICE_CIDR" \
  --allocate-node-cidrs --cluster-cidr "$POD_CIDR" --node-cidr-mask-size 20 \
  --profiling=false
start_daemon kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig "$STATE/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --profiling=false

# Pods get only the cluster DNS: an empty host resolv.conf keeps the host's resolvers out of them.
: >"$STATE/resolv.conf"
cat >"$STATE/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $PKI/ca.crt }
authorization: { mode: Webhook }
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
# This machine mounts cgroup v1 controllers; from Kubernetes 1.35 the kubelet refuses them unless told not to.
failCgroupV1: false
failSwapOn: false
clusterDNS: [$DNS_SVC_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $STATE/resolv.conf
podLogsDir: $STATE/pod-logs
serializeImagePulls: false
# Disk and memory of a shared build machine: evict only when nearly full, never garbage-collect our images.
evictionHard: { memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1% }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 110
YAML
start_daemon kubelet "$K8S_BIN/kubelet" --config "$STATE/kubelet-config.yaml" \
  --kubeconfig "$STATE/kubelet.kubeconfig" --root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet/pki" \
  --node-ip "$NODE_IP" --hostname-override "$NODE_NAME"

cat >"$STATE/kube-proxy-config.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: { kubeconfig: $STATE/kube-proxy.kubeconfig }
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# NodePorts on the node's address only (no route_localnet sysctl for 127.0.0.1 NodePorts).
nodePortAddresses: ["$NODE_IP/32"]
# Zeros leave the host's conntrack sysctls as they are.
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
YAML
start_daemon kube-proxy "$K8S_BIN/kube-proxy" --config "$STATE/kube-proxy-config.yaml"

wait_for "node $NODE_NAME Ready" 90 kubectl_local wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s

# CoreDNS: answers cluster.local and reverse lookups from the API; any other name is refused (no forward).
sed -e "s|@DNS_SVC_IP@|$DNS_SVC_IP|g" -e "s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|g" \
  -e "s|@COREDNS_IMAGE@|$LOCAL_IMAGE_PREFIX/coredns:$COREDNS_VERSION|g" "$here/manifests/coredns.yaml" |
  kubectl_local apply -f - >/dev/null
wait_for "CoreDNS available" 90 kubectl_local -n kube-system wait --for=condition=Available deployment/coredns --timeout=2s
# NetworkPolicy enforcement: ready once its pod runs, it has bound its NFQUEUE and packets are diverted to it
# (by its own nftables table, or by the STEGO-K8S-NETPOL chain below).
sed -e "s|@NETPOL_IMAGE@|$LOCAL_IMAGE_PREFIX/kube-network-policies:$KUBE_NETWORK_POLICIES_VERSION|g" \
  -e "s|@NETPOL_QUEUE_ID@|$NETPOL_QUEUE_ID|g" -e "s|@NETPOL_METRICS_PORT@|$NETPOL_METRICS_PORT|g" \
  "$here/manifests/kube-network-policies.yaml" | kubectl_local apply -f - >/dev/null
wait_for "kube-network-policies running" 90 kubectl_local -n kube-system rollout status daemonset/kube-network-policies --timeout=2s
wait_for "NFQUEUE $NETPOL_QUEUE_ID bound by kube-network-policies" 30 grep -qE "^ *$NETPOL_QUEUE_ID " /proc/net/netfilter/nfnetlink_queue
if nft_queue_supported; then
  wait_for "nftables table inet $NETPOL_NFT_TABLE" 30 nft list table inet "$NETPOL_NFT_TABLE"
elif ! iptables -t mangle -S STEGO-K8S-NETPOL >/dev/null 2>&1; then
  # This kernel lacks nftables' queue expression (CONFIG_NFT_QUEUE; nfnetlink_queue itself is there), so the
  # enforcer's own table cannot load: it logs the error and retries. iptables' NFQUEUE target (xt_NFQUEUE)
  # diverts the packets it would have: the first packet of every connection forwarded to or from a pod goes
  # to its queue, where it evaluates the policies and gives the verdict. Forwarded traffic only, as the
  # enforcer exempts the host's own root processes (kubelet probes, the API server's proxy). In mangle, so an
  # accepted packet goes on through the filter table's FORWARD rules (kube-proxy's, STEGO-K8S-EGRESS).
  # Installed only now that the queue is bound: with no listener a queued packet is dropped (fail closed, the
  # enforcer's default).
  iptables -t mangle -N STEGO-K8S-NETPOL
  iptables -t mangle -A STEGO-K8S-NETPOL -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  iptables -t mangle -A STEGO-K8S-NETPOL -s "$POD_CIDR" -j NFQUEUE --queue-num "$NETPOL_QUEUE_ID"
  iptables -t mangle -A STEGO-K8S-NETPOL -d "$POD_CIDR" -j NFQUEUE --queue-num "$NETPOL_QUEUE_ID"
  iptables -t mangle -A FORWARD -j STEGO-K8S-NETPOL
fi
# Storage: a default StorageClass named like kind's ("standard") backed by local volumes under $STATE (local, unlike hostPath, honours fsGroup),
# created ahead (no provisioner to build); WaitForFirstConsumer binds them where the pod is scheduled.
if ! kubectl_local get storageclass standard >/dev/null 2>&1; then
  {
    cat <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: { storageclass.kubernetes.io/is-default-class: "true" }
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
YAML
    for i in $(seq -w 1 "$LOCAL_PV_COUNT"); do
      mkdir -p "$STATE/volumes/pv$i"
      cat <<YAML
---
apiVersion: v1
kind: PersistentVolume
metadata: { name: local-pv$i, labels: { stegocluster.local/volume: "true" } }
spec:
  storageClassName: standard
  capacity: { storage: $LOCAL_PV_SIZE }
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  local: { path: $STATE/volumes/pv$i }
  nodeAffinity:
    required:
      nodeSelectorTerms: [{ matchExpressions: [{ key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME] }] }]
YAML
    done
  } | kubectl_local apply -f - >/dev/null
fi
wait_for "default service account" 30 kubectl_local -n default get serviceaccount default
log "stage 2 ready: KUBECONFIG=$KUBECONFIG_PATH"
echo "$KUBECONFIG_PATH"
