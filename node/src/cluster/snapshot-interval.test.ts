import { expect } from 'chai';
import { fakePng, pollUntil, TestCluster } from './test-cluster.js';

// The time trigger (STEGO_SNAPSHOT_INTERVAL_MS): a trickle of writes far below the entry and byte
// thresholds still gets snapshotted and compacted, so a slowly growing log cannot fill the disk over days.
describe('cluster: snapshots by time as well as by size', function () {
  let c: TestCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  async function writeFew(cluster: TestCluster, leader: string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const { png, sha256 } = fakePng(`interval-${i}`, 256);
      await cluster.member(leader).service.putObject(png, sha256);
    }
  }

  it('takes a snapshot once the interval has passed with entries applied, far below the size thresholds', async () => {
    c = await TestCluster.start({ overrides: { snapshotEntries: 10_000, snapshotBytes: 1 << 30, snapshotIntervalMs: 300 } });
    const leader = await c.waitForLeader();
    const start = c.member(leader).node.status().snapshot_index;
    await writeFew(c, leader, 5);
    await pollUntil('every member to snapshot by time', 10_000, () => [...c!.members.values()].every((m) => m.node.status().snapshot_index > start));
    // and again for the next trickle: the trigger re-arms after each snapshot
    const first = c.member(leader).node.status().snapshot_index;
    await writeFew(c, leader, 3);
    await pollUntil('a second snapshot by time', 10_000, () => c!.member(leader).node.status().snapshot_index > first);
  });

  it('interval 0 turns the time trigger off: the same trickle is not snapshotted', async () => {
    c = await TestCluster.start({ overrides: { snapshotEntries: 10_000, snapshotBytes: 1 << 30, snapshotIntervalMs: 0 } });
    const leader = await c.waitForLeader();
    const start = c.member(leader).node.status().snapshot_index;
    await writeFew(c, leader, 5);
    // long enough for several 300 ms intervals of the test above
    const until = Date.now() + 1_500;
    while (Date.now() < until) {
      expect(c.member(leader).node.status().snapshot_index).to.equal(start);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});
