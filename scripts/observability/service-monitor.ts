// The part of Kubernetes that a Prometheus built without service discovery (the build here leaves the SD
// plugins out) and a stage-1 API server (no endpoints controller) lack: the endpoints of each Service (the
// pods its selector matches, one per port) and the `__meta_kubernetes_*` labels Kubernetes SD (role
// endpoints) gives each of them. A test feeds them as static targets into the scrape configs the Prometheus
// Operator generated, in place of their `kubernetes_sd_configs`; the relabelings that then run are the
// Prometheus Operator's own.
import type { KObject } from '../../operator/src/k8s/client.js';

/** One endpoint address of a Service as Kubernetes SD (role endpoints) sees it: backed by a pod. */
export interface EndpointTarget {
  /** host:port Prometheus scrapes (the pod IP and the port in Kubernetes; a loopback process in a test). */
  address: string;
  namespace: string;
  service: { name: string; labels: Record<string, string> };
  pod: { name: string; labels: Record<string, string>; container: string; phase?: string };
  portName: string;
}

export type ServiceObj = KObject & { spec?: { selector?: Record<string, string>; ports?: { name?: string; port: number }[] } };
export type PodObj = KObject & { spec?: { containers?: { name: string }[] }; status?: { phase?: string } };

/** Kubernetes SD's label-name sanitising: every character that is not a letter, digit or _ becomes _. */
export function sanitize(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** The target labels Kubernetes SD (role endpoints) gives this endpoint address. */
export function endpointMetaLabels(t: EndpointTarget): Record<string, string> {
  const labels: Record<string, string> = {
    __address__: t.address,
    __meta_kubernetes_namespace: t.namespace,
    __meta_kubernetes_service_name: t.service.name,
    __meta_kubernetes_endpoints_name: t.service.name,
    __meta_kubernetes_endpoint_port_name: t.portName,
    __meta_kubernetes_endpoint_port_protocol: 'TCP',
    __meta_kubernetes_endpoint_ready: 'true',
    __meta_kubernetes_endpoint_address_target_kind: 'Pod',
    __meta_kubernetes_endpoint_address_target_name: t.pod.name,
    __meta_kubernetes_pod_name: t.pod.name,
    __meta_kubernetes_pod_container_name: t.pod.container,
    __meta_kubernetes_pod_phase: t.pod.phase ?? 'Running',
    __meta_kubernetes_pod_ready: 'true',
  };
  for (const [k, v] of Object.entries(t.service.labels)) {
    labels[`__meta_kubernetes_service_label_${sanitize(k)}`] = v;
    labels[`__meta_kubernetes_service_labelpresent_${sanitize(k)}`] = 'true';
  }
  for (const [k, v] of Object.entries(t.pod.labels)) {
    labels[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
    labels[`__meta_kubernetes_pod_labelpresent_${sanitize(k)}`] = 'true';
  }
  return labels;
}

/**
 * What the endpoints controller makes of these Services and pods: for every Service with a selector, each
 * running pod it selects, on each of the Service's ports. `addressOf` names the process that answers for a
 * pod (undefined: the pod has none, and it is left out, as a pod without an IP would be).
 */
export function endpointTargets(services: ServiceObj[], pods: PodObj[], addressOf: (pod: PodObj) => string | undefined): EndpointTarget[] {
  const out: EndpointTarget[] = [];
  for (const svc of services) {
    const selector = svc.spec?.selector;
    if (!selector || Object.keys(selector).length === 0) continue;
    for (const pod of pods) {
      const labels = pod.metadata?.labels ?? {};
      if (pod.metadata?.namespace !== svc.metadata?.namespace || pod.status?.phase !== 'Running') continue;
      if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) continue;
      const address = addressOf(pod);
      if (!address) continue;
      for (const port of svc.spec?.ports ?? []) {
        out.push({
          address,
          namespace: svc.metadata!.namespace!,
          service: { name: svc.metadata!.name!, labels: svc.metadata?.labels ?? {} },
          pod: { name: pod.metadata!.name!, labels, container: pod.spec?.containers?.[0]?.name ?? '', phase: 'Running' },
          portName: port.name ?? String(port.port),
        });
      }
    }
  }
  return out;
}

/**
 * A Prometheus configuration with every `kubernetes_sd_configs` (role endpoints) of its scrape configs
 * replaced by static targets: the endpoint targets in the namespaces that SD config names, with their meta
 * labels. Everything else, relabelings included, is kept as it is.
 */
export function withStaticTargets(config: Record<string, unknown>, targets: EndpointTarget[]): Record<string, unknown> {
  const scrapeConfigs = (config.scrape_configs ?? []) as Record<string, unknown>[];
  return {
    ...config,
    scrape_configs: scrapeConfigs.map((sc) => {
      const sds = sc.kubernetes_sd_configs as { role: string; namespaces?: { names?: string[] } }[] | undefined;
      if (!sds) return sc;
      const { kubernetes_sd_configs: _, ...rest } = sc;
      const staticConfigs = sds.flatMap((sd) => {
        if (sd.role !== 'endpoints') throw new Error(`${String(sc.job_name)}: kubernetes_sd_configs role ${sd.role} is not emulated (only endpoints)`);
        const namespaces = sd.namespaces?.names;
        return targets
          .filter((t) => !namespaces || namespaces.includes(t.namespace))
          .map((t) => {
            const { __address__, ...labels } = endpointMetaLabels(t);
            return { targets: [__address__], labels };
          });
      });
      return { ...rest, static_configs: staticConfigs };
    }),
  };
}
