// The hardened-deployment policy (issue 13) as one function over a pod spec: the operator's unit tests apply it
// to every pod the builders and the chart produce, and the e2e suite to the pods really running on Kubernetes.
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';

const SECRET_NAME_RE = /(SECRET|PASSWORD|PASSWD|_TOKEN|_KEY|CREDENTIAL)S?$/;

/** What a pod spec breaks of the hardening rules (empty: none): pods non-root with RuntimeDefault seccomp, no host
 * namespaces or hostPath, no service-account token unless an API client; containers without privilege escalation,
 * with a read-only root, every capability dropped; secret-looking variables only from Secrets. `apiClient`: the pod needs its token. */
export function podHardeningProblems(spec: V1PodSpec, apiClient = false): string[] {
  const out: string[] = [];
  const pod = spec.securityContext ?? {};
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) out.push('pod shares a host namespace');
  for (const v of spec.volumes ?? []) if (v.hostPath) out.push(`volume ${v.name} is a hostPath`);
  if (!apiClient && spec.automountServiceAccountToken !== false) out.push('pod mounts a service-account token it does not need');
  const containers: V1Container[] = [...(spec.initContainers ?? []), ...spec.containers];
  for (const c of containers) {
    const sc = c.securityContext ?? {};
    const where = `container ${c.name}`;
    if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) out.push(`${where} may run as root (runAsNonRoot)`);
    if ((sc.runAsUser ?? pod.runAsUser) === 0) out.push(`${where} runs as uid 0`);
    if ((sc.seccompProfile ?? pod.seccompProfile)?.type !== 'RuntimeDefault') out.push(`${where} has no RuntimeDefault seccomp profile`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`${where} allows privilege escalation`);
    if (sc.readOnlyRootFilesystem !== true) out.push(`${where} has a writable root filesystem`);
    if (sc.privileged) out.push(`${where} is privileged`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) out.push(`${where} does not drop every capability`);
    if ((sc.capabilities?.add ?? []).length > 0) out.push(`${where} adds capabilities ${sc.capabilities!.add!.join(',')}`);
    for (const e of c.env ?? []) {
      if (SECRET_NAME_RE.test(e.name) && e.value !== undefined) out.push(`${where} sets ${e.name} inline instead of from a Secret`);
    }
  }
  return out;
}
