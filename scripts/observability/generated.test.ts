// The dashboards and rules in the chart are what their TypeScript sources generate, every alert has a
// runbook entry, and every metric a dashboard or rule reads is one the code exports.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { MemoryBudgetMetrics } from '../../node/src/metrics/budget.js';
import { RaftMetrics } from '../../node/src/metrics/raft.js';
import { panelQueries } from './dashboards.js';
import { generatedFiles, ROOT } from './generate.js';
import { asBool, exposedFamilies, familyOf, metricNames } from './promql.js';
import { SingleNode, OperatorProcess } from './prometheus.js';
import { ALERTS, runbookAnchor } from './rules.js';
import { AWAITING_WIRING } from './wiring.js';

const MAIN_JS = join(ROOT, 'dist/node/src/main.js');
const OPERATOR_JS = join(ROOT, 'dist/operator/src/main.js');

describe('observability: generated dashboards and rules', () => {
  it('the committed dashboards and rules file equal what `npm run dashboards` generates', () => {
    for (const [file, content] of generatedFiles()) {
      let committed = '';
      try {
        committed = readFileSync(file, 'utf8');
      } catch {
        /* missing: compared below */
      }
      expect(committed, `${file.slice(ROOT.length)} is stale or missing: run \`npm run dashboards\``).to.equal(content);
    }
  });

  it('every alert has a runbook entry in docs/runbook.md', () => {
    const runbook = readFileSync(join(ROOT, 'docs/runbook.md'), 'utf8');
    const headings = new Set([...runbook.matchAll(/^## (\S+)\s*$/gm)].map((m) => m[1]!.toLowerCase()));
    for (const a of ALERTS) expect(headings.has(runbookAnchor(a.alert)), `docs/runbook.md has no "## ${a.alert}"`).to.equal(true);
  });

  it('reads metric names out of PromQL', () => {
    expect([...metricNames('sum by (route, le) (rate(a_bucket{x="y{z}", r!~"/m|/h"}[5m])) / on (i) group_left (k) b offset 5m > bool 3')]).to.deep.equal(['a_bucket', 'b']);
    expect([...metricNames('histogram_quantile(0.99, x) and up{stegocluster!=""} == 0 or vector(1)')]).to.deep.equal(['x', 'up']);
  });

  it('turns a rule condition into a 0/1 vector without touching label matchers', () => {
    expect(asBool('a{x!="y", r=~"<|>"} > 3 and b <= bool c or d != 1')).to.equal('a{x!="y", r=~"<|>"} > bool 3 and b <= bool c or d != bool 1');
  });

  describe('every metric a dashboard or rule uses is exported by the code', function () {
    this.timeout(60_000);
    const node = new SingleNode();
    const operator = new OperatorProcess();
    let families = new Map<string, string>();
    let operatorFamilies = new Map<string, string>();

    before(async () => {
      await Promise.all([node.start(MAIN_JS), operator.start(OPERATOR_JS)]);
      families = exposedFamilies(await node.scrape());
      operatorFamilies = exposedFamilies(await operator.scrape());
      // sets a node registers only once their source exists, from the same definitions
      const r = new Registry();
      new RaftMetrics(r).attach({ term: () => 1, role: () => 'Leader', commitIndex: () => 0, appliedIndex: () => 0, storageFailed: () => false, peers: () => [], logBytes: () => 0, snapshotBytes: () => 0 });
      new MemoryBudgetMetrics(r).attach({ limitBytes: () => 1, inUseBytes: () => 0 });
      for (const [name, type] of [...exposedFamilies(await r.metrics()), ...operatorFamilies]) if (!families.has(name)) families.set(name, type);
    });
    after(async () => Promise.all([node.stop(), operator.stop()]));

    it('the running node and operator expose their core families (the check below is not vacuous)', () => {
      for (const f of ['stego_raft_is_leader', 'stego_http_request_duration_seconds', 'stego_pool_queued_jobs', 'stego_event_loop_delay_seconds', 'stego_storage_volume_size_bytes', 'stego_process_cpu_seconds_total']) {
        expect(families.get(f), f).to.be.a('string');
      }
      for (const f of ['stego_operator_reconciles_total', 'stego_operator_workqueue_depth', 'stego_operator_process_cpu_seconds_total']) {
        expect(operatorFamilies.get(f), f).to.be.a('string');
      }
    });

    it('every operator metric a dashboard or rule reads comes from the operator process', () => {
      const read = [...panelQueries().map((p) => p.expr), ...ALERTS.map((a) => a.expr)].flatMap((e) => [...metricNames(e)]).filter((n) => n.startsWith('stego_operator_'));
      expect(read.length, 'dashboards and rules read operator metrics').to.be.greaterThan(0);
      expect([...new Set(read.filter((n) => !familyOf(n, operatorFamilies)))]).to.deep.equal([]);
    });

    it('dashboard panels', () => {
      const missing = panelQueries().flatMap((p) => [...metricNames(p.expr)].filter((n) => !familyOf(n, families)).map((n) => `${p.panel}: ${n}`));
      expect(missing).to.deep.equal([]);
    });

    it('alert rules', () => {
      const missing = ALERTS.flatMap((a) => [...metricNames(a.expr)].filter((n) => !familyOf(n, families)).map((n) => `${a.alert}: ${n}`));
      expect(missing).to.deep.equal([]);
    });

    it('the list of metrics awaiting wiring names only defined metrics', () => {
      expect(Object.keys(AWAITING_WIRING).filter((n) => !families.has(n))).to.deep.equal([]);
    });
  });
});
