#!/usr/bin/env bash
# Checks that teardown leaves the host as it found it: snapshots the host state, brings the given stage up
# (optionally runs a workload), tears it down and compares. Usage: check-teardown.sh stage1|stage2
# Exit status 0 and "teardown clean" when nothing differs; otherwise prints the difference and fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
stage="${1:-stage1}"
[[ ! -e "$STATE" ]] || die "the local Kubernetes is up ($STATE exists): tear it down first (down.sh)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$here/host-state.sh" >"$work/before"
case "$stage" in
  stage1) "$here/stage1-up.sh" >/dev/null ;;
  stage2)
    "$here/stage2-up.sh" >/dev/null
    # A pod on the bridge network and a Service, so kube-proxy, CNI, cgroups and mounts all get used.
    kubectl_local -n default run teardown-probe --image="$LOCAL_IMAGE_PREFIX/busybox:local" \
      --image-pull-policy=Never --restart=Never --command -- sleep 3600 >/dev/null
    kubectl_local -n default expose pod teardown-probe --port 80 >/dev/null
    kubectl_local -n default wait --for=condition=Ready pod/teardown-probe --timeout=120s >/dev/null
    # A NetworkPolicy selecting it, so the enforcer puts its address in its nftables set and queues its packets.
    kubectl_local -n default apply -f - >/dev/null <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: teardown-probe }
spec:
  podSelector: { matchLabels: { run: teardown-probe } }
  policyTypes: [Ingress]
YAML
    ;;
  *) die "usage: $0 stage1|stage2" ;;
esac
"$here/host-state.sh" >"$work/during"
if [[ "$stage" == stage2 ]]; then
  # The enforcer's footprint must be there while up, or its absence afterwards would prove nothing.
  # Its queue, and what diverts packets to it: its own nftables table, or where the kernel has no nftables
  # queue expression, the STEGO-K8S-NETPOL chain (stage2-up.sh).
  diversion="nftables table inet $NETPOL_NFT_TABLE"
  nft_queue_supported || diversion="iptables mangle -N STEGO-K8S-NETPOL"
  for fact in "nfqueue $NETPOL_QUEUE_ID " "$diversion"; do
    grep -q "^$fact" "$work/during" || { "$here/down.sh"; die "not present while stage 2 was up: $fact"; }
  done
fi
"$here/down.sh"
"$here/host-state.sh" >"$work/after"

changed_during="$(diff "$work/before" "$work/during" | grep -c '^[<>]' || true)"
# Other work on the machine changes interfaces, namespaces and rules of its own while this runs: only
# differences that can be ours fail the check (our processes, names, address ranges and chains, Kubernetes
# cgroups, the sysctls, the host paths); the rest is printed as ignored.
ours="^(process|cgroup|sysctl|path|nfqueue) |stego|kube|cni|veth|containerd|198\.18\.|KUBE-|CNI-|STEGO-K8S-|$STATE"
diff "$work/before" "$work/after" | grep '^[<>]' >"$work/diff" || true
grep -E -- "$ours" "$work/diff" >"$work/ours" || true
grep -vE -- "$ours" "$work/diff" >"$work/ignored" || true
if [[ -s "$work/ignored" ]]; then
  echo "ignored (changed by other work on this machine):"
  sed 's/^/  /' "$work/ignored"
fi
if [[ ! -s "$work/ours" ]]; then
  echo "teardown clean ($stage: $changed_during host facts changed while up, all restored)"
else
  echo "left behind or changed (< before, > after):"
  cat "$work/ours"
  echo "teardown left state behind ($stage)" >&2
  exit 1
fi
