// The ServiceMonitor the operator builds gives node series the labels the dashboards and rules select on:
// a real Prometheus applies the relabelings the Prometheus Operator would generate from it to targets that
// carry the labels Kubernetes SD would give the member's endpoints (made from the operator's own Services
// and pod template), and scrapes a real node behind them.
import { join } from 'node:path';
import { expect } from 'chai';
import { names } from '../../operator/src/api/names.js';
import { serviceMonitor } from '../../operator/src/resources/monitoring.js';
import { testCluster } from '../../operator/src/resources/fixtures.js';
import { clientService, headlessService, leaderService } from '../../operator/src/resources/services.js';
import { statefulSet } from '../../operator/src/resources/statefulset.js';
import { until } from '../../node/test/lb/local-cluster-harness.js';
import { expandVariables, panelQueries } from './dashboards.js';
import { ROOT } from './generate.js';
import { notBuilt, prometheusBinary, PrometheusServer, SingleNode } from './prometheus.js';
import { scrapeConfigFor, type EndpointTarget, type ServiceMonitorSpec } from './service-monitor.js';

const NAMESPACE = 'shop';
const CLUSTER = 'images';

describe("observability: the operator's ServiceMonitor, applied by a real Prometheus", function () {
  this.timeout(90_000);
  const cr = testCluster({ metrics: { serviceMonitor: { enabled: true } } }, CLUSTER, NAMESPACE);
  const c = { namespace: NAMESPACE, name: CLUSTER };
  const node = new SingleNode();
  let prom: PrometheusServer | undefined;

  before(async function () {
    if (!prometheusBinary('prometheus')) {
      console.log(`      skipped: ${notBuilt('prometheus')}`);
      this.skip();
    }
    await node.start(join(ROOT, 'dist/node/src/main.js'));
    const sm = serviceMonitor(cr);
    expect(sm, 'metrics.serviceMonitor.enabled builds a ServiceMonitor').not.to.equal(null);
    const template = statefulSet(cr, 1).spec!.template;
    const pod = { name: names.pod(c, 0), labels: template.metadata!.labels!, container: template.spec!.containers[0]!.name };
    const address = new URL(node.url).host;
    // Kubernetes SD lists every port of every Service in the namespace: the member behind all three
    // Services, and its raft port; the ServiceMonitor must keep exactly one of them
    const endpoints: EndpointTarget[] = [];
    for (const svc of [headlessService(cr), clientService(cr), leaderService(cr)]) {
      for (const port of svc.spec!.ports!) {
        endpoints.push({ address, namespace: NAMESPACE, service: { name: svc.metadata!.name!, labels: svc.metadata!.labels! }, pod, portName: port.name! });
      }
    }
    prom = new PrometheusServer({
      targets: [],
      scrapeConfigs: [scrapeConfigFor({ metadata: { name: sm!.metadata.name!, namespace: NAMESPACE }, spec: sm!.spec as unknown as ServiceMonitorSpec }, endpoints)],
    });
    await prom.start();
  });

  after(async () => {
    await prom?.stop();
    await node.stop();
  });

  it('keeps one target per member (the headless Service\'s http port) with namespace, stegocluster and instance', async () => {
    const targets = await until('Prometheus to scrape the member', async () => {
      const t = await prom!.targetLabels();
      return t.active.some((a) => a.health === 'up') ? t : null;
    }, 30_000, 200);
    expect(targets.active.map((t) => t.labels)).to.have.length(1);
    const labels = targets.active[0]!.labels;
    expect(labels).to.include({ namespace: NAMESPACE, stegocluster: CLUSTER, instance: names.pod(c, 0), service: names.headlessService(c) });
  });

  it("the dashboard's variables find the StegoCluster and its cluster-overview panels return series", async () => {
    await until('node series in Prometheus', async () => (await prom!.query(`stego_raft_term{namespace="${NAMESPACE}", stegocluster="${CLUSTER}"}`)).length > 0, 20_000, 250);
    // label_values(stego_raft_term, namespace) and label_values(stego_raft_term{namespace="$namespace"}, stegocluster)
    expect((await prom!.query('count by (namespace) (stego_raft_term)')).map((s) => s.metric.namespace)).to.include(NAMESPACE);
    expect((await prom!.query(`count by (stegocluster) (stego_raft_term{namespace="${NAMESPACE}"})`)).map((s) => s.metric.stegocluster)).to.deep.equal([CLUSTER]);
    const overview = ['Leader', 'Term', 'Members up', 'Members', 'Failures tolerated', 'Storage failed'];
    const vars = { namespace: NAMESPACE, cluster: CLUSTER, rateInterval: '4s' };
    for (const p of panelQueries().filter((q) => overview.includes(q.panel))) {
      const result = await prom!.query(expandVariables(p.expr, vars));
      expect(result, `${p.panel}: ${p.expr}`).to.have.length.greaterThan(0);
      if (p.panel === 'Leader') expect(result[0]!.metric.instance, 'the leader is named by its pod').to.equal(names.pod(c, 0));
    }
  });

  it('the rules find the member: up{stegocluster!=""} has it', async () => {
    const up = await prom!.query('up{stegocluster!=""}');
    expect(up.map((s) => [s.metric.namespace, s.metric.stegocluster, s.metric.instance, s.value?.[1]])).to.deep.equal([[NAMESPACE, CLUSTER, names.pod(c, 0), '1']]);
  });
});
