#!/usr/bin/env bash
# Prints the host state the local Kubernetes may touch, one sorted line per fact, so two snapshots (before
# up, after down) can be compared with diff: our processes, mounts, network interfaces and namespaces,
# iptables rules, Kubernetes cgroups, the sysctls the kubelet and kube-proxy change, and host directories.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"

{
  # Processes: anything run from our caches or state, and the daemons the scripts start.
  ps -eo pid=,args= | awk -v c="$STEGO_CACHE/" -v s="$STATE/" -v self="$$" '
    $2 != "awk" && $2 !~ /(^|\/)go$/ && (index($2, c) == 1 || index($0, s) ||
      $2 ~ /(^|\/)(etcd|containerd|containerd-shim[a-z0-9-]*|coredns|kube-[a-z-]+|kubelet|runc)$/) {
      $1 = ""; print "process" $0 }'
  awk '{ print "mount " $2 " " $3 }' /proc/self/mounts
  ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print "interface " $2 }'
  ip -o addr show | awk '{ print "address " $2 " " $4 }'
  ls /run/netns 2>/dev/null | sed 's/^/netns /' || true
  for table in filter nat mangle raw; do
    iptables -t "$table" -S 2>/dev/null | sed "s/^/iptables $table /" || true
  done
  for root in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    for top in kubepods kubepods.slice stegocluster-k8s system.slice/containerd.service; do
      [[ -d "$root$top" ]] && find "$root$top" -type d | sed 's/^/cgroup /'
    done
  done
  sysctl -e kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward \
    net.bridge.bridge-nf-call-iptables net.netfilter.nf_conntrack_max \
    net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_close_wait \
    2>/dev/null | sed 's/^/sysctl /'
  for d in /var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /etc/cni /run/containerd \
    /var/lib/containerd /etc/kubernetes /run/flannel "$STATE"; do
    [[ -e "$d" ]] && echo "path $d"
  done
} | sort
