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

// The entry trigger (STEGO_SNAPSHOT_ENTRIES) rewrites the whole store, so it waits until the log since the
// last snapshot holds at least half that snapshot's bytes: small writes into a large store do not rewrite
// it every few entries.
describe('cluster: snapshots by entry count are paced by the size of the last snapshot', function () {
  let c: TestCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  async function write(cluster: TestCluster, leader: string, prefix: string, n: number, size: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const { png, sha256 } = fakePng(`${prefix}-${i}`, size);
      await cluster.member(leader).service.putObject(png, sha256);
    }
  }

  it('many small writes after large ones wait; a log half the snapshot\'s size triggers it', async () => {
    c = await TestCluster.start({ overrides: { snapshotEntries: 8, snapshotBytes: 1 << 30, snapshotIntervalMs: 0 } });
    const leader = await c.waitForLeader();
    const node = c.member(leader).node;
    // 24 objects of 64 KiB: snapshots of up to ~1.5 MiB are taken (the entry count is reached, the log is large)
    await write(c, leader, 'large', 24, 64 * 1024);
    await pollUntil('a snapshot of the large objects', 10_000, () => node.status().snapshot_index > 8);
    // a snapshot the large writes made due may wait for the member's next grid index (see the
    // staggering test below): a few small writes reach it
    await write(c, leader, 'settle', 8, 1024);
    await new Promise((r) => setTimeout(r, 300)); // let a snapshot in progress finish
    const first = node.status().snapshot_index;
    // 40 writes of 1 KiB: five times the entry threshold, but the log since the snapshot (≤ 7 large
    // objects and ~40 KiB) stays below half of it
    await write(c, leader, 'small', 40, 1024);
    await new Promise((r) => setTimeout(r, 300));
    expect(node.status().snapshot_index).to.equal(first);
    // 12 more large ones: the log now holds more than half the snapshot's bytes; then a few small ones
    // reach the member's next grid index
    await write(c, leader, 'more', 12, 64 * 1024);
    await write(c, leader, 'tail', 8, 1024);
    await pollUntil('the next snapshot', 10_000, () => node.status().snapshot_index > first);
  });
});

// Every member applies the same entries; with one entry threshold they all snapshotted at the same index,
// so the leader and the follower it needed for a quorum wrote their snapshots at the same moment. Each
// member's entry trigger is offset by its rank among the voters. Pacing by size counts from each member's
// own last snapshot, but members that start together (or a follower that installs the snapshot its leader
// just took) met it at the same entry every time: the first one after a start or an install comes early
// by the member's rank.
describe('cluster: members snapshot at different indexes', function () {
  let c: TestCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  /** Writes `n` objects of 1 KiB one at a time, so every member's applied index passes each index on its own; returns the commit index and each member's newest snapshot. */
  async function writeOneAtATime(cluster: TestCluster, prefix: string, n: number): Promise<{ target: number; snaps: number[] }> {
    const leader = await cluster.waitForLeader();
    for (let i = 0; i < n; i++) {
      const { png, sha256 } = fakePng(`${prefix}-${i}`, 1024);
      await cluster.member(leader).service.putObject(png, sha256);
    }
    const members = [...cluster.members.values()];
    const target = cluster.member(leader).node.status().commit_index;
    await pollUntil('every member to apply every write', 10_000, () => members.every((m) => m.node.status().applied_index >= target));
    await new Promise((r) => setTimeout(r, 300)); // let snapshots in progress finish
    return { target, snaps: members.map((m) => m.node.status().snapshot_index) };
  }

  it('three members snapshot a third of snapshotEntries apart, each still every snapshotEntries', async () => {
    const every = 30;
    c = await TestCluster.start({ overrides: { snapshotEntries: every, snapshotBytes: 1 << 30, snapshotIntervalMs: 0 } });
    // two thresholds' worth, so pacing by size (a store of N objects is snapshotted every N/2 writes at
    // most) never decides
    const { target, snaps } = await writeOneAtATime(c, 'stagger', 2 * every);
    for (const [i, s] of snaps.entries()) {
      // on its grid a member snapshots every `every` entries (not every 2 × every)
      expect(target - s, `member ${i}: snapshot ${s}, applied ${target}`).to.be.below(every + 5);
      for (const t of snaps.slice(i + 1)) {
        const d = Math.abs(s - t) % every;
        expect(Math.min(d, every - d), `snapshot indexes ${snaps.join(', ')}`).to.be.at.least(every / 6);
      }
    }
  });

  it('three members paced by size snapshot about a third of snapshotBytes apart', async () => {
    c = await TestCluster.start({ overrides: { snapshotEntries: 1_000_000, snapshotBytes: 40 * 1024, snapshotIntervalMs: 0 } });
    // ~37 entries of ~1.1 KiB per snapshot: the members' snapshots ~12 entries apart
    const { snaps } = await writeOneAtATime(c, 'bytes', 100);
    for (const [i, s] of snaps.entries()) {
      expect(s, `member ${i} snapshotted`).to.be.greaterThan(1);
      for (const t of snaps.slice(i + 1)) expect(Math.abs(s - t), `snapshot indexes ${snaps.join(', ')}`).to.be.at.least(5);
    }
  });
});
