import { tmpdir } from 'node:os';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { MemoryBudgetMetrics } from './budget.js';
import { createNodeMetrics } from './node.js';
import type { ElectionEvent } from '../cluster/election-log.js';
import { ELECTION_EVENTS, RaftMetrics, type RaftMetricsSource } from './raft.js';

const source: RaftMetricsSource = { term: () => 3, role: () => 'Leader', commitIndex: () => 7, appliedIndex: () => 7, storageFailed: () => false, peers: () => [] };

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', () => {
  it('pre-creates every election event the driver logs, at 0', async () => {
    // compile-time: the list holds only driver events (assignability) and all of them (no missing member)
    const listed: readonly ElectionEvent[] = ELECTION_EVENTS;
    const complete: [Exclude<ElectionEvent, (typeof ELECTION_EVENTS)[number]>] extends [never] ? true : false = true;
    expect([listed.length, complete]).to.deep.equal([8, true]);
    const r = new Registry();
    new RaftMetrics(r);
    const text = await r.metrics();
    for (const e of ELECTION_EVENTS) expect(value(text, `stego_raft_election_events_total{event="${e}"}`), e).to.equal(0);
  });

  it('a node reports its data volume and the HTTP loop\'s delay (a 120 ms block lands above the 50 ms bucket)', async () => {
    const r = new Registry();
    const m = createNodeMetrics(r, { dataDir: tmpdir() });
    try {
      await new Promise((res) => setTimeout(res, 30));
      // the probe fires every 20 ms, so up to 20 ms of the block can fall before a due tick: 120 ms leaves
      // a delay well above 50 ms wherever the block starts
      const until = performance.now() + 120;
      while (performance.now() < until) { /* block the loop */ }
      await new Promise((res) => setTimeout(res, 40));
      const text = await r.metrics();
      expect(value(text, 'stego_storage_volume_size_bytes')).to.be.greaterThan(0);
      expect(value(text, 'stego_storage_volume_available_bytes')).to.be.at.most(value(text, 'stego_storage_volume_size_bytes')!);
      const total = value(text, 'stego_event_loop_delay_seconds_count{loop="http"}')!;
      const fast = value(text, 'stego_event_loop_delay_seconds_bucket{le="0.05",loop="http"}')!;
      expect(total - fast, 'observations above 50 ms').to.be.at.least(1);
    } finally {
      m.stop();
    }
  });

  it('gauges fed by an optional source exist only once the source provides them', async () => {
    const r = new Registry();
    const raft = new RaftMetrics(r);
    const budget = new MemoryBudgetMetrics(r);
    raft.attach(source);
    let text = await r.metrics();
    expect(text).not.to.include('stego_storage_log_size_bytes');
    expect(text).not.to.include('stego_memory_budget_in_use_bytes');
    expect(value(text, 'stego_raft_is_leader')).to.equal(1);
    raft.attach({ ...source, logBytes: () => 4096 });
    budget.attach({ limitBytes: () => 1000, inUseBytes: () => 250 });
    text = await r.metrics();
    expect(value(text, 'stego_storage_log_size_bytes')).to.equal(4096);
    expect(value(text, 'stego_memory_budget_in_use_bytes')).to.equal(250);
    expect(value(text, 'stego_memory_budget_limit_bytes')).to.equal(1000);
  });
});
