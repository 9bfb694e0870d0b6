// The dashboards and rules in the chart are what their TypeScript sources generate, every alert has a
// runbook entry, and every metric a dashboard or rule reads is one the code exports.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { MemoryBudgetMetrics } from '../../node/src/metrics/budget.js';
import { OperatorMetrics } from '../../node/src/metrics/operator.js';
import { RaftMetrics } from '../../node/src/metrics/raft.js';
import { panelQueries } from './dashboards.js';
import { generatedFiles, ROOT } from './generate.js';
import { asBool, exposedFamilies, familyOf, metricNames } from './promql.js';
import { SingleNode } from './prometheus.js';
import { ALERTS, runbookAnchor } from './rules.js';
import { AWAITING_WIRING } from './wiring.js';

const MAIN_JS = join(ROOT, 'dist/node/src/main.js');

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
    let families = new Map<string, string>();

    before(async () => {
      await node.start(MAIN_JS);
      families = exposedFamilies(await node.scrape());
      // sets a node registers only once their source exists, and the operator's, from the same definitions
      const r = new Registry();
      new RaftMetrics(r).attach({ term: () => 1, role: () => 'Leader', commitIndex: () => 0, appliedIndex: () => 0, storageFailed: () => false, peers: () => [], logBytes: () => 0, snapshotBytes: () => 0 });
      new MemoryBudgetMetrics(r).attach({ limitBytes: () => 1, inUseBytes: () => 0 });
      new OperatorMetrics(r);
      for (const [name, type] of exposedFamilies(await r.metrics())) if (!families.has(name)) families.set(name, type);
    });
    after(async () => node.stop());

    it('the running node exposes its core families (the check below is not vacuous)', () => {
      for (const f of ['stego_raft_is_leader', 'stego_http_request_duration_seconds', 'stego_pool_queued_jobs', 'stego_event_loop_delay_seconds', 'stego_storage_volume_size_bytes', 'stego_process_cpu_seconds_total']) {
        expect(families.get(f), f).to.be.a('string');
      }
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
