#!/usr/bin/env bash
# Stage 1 of the local Kubernetes: etcd (Debian's etcd-server) and kube-apiserver with RBAC, on an address of
# an interface this script creates. Idempotent: a second run with everything up changes nothing.
# Prints the admin kubeconfig's path on stdout (last line), e.g.  export KUBECONFIG=$(e2e/local/stage1-up.sh)
# Needs the binaries built (e2e/local/build.sh stage1); STEGO_K8S_BUILD=1 builds missing ones first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
source "$here/pki.sh"

[[ $EUID -eq 0 ]] || die "needs root (creates a network interface)"
if [[ ! -x "$K8S_BIN/kube-apiserver" || ! -x "$K8S_BIN/kubectl" ]]; then
  [[ "${STEGO_K8S_BUILD:-0}" == 1 ]] || die "kube-apiserver/kubectl $K8S_VERSION not built: run e2e/local/build.sh stage1"
  "$here/build.sh" stage1 >&2
fi
command -v etcd >/dev/null || die "etcd not found: apt-get install etcd-server"
command -v openssl >/dev/null || die "openssl not found: apt-get install openssl"

mkdir -p "$STATE"
chmod 700 "$STATE"
# Host state to restore on teardown, recorded before anything of ours changes it.
if [[ ! -f "$STATE/host-sysctls" ]]; then
  sysctl -e kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward \
    net.bridge.bridge-nf-call-iptables net.netfilter.nf_conntrack_max \
    net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_close_wait \
    2>/dev/null | sed 's/ = /=/' >"$STATE/host-sysctls.tmp" || true
  mv "$STATE/host-sysctls.tmp" "$STATE/host-sysctls"
fi

if ! ip link show "$NODE_IF" >/dev/null 2>&1; then
  ip link add "$NODE_IF" type bridge
  log "created interface $NODE_IF"
fi
ip addr replace "$NODE_IP/32" dev "$NODE_IF"
ip link set "$NODE_IF" up

make_control_plane_pki

start_daemon etcd etcd --name stegocluster-local --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "stegocluster-local=http://127.0.0.1:$ETCD_PEER_PORT"
wait_for "etcd health" 20 curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health"

start_daemon kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
  --service-cluster-ip-range "$SERVICE_CIDR" --service-node-port-range 30000-32767 \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --allow-privileged=true --shutdown-delay-duration=0s --profiling=false \
  --endpoint-reconciler-type lease
wait_for "kube-apiserver /readyz" 30 kubectl_local get --raw /readyz
log "stage 1 ready: KUBECONFIG=$KUBECONFIG_PATH"
echo "$KUBECONFIG_PATH"
