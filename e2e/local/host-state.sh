#!/usr/bin/env bash
# Prints the host state the local Kubernetes may touch, one sorted line per fact, so two snapshots (before
# up, after down) can be compared with diff: our processes, mounts, network interfaces and namespaces,
# iptables rules, nftables tables and NFQUEUE bindings, Kubernetes cgroups, the sysctls the kubelet and
# kube-proxy change, and host directories.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"

{
  # Processes: our binaries, anything whose arguments name our state directory, and every process in a
  # Kubernetes pod's cgroup.
  for pid in $(ps -eo pid=); do
    args="$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null)" || continue
    [[ -n "$args" ]] || continue
    case "$args" in
      "$K8S_BIN"/* | "$TOOLS_BIN"/* | *"$STATE/"*) echo "process $args" ;;
      *) grep -q kubepods "/proc/$pid/cgroup" 2>/dev/null && echo "process $args" ;;
    esac
  done || true
  awk '{ print "mount " $2 " " $3 }' /proc/self/mounts
  ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print "interface " $2 }'
  ip -o addr show | awk '{ print "address " $2 " " $4 }'
  ls /run/netns 2>/dev/null | sed 's/^/netns /' || true
  for table in filter nat mangle raw; do
    iptables -t "$table" -S 2>/dev/null | sed "s/^/iptables $table /" || true
  done
  # nftables tables (iptables-nft's own tables show here too) and bound NFQUEUE numbers with their netlink port.
  if command -v nft >/dev/null; then nft list tables 2>/dev/null | sed 's/^table /nftables table /' || true; fi
  if [[ -r /proc/net/netfilter/nfnetlink_queue ]]; then
    awk '{ print "nfqueue " $1 " port " $2 }' /proc/net/netfilter/nfnetlink_queue
  fi
  for root in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    for top in kubepods kubepods.slice stegocluster-k8s system.slice/containerd.service; do
      if [[ -d "$root$top" ]]; then find "$root$top" -type d | sed 's/^/cgroup /'; fi
    done
  done
  sysctl -e kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward \
    net.bridge.bridge-nf-call-iptables net.netfilter.nf_conntrack_max \
    net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_close_wait \
    2>/dev/null | sed 's/^/sysctl /'
  for d in /var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /etc/cni /run/containerd \
    /var/lib/containerd /etc/kubernetes /run/flannel "$STATE"; do
    if [[ -e "$d" ]]; then echo "path $d"; fi
  done
} | sort
