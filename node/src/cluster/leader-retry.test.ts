import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import type { NodeId } from '../raft/types.js';
import { RemoteError, TransportError } from '../transport/errors.js';
import { ClusterError } from './errors.js';
import { onLeader, retryPauseMs, type LeaderView } from './leader-retry.js';
import { until } from './waiters.js';

/** A node whose known leader the test sets; waits are event-driven like RaftNode's. */
class Leaders implements LeaderView {
  readonly events = new EventEmitter<{ leader: [] }>();
  serving = true;
  constructor(private leader: NodeId | null) {}
  get leaderId(): NodeId | null {
    return this.leader;
  }
  set(leader: NodeId | null): void {
    this.leader = leader;
    this.events.emit('leader');
  }
  assertServing(): void {
    if (!this.serving) throw new ClusterError('unavailable', 'stopped');
  }
  async waitForLeader(ms: number): Promise<NodeId> {
    if (!(await until(this.events, 'leader', () => this.leader !== null, ms))) throw new ClusterError('no_leader', 'none');
    return this.leader!;
  }
  async waitForLeaderChange(previous: NodeId | null, ms: number): Promise<void> {
    await until(this.events, 'leader', () => this.leader !== null && this.leader !== previous, ms);
  }
  leaderWaitMs(): number {
    return 200;
  }
}

describe('cluster/onLeader (the retry policy of writes and admin operations)', () => {
  it('retries against the new leader as soon as it is known, not after the pause', async () => {
    const node = new Leaders('n1');
    const tried: NodeId[] = [];
    let failedAt = 0;
    let retriedAfter = -1;
    const result = await onLeader(node, Date.now() + 10_000, async (leader) => {
      if (tried.length === 10) retriedAfter = Date.now() - failedAt;
      tried.push(leader);
      if (leader === 'n2') return `done on ${leader}`;
      if (tried.length === 10) {
        // by now the pause before the next attempt is retryPauseMs(9) = 100 ms; a new leader 5 ms later ends it
        failedAt = Date.now();
        setTimeout(() => node.set('n2'), 5);
      }
      throw new RemoteError('not_leader', 'n1 stepped down', 'n1');
    });
    expect(result).to.equal('done on n2');
    expect(tried).to.deep.equal([...Array<NodeId>(10).fill('n1'), 'n2']);
    expect(retryPauseMs(9)).to.equal(100);
    expect(retriedAfter).to.be.within(0, 60);
  });

  it('waits for a leader when none is known, then runs the attempt there', async () => {
    const node = new Leaders(null);
    setTimeout(() => node.set('n3'), 10);
    expect(await onLeader(node, Date.now() + 5_000, (leader) => Promise.resolve(leader))).to.equal('n3');
  });

  it('retries the same leader after a growing pause, and gives up at the deadline with a cluster error', async () => {
    const node = new Leaders('n1');
    const at: number[] = [];
    const retries: number[] = [];
    const t0 = Date.now();
    const err = await onLeader(
      node,
      t0 + 1_500,
      () => {
        at.push(Date.now() - t0);
        return Promise.reject(new TransportError('link_down', 'no link to n1'));
      },
      (attempt) => retries.push(attempt),
    ).catch((e: unknown) => e as ClusterError);
    expect(err).to.be.instanceOf(ClusterError);
    expect((err as ClusterError).code).to.equal('no_leader');
    // it keeps trying until the deadline (plus timer slack), and not in a busy loop: the pauses are 10,
    // 20, ... 100 ms, then 100 ms each (about 21 attempts in 1.5 s)
    expect(Date.now() - t0).to.be.within(1_480, 1_900);
    expect(at.length).to.be.within(12, 24);
    expect(retries).to.deep.equal(retries.map((_, i) => i));
    // (the last pause may be cut short by the deadline)
    for (let i = 1; i < at.length - 1; i++) expect(at[i]! - at[i - 1]!, `pause ${i}`).to.be.at.least(retryPauseMs(i - 1) - 2);
  });

  it('never retries a failure a new leader would meet too', async () => {
    const node = new Leaders('n1');
    let calls = 0;
    const err = await onLeader(node, Date.now() + 5_000, () => {
      calls++;
      return Promise.reject(new RemoteError('object_too_large', 'too big', 'n1'));
    }).catch((e: unknown) => e as ClusterError);
    expect(calls).to.equal(1);
    // a remote cluster error keeps its code on this side of the link
    expect(err).to.be.instanceOf(ClusterError);
    expect((err as ClusterError).code).to.equal('object_too_large');
  });

  it('stops retrying once the node stops serving', async () => {
    const node = new Leaders('n1');
    let calls = 0;
    const err = await onLeader(node, Date.now() + 5_000, () => {
      calls++;
      node.serving = false;
      return Promise.reject(new ClusterError('proposal_lost', 'overwritten'));
    }).catch((e: unknown) => e as ClusterError);
    expect(calls).to.equal(1);
    expect((err as ClusterError).code).to.equal('unavailable');
  });
});
