// Leader crash, follower restart and catch-up (through the log and through a snapshot), with real
// processes. The snapshot threshold is tiny so the leader compacts its log while a follower is down.

import { expect } from 'chai';
import { Cluster, dumpOnFailure, pollUntil, type ClusterStatus, type ObjectAck } from './harness.js';
import { makeCover } from './fixtures.js';
import { verifyObjects } from './workload.js';

const SNAPSHOT_ENTRIES = 20;
/**
 * A log budget (a quarter of this) of a few small objects: a leader keeps the entries a lagging follower
 * lacks when they fit in it, so with the default (64 MiB) a follower that missed 60 writes would catch up
 * from the log and the snapshot test below would prove nothing.
 */
const SNAPSHOT_BYTES = 16 * 1024;
const SNAPSHOT_LINE = /snapshot/i;

async function writeObjects(cluster: Cluster, n: number, tag: string, concurrency = 4): Promise<ObjectAck[]> {
  const cover = makeCover(16, 16, 11);
  const acks: ObjectAck[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const targets = cluster.liveIds();
      const target = targets[i % targets.length]!;
      const r = await pollUntil(`write ${tag}-${i}`, async () => {
        const w = await cluster.putObject(target, { cover, message: `${tag}-${i}` });
        if (w.status === 201) return w.body as ObjectAck;
        if (w.status !== 503) throw new Error(`unexpected ${w.status} ${JSON.stringify(w.body)}`);
        return undefined;
      }, { deadlineMs: 15_000, intervalMs: 20 });
      acks.push(r);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return acks;
}

/** Down nodes must never be presented as the leader, and must read as unhealthy/Unknown once detected. */
function checkDownNodeReporting(s: ClusterStatus, down: string, observer: string): boolean {
  const n = s.nodes.find((x) => x.id === down);
  expect(n, `${observer} still lists ${down}`).to.not.equal(undefined);
  if (!n!.healthy) expect(n!.role, `${observer} reports down ${down}`).to.equal('Unknown');
  for (const x of s.nodes) if (!x.healthy) expect(x.role, `${observer}: unhealthy ${x.id}`).to.not.equal('Leader');
  return !n!.healthy;
}

describe('cluster (3 processes): leader crash, restart, catch-up', function () {
  this.timeout(90_000);
  let cluster: Cluster;

  before(async function () {
    this.timeout(60_000);
    cluster = await Cluster.start({
      size: 3,
      env: { STEGO_SNAPSHOT_ENTRIES: String(SNAPSHOT_ENTRIES), STEGO_SNAPSHOT_BYTES: String(SNAPSHOT_BYTES) },
      keepPatterns: [SNAPSHOT_LINE],
    });
  });
  afterEach(function () {
    dumpOnFailure(this, cluster);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('replaces a SIGKILLed leader in a higher term; every committed object stays readable on every live node', async () => {
    const before = await cluster.waitForLeader();
    const acks = await writeObjects(cluster, 12, 'pre-crash');
    await cluster.kill(before.leaderId, 'SIGKILL');
    const after = await cluster.waitForLeader({ notId: before.leaderId, minTerm: before.term + 1, deadlineMs: 10_000 });
    expect(after.term).to.be.greaterThan(before.term);
    for (const s of after.statuses.values()) expect(s.leader_id).to.equal(after.leaderId);

    for (const id of cluster.liveIds()) {
      // Linearizable first: it makes the node apply through the read index, so the stale read that follows
      // must see the same objects.
      expect(await verifyObjects(cluster, id, acks), `linearizable reads on ${id}`).to.deep.equal([]);
      expect(await verifyObjects(cluster, id, acks, { stale: true }), `stale reads on ${id}`).to.deep.equal([]);
    }

    await pollUntil(`live nodes to report ${before.leaderId} as down`, async () => {
      let allSeeDown = true;
      for (const id of cluster.liveIds()) {
        if (!checkDownNodeReporting(await cluster.status(id), before.leaderId, id)) allSeeDown = false;
      }
      return allSeeDown || undefined;
    }, { deadlineMs: 10_000 });

    await cluster.restart(before.leaderId);
    await cluster.waitForLeader({ deadlineMs: 15_000 });
    expect(await verifyObjects(cluster, before.leaderId, acks), `reads on the restarted old leader`).to.deep.equal([]);
  });

  it('replaces a frozen (SIGSTOP) leader; after SIGCONT it steps down, and a write it held is never falsely acknowledged', async () => {
    const before = await cluster.waitForLeader();
    const old = before.leaderId;
    const acks = await writeObjects(cluster, 4, 'pre-freeze');
    await cluster.kill(old, 'SIGSTOP');
    // Sent to the frozen leader: the kernel queues it; the process only sees it after SIGCONT, when it is no
    // longer leader. Any 201 it gives must be a real commit.
    const held = cluster.putObject(old, { cover: makeCover(16, 16, 12), message: 'held by a frozen leader' }, 30_000);
    const after = await cluster.waitForLeader({ notId: old, minTerm: before.term + 1, deadlineMs: 10_000 });
    const during = await writeObjects(cluster, 4, 'while-frozen');
    await cluster.kill(old, 'SIGCONT');
    const heldResult = await held;
    const final = await cluster.waitForLeader({ among: cluster.allIds(), deadlineMs: 15_000 });
    expect(final.term).to.be.at.least(after.term);
    const oldView = final.statuses.get(old)!;
    expect(oldView.nodes.find((n) => n.id === old)?.role, `${old}'s own role after SIGCONT`).to.not.equal('Leader');
    const committed = [...acks, ...during];
    if (heldResult.status === 201) committed.push(heldResult.body as ObjectAck);
    else expect(heldResult.status, JSON.stringify(heldResult.body)).to.be.oneOf([503, 504]);
    for (const id of cluster.allIds()) {
      expect(await verifyObjects(cluster, id, committed), `reads on ${id}`).to.deep.equal([]);
    }
  });

  it('a frozen (SIGSTOP) follower does not stall writes, and catches up after SIGCONT', async () => {
    const { leaderId } = await cluster.waitForLeader();
    const follower = cluster.allIds().find((id) => id !== leaderId)!;
    await cluster.kill(follower, 'SIGSTOP');
    // Its sockets stay open and its kernel buffers fill: the leader must keep committing with the other node.
    const acks = await writeObjects(cluster, 8, 'follower-frozen');
    await cluster.kill(follower, 'SIGCONT');
    await pollUntil(`${follower} to serve every object written while it was frozen`, async () => {
      const bad = await verifyObjects(cluster, follower, acks, { stale: true, deadlineMs: 2_000 });
      if (bad.length) throw new Error(`${bad.length} missing, e.g. ${bad[0]}`);
      return true;
    }, { deadlineMs: 20_000, intervalMs: 100 });
    await cluster.waitReady();
  });

  it('a restarted follower catches up on objects written while it was down', async () => {
    const { leaderId } = await cluster.waitForLeader();
    const follower = cluster.allIds().find((id) => id !== leaderId)!;
    await cluster.kill(follower, 'SIGKILL');
    const acks = await writeObjects(cluster, 6, 'while-down');
    await cluster.restart(follower);
    await pollUntil(`${follower} to serve every object written while it was down (stale reads)`, async () => {
      const bad = await verifyObjects(cluster, follower, acks, { stale: true });
      if (bad.length) throw new Error(bad.slice(0, 3).join('; '));
      return true;
    }, { deadlineMs: 20_000, intervalMs: 100 });
    expect(await verifyObjects(cluster, follower, acks)).to.deep.equal([]);
    await cluster.waitReady();
  });

  it('a restarted follower catches up through a snapshot after the leader compacted its log', async () => {
    const { leaderId } = await cluster.waitForLeader();
    const follower = cluster.allIds().find((id) => id !== leaderId)!;
    await cluster.kill(follower, 'SIGKILL');
    const node = cluster.node(follower);
    const matchedBefore = node.matched.length;
    // Far more entries than the snapshot threshold, and more bytes than the log budget: the leader must have
    // compacted past the follower's log.
    const acks = await writeObjects(cluster, SNAPSHOT_ENTRIES * 3, 'compacted');
    await cluster.restart(follower);
    await pollUntil(`${follower} to serve every object after the snapshot`, async () => {
      const bad = await verifyObjects(cluster, follower, acks, { stale: true });
      if (bad.length) throw new Error(`${bad.length} missing, e.g. ${bad[0]}`);
      return true;
    }, { deadlineMs: 30_000, intervalMs: 200 });
    expect(await verifyObjects(cluster, follower, acks)).to.deep.equal([]);

    // The counter lives in the process, so it only counts snapshots installed since the restart (loading the
    // node's own snapshot from disk at start-up is not an installation).
    const installedLog = node.matched.slice(matchedBefore).filter((l) => /"msg":"snapshot installed"/.test(l));
    const metrics = String((await cluster.request(follower, '/metrics')).body);
    const installed = /^stego_raft_snapshots_total\{event="installed"\} (\d+)/m.exec(metrics);
    expect(Number(installed?.[1] ?? 0), `${follower}: stego_raft_snapshots_total{event="installed"}`).to.be.greaterThan(0);
    expect(installedLog.length, `${follower} logs "snapshot installed" after the restart`).to.be.greaterThan(0);
    await cluster.waitReady();
  });
});
