#!/usr/bin/env bash
# Tears the local Kubernetes down (either stage): stops every pod and daemon the up scripts started, then
# removes what they and the kubelet/kube-proxy/CNI/NetworkPolicy enforcer left on the host: mounts, network
# namespaces, interfaces, iptables chains, the enforcer's nftables table, cgroups, directories outside $STATE,
# and restores the sysctls recorded before start-up.
# Idempotent; safe to run when nothing is up. STEGO_K8S_KEEP_STATE=1 keeps $STATE's certificates.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
[[ $EUID -eq 0 ]] || die "needs root"

CONTAINERD_SOCK="$STATE/run/containerd/containerd.sock"

# Pods first, while containerd still runs: CNI DEL releases their addresses, veths and netns.
if is_running containerd; then
  stop_daemon kubelet
  if [[ -x "$TOOLS_BIN/crictl" ]]; then
    "$TOOLS_BIN/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" --timeout 30s rmp --all --force >/dev/null 2>&1 || true
  fi
  # Anything left (e.g. without crictl): kill and delete the tasks and containers directly.
  for id in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks list -q 2>/dev/null); do
    ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  sleep 0.5
  for id in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks list -q 2>/dev/null); do
    ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
  done
  for id in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io containers list -q 2>/dev/null); do
    ctr --address "$CONTAINERD_SOCK" -n k8s.io containers delete "$id" >/dev/null 2>&1 || true
  done
fi
# Everything else at once (each takes a second or two to shut down gracefully), etcd last: the API server
# does not finish its shutdown with etcd gone.
for d in kubelet kube-proxy kube-scheduler kube-controller-manager containerd kube-apiserver; do
  stop_daemon "$d" &
done
wait
stop_daemon etcd

# Shims outlive containerd by design; ours are the ones whose address is under $STATE.
for pid in $(pgrep -f "containerd-shim.*-address $STATE/" || true); do
  kill -KILL "$pid" 2>/dev/null || true
done

# Mounts under our state (container rootfs, shm, netns bind mounts, kubelet volumes), deepest first.
if [[ -d "$STATE" ]]; then
  awk -v s="$STATE/" 'index($2, s) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
fi
# Network namespaces the CNI plugins created for our pods: only `cni-*` names (what containerd's CRI names
# pod sandboxes' namespaces) that were not there before stage 2 started, never other software's namespaces.
if [[ -f "$STATE/netns-before" ]]; then
  for ns in $(ls /run/netns 2>/dev/null | grep '^cni-'); do
    grep -qx "$ns" "$STATE/netns-before" || { umount -l "/run/netns/$ns" 2>/dev/null || true; rm -f "/run/netns/$ns"; }
  done
fi

# Interfaces: the node interface, the pod bridge and any veth left attached to it.
for ifc in $(ip -o link show master "$BRIDGE_IF" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
  ip link del "$ifc" 2>/dev/null || true
done
for ifc in "$BRIDGE_IF" "$NODE_IF" kube-ipvs0; do
  ip link show "$ifc" >/dev/null 2>&1 && ip link del "$ifc"
done

# iptables: the chains kube-proxy, the kubelet and the CNI plugins create (KUBE-*, CNI-*), and the rules in
# built-in chains that jump to them. Rules of anyone else are left as they are.
# One iptables-restore --noflush per table: deletes the jumps, flushes and deletes the chains in one atomic
# step (one iptables call per rule takes seconds with kube-proxy's hundreds of rules).
ours='(KUBE-|CNI-|STEGO-K8S-)'
for cmd in iptables ip6tables; do
  command -v "$cmd-restore" >/dev/null || continue
  for table in filter nat mangle raw; do
    rules="$("$cmd" -t "$table" -S 2>/dev/null)" || continue
    chains="$(awk -v re="^$ours" '$1 == "-N" && $2 ~ re { print $2 }' <<<"$rules")"
    jumps="$({ grep -E -- "^-A [A-Z]+ .*-j $ours" <<<"$rules" || true; } | { grep -vE "^-A $ours" || true; } | sed 's/^-A /-D /')"
    [[ -n "$chains$jumps" ]] || continue
    {
      echo "*$table"
      [[ -n "$jumps" ]] && echo "$jumps"
      for chain in $chains; do echo "-F $chain"; done
      for chain in $chains; do echo "-X $chain"; done
      echo "COMMIT"
    } | "$cmd-restore" --noflush || log "warning: $cmd-restore could not remove every rule in $table"
  done
done
# The NetworkPolicy enforcer's nftables table: it removes it itself only on SIGINT, and the kubelet stops
# containers with SIGTERM. Its NFQUEUE binding went with its process (a netlink socket).
if command -v nft >/dev/null && nft list table inet "$NETPOL_NFT_TABLE" >/dev/null 2>&1; then
  nft delete table inet "$NETPOL_NFT_TABLE"
fi
# Conntrack entries of our address ranges.
if command -v conntrack >/dev/null; then
  for net in 198.18.0.0/15; do
    conntrack -D -s "$net" >/dev/null 2>&1 || true
    conntrack -D -d "$net" >/dev/null 2>&1 || true
  done
fi

# cgroups: the kubelet's kubepods hierarchy and containerd's, in every v1 controller and the unified tree.
for root in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
  for top in kubepods kubepods.slice stegocluster-k8s; do
    [[ -d "$root$top" ]] || continue
    find "$root$top" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
done

# Directories the kubelet and CNI write outside their configured roots, removed only if the up script found
# them absent (recorded in dirs-before).
if [[ -f "$STATE/dirs-created" ]]; then
  while read -r d; do [[ -n "$d" ]] && rm -rf "$d"; done <"$STATE/dirs-created"
fi

# sysctls recorded before start-up.
if [[ -f "$STATE/host-sysctls" ]]; then
  while IFS='=' read -r key value; do
    [[ -n "$key" ]] && sysctl -qw "$key=$value" >/dev/null 2>&1 || true
  done <"$STATE/host-sysctls"
fi

if [[ "${STEGO_K8S_KEEP_STATE:-0}" == 1 ]]; then
  find "$STATE" -mindepth 1 -maxdepth 1 ! -name pki ! -name '*.kubeconfig' -exec rm -rf {} +
else
  rm -rf "$STATE"
fi
log "local Kubernetes down"
