// The operator's metrics from the real operator process reconciling a StegoCluster on a real kube-apiserver
// (stage 1 of e2e/local, or STEGO_KUBECONFIG), scraped by a real Prometheus: the per-StegoCluster series the
// dashboard's Operator row reads exist and carry the StegoCluster's name and namespace, the scrape passes
// `promtool check metrics`, the overview's Operator row and the operator dashboard return series, and deleting the StegoCluster drops
// its series. Run with `npm run test:observability:integration` (skips without an API server).
import { join } from 'node:path';
import { expect } from 'chai';
import { API_VERSION, KIND } from '../../operator/src/api/types.js';
import { resourcePath, type KObject, type KubeClient } from '../../operator/src/k8s/client.js';
import { createNamespace, deleteNamespace } from '../../operator/test/integration/env.js';
import { until } from '../../node/test/lb/local-cluster-harness.js';
import { expandVariables, panelQueries } from './dashboards.js';
import { ROOT } from './generate.js';
import { apiServerOrSkip } from './kube.js';
import { notBuilt, OperatorProcess, prometheusBinary, PrometheusServer, promtool } from './prometheus.js';

const OPERATOR_JS = join(ROOT, 'dist/operator/src/main.js');
const CLUSTER = 'images';
const OPERATOR_ROW = ['Reconciles', 'Reconcile duration p99', 'Operator activity'];

describe('observability: the operator process reconciling on a real kube-apiserver, scraped by a real Prometheus', function () {
  this.timeout(120_000);
  let client: KubeClient | undefined;
  let namespace = '';
  let operator: OperatorProcess | undefined;
  let prom: PrometheusServer | undefined;
  const series = (): string => `stegocluster_namespace="${namespace}",stegocluster="${CLUSTER}"`;

  before(async function () {
    const found = await apiServerOrSkip(this, !prometheusBinary('prometheus') || !prometheusBinary('promtool') ? notBuilt('prometheus') : '');
    client = found.client;
    namespace = await createNamespace(found.client, 'stego-obs');
    operator = new OperatorProcess({ kubeconfig: found.source, watchNamespace: namespace });
    await operator.start(OPERATOR_JS);
    prom = new PrometheusServer({ targets: [{ address: new URL(operator.url).host, labels: { namespace: 'stego-system', instance: 'stego-operator-0' } }] });
    await prom.start();
    await found.client.create({ apiVersion: API_VERSION, kind: KIND, metadata: { name: CLUSTER, namespace }, spec: { replicas: 3 } } as KObject);
  });

  after(async () => {
    await prom?.stop();
    await operator?.stop();
    if (client && namespace) await deleteNamespace(client, namespace).catch(() => undefined);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(operator?.output.slice(-40).join('\n'));
  });

  it('reconciles of the StegoCluster are counted and timed under its name and namespace', async () => {
    const text = await until('reconciles of the StegoCluster on /metrics', async () => {
      const t = await operator!.scrape();
      // a reconcile that finished (the series exist at 0 from the start of the first one)
      return new RegExp(`^stego_operator_reconciles_total\\{${series()},result="[a-z]+"\\} [1-9]`, 'm').test(t) ? t : null;
    }, 60_000, 250);
    expect(text).to.match(new RegExp(`^stego_operator_reconcile_duration_seconds_count\\{${series()}\\} [1-9]`, 'm'));
    expect(text).to.match(/^stego_operator_api_requests_total\{verb="[A-Z]+",code="2\d\d"\} [1-9]/m);
  });

  it('a scrape with per-StegoCluster series passes `promtool check metrics`', async () => {
    const r = promtool(['check', 'metrics'], await operator!.scrape());
    expect(r.stdout + r.stderr, 'promtool check metrics findings').to.equal('');
    expect(r.code).to.equal(0);
  });

  it("the overview's Operator row and the operator dashboard return series", async () => {
    const vars = { namespace, cluster: CLUSTER, rateInterval: '4s' };
    const queries = panelQueries().filter((p) => (p.dashboard === 'stegocluster-overview.json' && OPERATOR_ROW.includes(p.panel)) || p.dashboard === 'stego-operator.json');
    const name = (p: { dashboard: string; panel: string; refId: string }): string => `${p.dashboard.replace(/\.json$/, '')}: ${p.panel} ${p.refId}`;
    // reconciles, their duration, the queue depth and the Lease exist from the start; errors, membership
    // changes, leader changes and watch restarts only once such events happened (printed, not required)
    const required = [
      'stegocluster-overview: Reconciles A', 'stegocluster-overview: Reconcile duration p99 A', 'stegocluster-overview: Operator activity A',
      'stego-operator: Reconciles by result A', 'stego-operator: Reconcile duration p50 / p99 A', 'stego-operator: Reconcile duration p50 / p99 B',
      'stego-operator: Work queue depth A', 'stego-operator: Leading replica A',
    ];
    expect(queries.map(name)).to.include.members(required);
    const empty = await until('the required queries to return series', async () => {
      const end = Date.now() / 1000;
      const missing: string[] = [];
      for (const p of queries) {
        const result = await prom!.queryRange(expandVariables(p.expr, vars), end - 30, end, 1);
        if (result.length === 0) missing.push(name(p));
      }
      return missing.some((m) => required.includes(m)) ? null : missing;
    }, 30_000, 1000);
    console.log(`      without series (no such event in this run): ${empty.join('; ') || 'none'}`);
  });

  it('deleting the StegoCluster drops its series', async () => {
    await client!.delete(resourcePath(API_VERSION, KIND, namespace, CLUSTER));
    await until('the StegoCluster\'s series to leave /metrics', async () => !(await operator!.scrape()).includes(`stegocluster="${CLUSTER}"`), 30_000, 250);
  });
});
