// What a Prometheus managed by the Prometheus Operator does with a ServiceMonitor, for a test without a
// Kubernetes service discovery (the Prometheus built here leaves the SD plugins out): the scrape config the
// Prometheus Operator generates for one of its endpoints (role endpoints), and the `__meta_kubernetes_*`
// labels Kubernetes SD attaches to one member's endpoint, made from the operator's own Service and pod
// template. A real Prometheus then applies the relabelings, so a test sees which target labels the series
// of a real node end up with.
//
// The generated relabelings follow the Prometheus Operator's golden files
// (pkg/prometheus/testdata/*ServiceMonitor*.golden): the selector and port `keep`s, then namespace, service,
// pod, container, job and endpoint, then the endpoint's own relabelings, then the shard `hashmod` (1 shard).

export interface ServiceMonitorSpec {
  selector: { matchLabels?: Record<string, string> };
  endpoints: ServiceMonitorEndpoint[];
}

export interface ServiceMonitorEndpoint {
  port?: string;
  path?: string;
  interval?: string;
  relabelings?: Relabeling[];
}

/** A ServiceMonitor relabeling (the CRD's camelCase spelling of a Prometheus relabel_config). */
export interface Relabeling {
  sourceLabels?: string[];
  separator?: string;
  targetLabel?: string;
  regex?: string;
  modulus?: number;
  replacement?: string;
  action?: string;
}

/** One endpoint address of a Service as Kubernetes SD (role endpoints) sees it: backed by a pod. */
export interface EndpointTarget {
  /** host:port Prometheus scrapes (the pod IP and the port in Kubernetes; a loopback node in a test). */
  address: string;
  namespace: string;
  service: { name: string; labels: Record<string, string> };
  pod: { name: string; labels: Record<string, string>; container: string; phase?: string };
  portName: string;
}

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
    __meta_kubernetes_endpoint_port_name: t.portName,
    __meta_kubernetes_endpoint_ready: 'true',
    __meta_kubernetes_endpoint_address_target_kind: 'Pod',
    __meta_kubernetes_endpoint_address_target_name: t.pod.name,
    __meta_kubernetes_pod_name: t.pod.name,
    __meta_kubernetes_pod_container_name: t.pod.container,
    __meta_kubernetes_pod_phase: t.pod.phase ?? 'Running',
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

function relabelConfig(r: Relabeling): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.sourceLabels) out.source_labels = r.sourceLabels;
  if (r.separator !== undefined) out.separator = r.separator;
  if (r.targetLabel !== undefined) out.target_label = r.targetLabel;
  if (r.regex !== undefined) out.regex = r.regex;
  if (r.modulus !== undefined) out.modulus = r.modulus;
  if (r.replacement !== undefined) out.replacement = r.replacement;
  if (r.action !== undefined) out.action = r.action.toLowerCase();
  return out;
}

/**
 * The scrape config the Prometheus Operator generates for endpoint `index` of a ServiceMonitor, with the
 * Kubernetes SD replaced by static targets carrying the labels Kubernetes SD would give them.
 */
export function scrapeConfigFor(sm: { metadata: { name: string; namespace: string }; spec: ServiceMonitorSpec }, targets: EndpointTarget[], index = 0): Record<string, unknown> {
  const ep = sm.spec.endpoints[index];
  if (!ep) throw new Error(`ServiceMonitor ${sm.metadata.name} has no endpoint ${index}`);
  const relabel: Record<string, unknown>[] = [{ source_labels: ['job'], target_label: '__tmp_prometheus_job_name' }];
  for (const [k, v] of Object.entries(sm.spec.selector.matchLabels ?? {})) {
    relabel.push({ action: 'keep', source_labels: [`__meta_kubernetes_service_label_${sanitize(k)}`, `__meta_kubernetes_service_labelpresent_${sanitize(k)}`], regex: `(${v});true` });
  }
  if (ep.port) relabel.push({ action: 'keep', source_labels: ['__meta_kubernetes_endpoint_port_name'], regex: ep.port });
  relabel.push(
    { source_labels: ['__meta_kubernetes_endpoint_address_target_kind', '__meta_kubernetes_endpoint_address_target_name'], separator: ';', regex: 'Node;(.*)', replacement: '${1}', target_label: 'node' },
    { source_labels: ['__meta_kubernetes_endpoint_address_target_kind', '__meta_kubernetes_endpoint_address_target_name'], separator: ';', regex: 'Pod;(.*)', replacement: '${1}', target_label: 'pod' },
    { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
    { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
    { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
    { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
    { action: 'drop', source_labels: ['__meta_kubernetes_pod_phase'], regex: '(Failed|Succeeded)' },
    { source_labels: ['__meta_kubernetes_service_name'], target_label: 'job', replacement: '${1}' },
    { target_label: 'endpoint', replacement: ep.port ?? String(index) },
    ...(ep.relabelings ?? []).map(relabelConfig),
    { source_labels: ['__address__'], target_label: '__tmp_hash', modulus: 1, action: 'hashmod' },
    { source_labels: ['__tmp_hash'], regex: '0', action: 'keep' },
  );
  return {
    job_name: `serviceMonitor/${sm.metadata.namespace}/${sm.metadata.name}/${index}`,
    honor_labels: false,
    metrics_path: ep.path ?? '/metrics',
    ...(ep.interval ? { scrape_interval: ep.interval } : {}),
    static_configs: targets.map((t) => {
      const { __address__, ...labels } = endpointMetaLabels(t);
      return { targets: [__address__], labels };
    }),
    relabel_configs: relabel,
  };
}
