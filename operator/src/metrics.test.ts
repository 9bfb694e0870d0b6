import { expect } from 'chai';
import { OperatorMetrics, refOfKey } from './metrics.js';

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('operator metrics', () => {
  const ref = { namespace: 'ns', name: 'sc' };
  const cr = 'stegocluster_namespace="ns",stegocluster="sc"';

  it('counts and times reconciles per StegoCluster, errors by the failed step', async () => {
    const m = new OperatorMetrics(false);
    m.startReconcile(ref)('converged');
    m.startReconcile(ref)('error');
    m.reconcileFailed(ref, 'statefulset');
    m.scaled(ref, 'add_member');
    m.leaderChanged(ref);
    const text = await m.registry.metrics();
    expect(value(text, `stego_operator_reconciles_total{${cr},result="converged"}`)).to.equal(1);
    expect(value(text, `stego_operator_reconciles_total{${cr},result="error"}`)).to.equal(1);
    expect(value(text, `stego_operator_reconcile_errors_total{${cr},reason="statefulset"}`)).to.equal(1);
    expect(value(text, `stego_operator_reconcile_duration_seconds_count{${cr}}`)).to.equal(2);
    expect(value(text, `stego_operator_scale_operations_total{${cr},operation="add_member"}`)).to.equal(1);
    expect(value(text, `stego_operator_observed_leader_changes_total{${cr}}`)).to.equal(1);
  });

  it("starts a StegoCluster's result, membership-change and leader-change counters at 0 on its first reconcile", async () => {
    const m = new OperatorMetrics(false);
    m.startReconcile(ref)('converged');
    const text = await m.registry.metrics();
    // present at 0, so the first increment is an increase Prometheus can show
    expect(value(text, `stego_operator_reconciles_total{${cr},result="error"}`)).to.equal(0);
    expect(value(text, `stego_operator_scale_operations_total{${cr},operation="remove_member"}`)).to.equal(0);
    expect(value(text, `stego_operator_observed_leader_changes_total{${cr}}`)).to.equal(0);
    m.forget(ref);
    m.startReconcile(ref)('converged');
    expect(value(await m.registry.metrics(), `stego_operator_observed_leader_changes_total{${cr}}`), 'started again after forget').to.equal(0);
  });

  it('forget() drops every series of a deleted StegoCluster and keeps the others', async () => {
    const m = new OperatorMetrics(false);
    const other = { namespace: 'ns', name: 'other' };
    for (const r of [ref, other]) {
      m.startReconcile(r)('error');
      m.reconcileFailed(r, 'membership');
      m.scaled(r, 'remove_member');
      m.leaderChanged(r);
    }
    m.forget(refOfKey('ns/sc'));
    const text = await m.registry.metrics();
    expect(text).not.to.include('stegocluster="sc"');
    expect(value(text, 'stego_operator_reconcile_errors_total{stegocluster_namespace="ns",stegocluster="other",reason="membership"}')).to.equal(1);
  });

  it('process metrics carry the operator prefix', async () => {
    const text = await new OperatorMetrics(true).registry.metrics();
    expect(text).to.include('stego_operator_process_cpu_seconds_total');
    expect(text).not.to.include('stego_operator_nodejs_active_handles_total ');
  });
});
