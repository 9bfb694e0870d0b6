// The Kubernetes SD stand-in the Prometheus Operator test feeds into the generated configuration: endpoints
// are the running pods a Service selects, one per port, with Kubernetes SD's meta labels, and only the
// `kubernetes_sd_configs` of a scrape config are replaced (in the namespaces it names).
import { expect } from 'chai';
import { endpointTargets, withStaticTargets, type PodObj, type ServiceObj } from './service-monitor.js';

const svc = (name: string, namespace: string, selector: Record<string, string> | undefined, ports: string[]): ServiceObj =>
  ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels: { 'app.kubernetes.io/name': name } }, spec: { ...(selector ? { selector } : {}), ports: ports.map((p, i) => ({ name: p, port: 8000 + i })) } }) as ServiceObj;
const pod = (name: string, namespace: string, labels: Record<string, string>, phase = 'Running'): PodObj =>
  ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels }, spec: { containers: [{ name: 'node' }] }, status: { phase } }) as PodObj;

describe('observability: endpoints and Kubernetes SD labels for the generated configuration', () => {
  const services = [svc('images', 'shop', { app: 'images' }, ['http', 'raft']), svc('external', 'shop', undefined, ['http']), svc('other', 'elsewhere', { app: 'images' }, ['http'])];
  const pods = [pod('images-0', 'shop', { app: 'images', 'stego.io/cluster': 'images' }), pod('images-1', 'shop', { app: 'images' }, 'Pending'), pod('web-0', 'shop', { app: 'web' }), pod('images-0', 'elsewhere', { app: 'images' })];

  it('lists the running pods each Service selects, once per port, in its own namespace', () => {
    const targets = endpointTargets(services, pods, (p) => (p.metadata!.namespace === 'shop' ? '127.0.0.1:9000' : undefined));
    expect(targets.map((t) => `${t.namespace}/${t.service.name}/${t.pod.name}/${t.portName}`)).to.deep.equal(['shop/images/images-0/http', 'shop/images/images-0/raft']);
    expect(targets[0]!.pod).to.deep.include({ container: 'node', labels: { app: 'images', 'stego.io/cluster': 'images' } });
  });

  it('replaces kubernetes_sd_configs by static targets with the meta labels, keeping the rest', () => {
    const targets = endpointTargets(services, pods, () => '127.0.0.1:9000');
    const relabel = [{ source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' }];
    const config = {
      global: { scrape_interval: '1s' },
      scrape_configs: [
        { job_name: 'serviceMonitor/shop/images/0', kubernetes_sd_configs: [{ role: 'endpoints', namespaces: { names: ['shop'] } }], relabel_configs: relabel },
        { job_name: 'static', static_configs: [{ targets: ['127.0.0.1:1'] }] },
      ],
    };
    const out = withStaticTargets(config, targets) as { global: unknown; scrape_configs: Record<string, unknown>[] };
    expect(out.global).to.deep.equal(config.global);
    expect(out.scrape_configs[1]).to.deep.equal(config.scrape_configs[1]);
    const job = out.scrape_configs[0]!;
    expect(job).to.not.have.property('kubernetes_sd_configs');
    expect(job.relabel_configs).to.equal(relabel);
    const statics = job.static_configs as { targets: string[]; labels: Record<string, string> }[];
    expect(statics.map((s) => s.labels.__meta_kubernetes_namespace)).to.deep.equal(['shop', 'shop']);
    expect(statics[0]!.labels).to.include({
      __meta_kubernetes_service_name: 'images', __meta_kubernetes_endpoint_port_name: 'http', __meta_kubernetes_pod_name: 'images-0',
      __meta_kubernetes_pod_label_stego_io_cluster: 'images', __meta_kubernetes_pod_labelpresent_stego_io_cluster: 'true', __meta_kubernetes_service_label_app_kubernetes_io_name: 'images',
    });
    expect(statics[0]!.targets).to.deep.equal(['127.0.0.1:9000']);
  });

  it('refuses a discovery role it does not emulate', () => {
    expect(() => withStaticTargets({ scrape_configs: [{ job_name: 'pods', kubernetes_sd_configs: [{ role: 'pod' }] }] }, [])).to.throw(/role pod is not emulated/);
  });
});
