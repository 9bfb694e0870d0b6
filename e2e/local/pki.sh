# Certificates and kubeconfigs for the local Kubernetes (sourced by the up scripts). Generated once per state
# directory with openssl, ECDSA P-256 throughout (key generation takes milliseconds where RSA takes seconds on a
# busy machine); every identity is signed by one CA that lives only in $STATE/pki.

PKI="$STATE/pki"

# Issues a certificate signed by the CA. Args: name, subject, optional subjectAltName, optional extendedKeyUsage.
issue_cert() {
  local name="$1" subj="$2" san="${3:-}" eku="${4:-clientAuth}"
  [[ -f "$PKI/$name.crt" ]] && return 0
  local ext="$PKI/$name.ext"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$eku"
    [[ -n "$san" ]] && echo "subjectAltName=$san"
  } >"$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 30 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

# Writes a kubeconfig for a client certificate issued by issue_cert.
write_kubeconfig() {
  local name="$1" user="$2" out="$3"
  [[ -f "$out" ]] && return 0
  cat >"$out.tmp" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: stegocluster-local
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$name.crt")
    client-key-data: $(base64 -w0 "$PKI/$name.key")
contexts:
- name: stegocluster-local
  context:
    cluster: stegocluster-local
    user: $user
current-context: stegocluster-local
KCFG
  chmod 600 "$out.tmp"
  mv "$out.tmp" "$out"
}

make_control_plane_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [[ ! -f "$PKI/ca.crt" ]]; then
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$PKI/ca.key" -days 30 \
      -subj "/CN=stegocluster-local-ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out "$PKI/ca.crt" 2>/dev/null
  fi
  issue_cert apiserver "/CN=kube-apiserver" \
    "IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN" \
    serverAuth
  # The API server's client identity towards kubelets (logs, exec, port-forward).
  issue_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  issue_cert admin "/O=system:masters/CN=stegocluster-admin"
  if [[ ! -f "$PKI/sa.key" ]]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key" 2>/dev/null
    openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  write_kubeconfig admin stegocluster-admin "$KUBECONFIG_PATH"
}

make_node_pki() {
  issue_cert controller-manager "/CN=system:kube-controller-manager"
  issue_cert scheduler "/CN=system:kube-scheduler"
  issue_cert kube-proxy "/CN=system:kube-proxy"
  issue_cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME"
  issue_cert kubelet-serving "/CN=$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME" serverAuth
  write_kubeconfig controller-manager system:kube-controller-manager "$STATE/controller-manager.kubeconfig"
  write_kubeconfig scheduler system:kube-scheduler "$STATE/scheduler.kubeconfig"
  write_kubeconfig kube-proxy system:kube-proxy "$STATE/kube-proxy.kubeconfig"
  write_kubeconfig kubelet-client "system:node:$NODE_NAME" "$STATE/kubelet.kubeconfig"
}
