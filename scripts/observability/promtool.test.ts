// promtool on what we ship: the rules file is valid, each alert's unit test passes, and a real scrape of a
// running node and of the operator process passes `promtool check metrics` (Prometheus's naming and
// exposition lint).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { load } from 'js-yaml';
import { makeCover } from '../../node/test/cluster/fixtures.js';
import { RULES_FILE, ROOT } from './generate.js';
import { notBuilt, prometheusBinary, promtool, SingleNode, OperatorProcess } from './prometheus.js';
import { ALERTS } from './rules.js';

const UNIT_TESTS = join(ROOT, 'scripts/observability/alerts.promtool.yaml');

describe('observability: promtool', function () {
  this.timeout(120_000);
  before(function () {
    if (!prometheusBinary('promtool')) {
      console.log(`      skipped: ${notBuilt('promtool')}`);
      this.skip();
    }
  });

  it('check rules: the shipped rules file is valid', () => {
    const r = promtool(['check', 'rules', RULES_FILE]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.include(`${ALERTS.length} rules found`);
  });

  it('every alert has a unit test, and `promtool test rules` passes', () => {
    const doc = load(readFileSync(UNIT_TESTS, 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] };
    const fired = new Set(doc.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    expect(ALERTS.map((a) => a.alert).filter((a) => !fired.has(a)), 'alerts without a firing unit test').to.deep.equal([]);
    const r = promtool(['test', 'rules', UNIT_TESTS]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
  });

  describe('check metrics on a real scrape of a running node', () => {
    const node = new SingleNode();
    before(async () => node.start(join(ROOT, 'dist/node/src/main.js')));
    after(async () => node.stop());

    it('passes the exposition lint with no findings', async () => {
      // some traffic first, so labelled series (routes, job kinds, proposals) exist in the scrape
      const f = new FormData();
      f.append('file', new Blob([makeCover(32, 32)], { type: 'image/png' }), 'c.png');
      f.append('message', 'lint');
      expect((await fetch(`${node.url}/api/embed`, { method: 'POST', body: f, headers: node.auth() })).status).to.equal(200);
      expect((await fetch(`${node.url}/api/objects`, { method: 'POST', body: f, headers: node.auth() })).status).to.equal(201);
      const text = await node.scrape();
      expect(text).to.match(/^stego_pool_job_duration_seconds_count\{kind="embed"/m);
      const r = promtool(['check', 'metrics'], text);
      expect(r.stdout + r.stderr, 'promtool check metrics findings').to.equal('');
      expect(r.code).to.equal(0);
    });
  });

  describe('check metrics on a real scrape of the operator process', () => {
    const operator = new OperatorProcess();
    before(async () => operator.start(join(ROOT, 'dist/operator/src/main.js')));
    after(async () => operator.stop());

    it('passes the exposition lint with no findings', async () => {
      const text = await operator.scrape();
      expect(text).to.match(/^# TYPE stego_operator_reconciles_total counter$/m);
      expect(text).to.match(/^stego_operator_workqueue_depth 0$/m);
      const r = promtool(['check', 'metrics'], text);
      expect(r.stdout + r.stderr, 'promtool check metrics findings').to.equal('');
      expect(r.code).to.equal(0);
    });
  });
});
