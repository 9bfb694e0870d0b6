// The ServiceMonitors, turned into a Prometheus configuration by the real Prometheus Operator (built from
// its Go module by scripts/build-prometheus-operator.sh), on a real kube-apiserver (stage 1 of e2e/local, or
// STEGO_KUBECONFIG): its CRDs (the module's own YAML) installed, our operator process reconciling a
// StegoCluster with `metrics.serviceMonitor.enabled` (it makes the members' Services and ServiceMonitor), the
// chart's ServiceMonitor and metrics Service for the operator (rendered by helm), and a Prometheus resource
// selecting both. The configuration the Prometheus Operator writes into its Secret (gzipped), with the
// variables its config reloader fills in ($(SHARD), $(POD_NAME), from the StatefulSet it made), is loaded
// into our real Prometheus as it is, except that each `kubernetes_sd_configs` becomes static targets with the
// labels Kubernetes SD would give the endpoints of the Services and pods in the API server (the Prometheus
// built here has no Kubernetes SD, and stage 1 has no endpoints controller; service-monitor.ts). Behind the
// member pod a real node answers, behind the operator pod the operator process; the dashboards' variables
// and the rules' `up{stegocluster!=""}` must find the node.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import { load, loadAll } from 'js-yaml';
import { names } from '../../operator/src/api/names.js';
import { API_VERSION, KIND } from '../../operator/src/api/types.js';
import { resourcePath, type KObject, type KubeClient } from '../../operator/src/k8s/client.js';
import { findHelm } from '../../operator/src/tools/helm.js';
import { createNamespace, deleteNamespace } from '../../operator/test/integration/env.js';
import { until } from '../../node/test/lb/local-cluster-harness.js';
import { expandVariables, panelQueries } from './dashboards.js';
import { ROOT } from './generate.js';
import { apiServerOrSkip, installCrds, runningPodFromTemplate } from './kube.js';
import { notBuilt, OperatorProcess, prometheusBinary, PrometheusServer, SingleNode } from './prometheus.js';
import { expandReloaderEnv, generatedConfigText, PrometheusOperatorProcess, reloaderEnv, prometheusOperatorCrds, prometheusOperatorDir, prometheusOperatorNotBuilt } from './prometheus-operator.js';
import { endpointTargets, withStaticTargets, type PodObj, type ServiceObj } from './service-monitor.js';

const OPERATOR_JS = join(ROOT, 'dist/operator/src/main.js');
const CLUSTER = 'images';
const RELEASE = 'stego-operator';
const PROMETHEUS = 'stego';
const OPERATOR_POD = `${RELEASE}-7d4b9c6f5-x8k2p`;

describe('observability: the ServiceMonitors through the real Prometheus Operator, into a real Prometheus', function () {
  this.timeout(180_000);
  let client: KubeClient;
  let namespace = '';
  const c = { namespace: '', name: CLUSTER };
  let promOperator: PrometheusOperatorProcess | undefined;
  let operator: OperatorProcess | undefined;
  const node = new SingleNode();
  let prom: PrometheusServer | undefined;
  let generated: Record<string, unknown> = {};
  /** What our Prometheus loaded: `generated` with static targets in place of Kubernetes SD. */
  let loaded: Record<string, unknown> = {};
  const smJob = (name: string): string => `serviceMonitor/${namespace}/${name}/0`;

  before(async function () {
    const dir = prometheusOperatorDir();
    const helm = findHelm();
    const missing = !prometheusBinary('prometheus') ? notBuilt('prometheus') : !dir ? prometheusOperatorNotBuilt() : !helm ? 'no helm (STEGO_HELM or ~/.cache/stegocluster/*/helm)' : '';
    const found = await apiServerOrSkip(this, missing);
    client = found.client;
    // before our operator starts, so it sees the monitoring.coreos.com API and makes the ServiceMonitor
    await installCrds(client, prometheusOperatorCrds(dir!));
    namespace = await createNamespace(client, 'stego-pmo');
    c.namespace = namespace;

    // the chart, as `helm install` would render it with its ServiceMonitor on: the ServiceMonitor and the
    // metrics Service go to the API server, the Deployment's pod template becomes the operator's pod
    const rendered = loadAll(execFileSync(helm!, [
      'template', RELEASE, join(ROOT, 'charts/stego-operator'), '--namespace', namespace, '--kube-version', '1.37.2',
      '--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.serviceMonitor.interval=1s',
      '--show-only', 'templates/servicemonitor.yaml', '--show-only', 'templates/service.yaml', '--show-only', 'templates/deployment.yaml',
    ], { encoding: 'utf8' })).filter(Boolean) as (KObject & { spec?: { template?: unknown } })[];
    const deployment = rendered.find((o) => o.kind === 'Deployment')!;
    for (const o of rendered.filter((x) => x.kind !== 'Deployment')) await client.create(o);

    operator = new OperatorProcess({ kubeconfig: found.source, watchNamespace: namespace });
    await operator.start(OPERATOR_JS);
    await runningPodFromTemplate(client, namespace, OPERATOR_POD, deployment.spec!.template as never, '127.0.0.1');

    await node.start(join(ROOT, 'dist/node/src/main.js'));
    await client.create({ apiVersion: API_VERSION, kind: KIND, metadata: { name: CLUSTER, namespace }, spec: { replicas: 1, metrics: { serviceMonitor: { enabled: true, interval: '1s' } } } } as KObject);
    // the StatefulSet controller's part: the member pod from the StatefulSet the operator made
    const sts = await until('the StatefulSet', () => client.find<KObject & { spec: { template: unknown } }>(resourcePath('apps/v1', 'StatefulSet', namespace, names.statefulSet(c))), 30_000, 100);
    await runningPodFromTemplate(client, namespace, names.pod(c, 0), sts.spec.template as never, '127.0.0.1', { 'statefulset.kubernetes.io/pod-name': names.pod(c, 0), 'apps.kubernetes.io/pod-index': '0' });
    await until("the operator's ServiceMonitor", () => client.find(resourcePath('monitoring.coreos.com/v1', 'ServiceMonitor', namespace, names.serviceMonitor(c))), 30_000, 100);

    promOperator = new PrometheusOperatorProcess({ dir: dir!, kubeconfig: found.source, namespace });
    await promOperator.start();
    // (our client's kind table knows only the kinds the operator uses: the collection path is spelled out)
    await client.request('POST', `/apis/monitoring.coreos.com/v1/namespaces/${namespace}/prometheuses`, {
      body: {
        apiVersion: 'monitoring.coreos.com/v1', kind: 'Prometheus', metadata: { name: PROMETHEUS, namespace },
        spec: { replicas: 1, serviceMonitorSelector: {}, serviceMonitorNamespaceSelector: {}, scrapeInterval: '1s', evaluationInterval: '1s' },
      },
    });
    const text = await until('the Prometheus Operator to generate a configuration with both ServiceMonitors', async () => {
      const t = await generatedConfigText(client, namespace, PROMETHEUS);
      const jobs = (((t ? load(t) : {}) as { scrape_configs?: { job_name: string }[] }).scrape_configs ?? []).map((j) => j.job_name);
      return t && jobs.includes(smJob(names.serviceMonitor(c))) && jobs.includes(smJob(RELEASE)) ? t : null;
    }, 60_000, 250);
    // the file as Prometheus reads it in the pod: the config reloader has replaced $(SHARD) and $(POD_NAME)
    expect(text, 'the generated file leaves the shard to the config reloader').to.include('$(SHARD)');
    generated = load(expandReloaderEnv(text, await reloaderEnv(client, namespace, PROMETHEUS))) as Record<string, unknown>;

    // the endpoints of every Service in the namespace, from the objects in the API server
    const services = (await client.list<ServiceObj>(`/api/v1/namespaces/${namespace}/services`)).items;
    const pods = (await client.list<PodObj>(`/api/v1/namespaces/${namespace}/pods`)).items;
    const processes: Record<string, string> = { [names.pod(c, 0)]: new URL(node.url).host, [OPERATOR_POD]: new URL(operator.url).host };
    loaded = withStaticTargets(generated, endpointTargets(services, pods, (p) => processes[p.metadata!.name!]));
    prom = new PrometheusServer({ targets: [], config: loaded });
    await prom.start();
  });

  after(async () => {
    await prom?.stop();
    await promOperator?.stop();
    await operator?.stop();
    await node.stop();
    if (client && namespace) await deleteNamespace(client, namespace).catch(() => undefined);
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    const jobs = ((loaded.scrape_configs ?? []) as { job_name: string; static_configs?: unknown[] }[]).map((j) => `${j.job_name}: ${j.static_configs?.length ?? 0} static targets`);
    const targets = await prom?.targetLabels().catch(() => undefined);
    console.log([
      '--- Prometheus Operator (warnings and errors)', ...(promOperator?.output.filter((l) => /level=(warn|error)/.test(l)).slice(-20) ?? []),
      '--- configuration loaded', ...jobs, `active targets: ${JSON.stringify(targets?.active)}; dropped: ${targets?.dropped}`,
      '--- Prometheus', ...(prom?.output.slice(-20) ?? []),
    ].join('\n'));
  });

  it('generates a scrape job per ServiceMonitor, discovering endpoints in the namespace', () => {
    const jobs = generated.scrape_configs as { job_name: string; kubernetes_sd_configs?: { role: string; namespaces?: { names?: string[] } }[]; relabel_configs?: unknown[] }[];
    for (const name of [names.serviceMonitor(c), RELEASE]) {
      const job = jobs.find((j) => j.job_name === smJob(name))!;
      expect(job.kubernetes_sd_configs, name).to.deep.equal([{ role: 'endpoints', namespaces: { names: [namespace] } }]);
      expect(job.relabel_configs?.length ?? 0, name).to.be.greaterThan(0);
    }
  });

  it("keeps one target per member (the headless Service's http port) with namespace, stegocluster and instance", async () => {
    const targets = await until('Prometheus to scrape the member and the operator', async () => {
      const t = await prom!.targetLabels();
      return t.active.filter((a) => a.health === 'up').length >= 2 ? t : null;
    }, 30_000, 200);
    const member = targets.active.filter((t) => t.labels.job === names.headlessService(c) || t.labels.stegocluster !== undefined);
    expect(member.map((t) => t.labels), 'member targets').to.have.length(1);
    expect(member[0]!.labels).to.include({ namespace, stegocluster: CLUSTER, instance: names.pod(c, 0), service: names.headlessService(c), pod: names.pod(c, 0), endpoint: 'http' });
  });

  it("keeps one target for the operator (the chart's metrics Service) with its pod", async () => {
    const targets = await prom!.targetLabels();
    const ops = targets.active.filter((t) => t.labels.service === `${RELEASE}-metrics`);
    expect(ops.map((t) => t.labels), 'operator targets').to.have.length(1);
    expect(ops[0]!.labels).to.include({ namespace, pod: OPERATOR_POD, endpoint: 'metrics', job: `${RELEASE}-metrics` });
    await until('operator series in Prometheus', async () => (await prom!.query(`stego_operator_reconciles_total{namespace="${namespace}", stegocluster="${CLUSTER}"}`)).length > 0, 30_000, 250);
  });

  it("the dashboard's variables find the StegoCluster and its cluster-overview panels return series", async () => {
    await until('node series in Prometheus', async () => (await prom!.query(`stego_raft_term{namespace="${namespace}", stegocluster="${CLUSTER}"}`)).length > 0, 20_000, 250);
    // label_values(stego_raft_term, namespace) and label_values(stego_raft_term{namespace="$namespace"}, stegocluster)
    expect((await prom!.query('count by (namespace) (stego_raft_term)')).map((s) => s.metric.namespace)).to.include(namespace);
    expect((await prom!.query(`count by (stegocluster) (stego_raft_term{namespace="${namespace}"})`)).map((s) => s.metric.stegocluster)).to.deep.equal([CLUSTER]);
    const overview = ['Leader', 'Term', 'Members up', 'Members', 'Failures tolerated', 'Storage failed'];
    const vars = { namespace, cluster: CLUSTER, rateInterval: '4s' };
    for (const p of panelQueries().filter((q) => q.dashboard === 'stegocluster-overview.json' && overview.includes(q.panel))) {
      const result = await prom!.query(expandVariables(p.expr, vars));
      expect(result, `${p.panel}: ${p.expr}`).to.have.length.greaterThan(0);
      if (p.panel === 'Leader') expect(result[0]!.metric.instance, 'the leader is named by its pod').to.equal(names.pod(c, 0));
    }
  });

  it('the rules find the member: up{stegocluster!=""} has it', async () => {
    const up = await prom!.query('up{stegocluster!=""}');
    expect(up.map((s) => [s.metric.namespace, s.metric.stegocluster, s.metric.instance, s.value?.[1]])).to.deep.equal([[namespace, CLUSTER, names.pod(c, 0), '1']]);
  });
});
