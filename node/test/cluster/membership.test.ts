// Growing a 3-node cluster to 5 and shrinking it back while a client keeps committing objects.
// Every acknowledged write must survive and the writer must keep getting acknowledgements in each phase.

import { expect } from 'chai';
import { Cluster, dumpOnFailure, pollUntil } from './harness.js';
import { BackgroundWriter, verifyObjects } from './workload.js';

const SNAPSHOT_ENTRIES = 50;
const TRAILING_ENTRIES = 200;

async function snapshotsInstalled(cluster: Cluster, id: string): Promise<number> {
  const metrics = String((await cluster.request(id, '/metrics')).body);
  return Number(/^stego_raft_snapshots_total\{event="installed"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
}

describe('cluster (3→5→3 processes): membership changes under write load', function () {
  this.timeout(180_000);
  let cluster: Cluster;
  let writer: BackgroundWriter | undefined;

  before(async function () {
    this.timeout(60_000);
    // Snapshots every 50 entries and 200 entries kept behind each: once the log passes ~250 entries a
    // new member can only start from a snapshot, and the 200 trailing entries leave room for the writes
    // that land while it installs, even on a loaded machine. (When an install still took ~5 ms per object,
    // the default window for 50-entry snapshots, 25 entries, made a joining member loop on snapshots.)
    cluster = await Cluster.start({
      size: 3,
      env: { STEGO_SNAPSHOT_ENTRIES: String(SNAPSHOT_ENTRIES), STEGO_SNAPSHOT_TRAILING_ENTRIES: String(TRAILING_ENTRIES) },
    });
  });
  afterEach(async function () {
    dumpOnFailure(this, cluster);
  });
  after(async () => {
    await writer?.stop();
    await cluster?.stop();
  });

  it('adds a 4th and 5th member and removes them without losing an acknowledged write', async () => {
    const founders = cluster.allIds();
    // The writer only talks to the founding members, which stay throughout.
    writer = new BackgroundWriter(cluster, { concurrency: 2, targets: () => founders, tag: 'member' }).start();
    // Past snapshot + trailing window, so the leader's log no longer starts at index 1.
    await writer.waitForMoreAcks(SNAPSHOT_ENTRIES + TRAILING_ENTRIES + 10, 90_000);

    const n4 = await cluster.addNode();
    await writer.waitForMoreAcks(5);
    const n5 = await cluster.addNode();
    await writer.waitForMoreAcks(5);
    for (const id of [n4, n5]) {
      expect(await snapshotsInstalled(cluster, id), `${id} was seeded by a snapshot`).to.be.greaterThan(0);
    }

    const { leaderId, statuses } = await cluster.waitForLeader();
    for (const [id, s] of statuses) {
      const voters = s.nodes.filter((n) => n.voter).map((n) => n.id).sort();
      expect(voters, `${id}'s voters`).to.deep.equal([...founders, n4, n5].sort());
      for (const n of s.nodes) expect(n.healthy, `${id} sees ${n.id} healthy`).to.equal(true);
    }
    const leaderView = statuses.get(leaderId)!;
    for (const n of leaderView.nodes.filter((x) => x.id !== leaderId)) {
      expect(n.match_index, `leader tracks ${n.id}`).to.be.a('number').greaterThan(0);
    }
    // New members hold everything acknowledged so far (linearizable read on them).
    const soFar = [...writer.acked.values()];
    expect(await verifyObjects(cluster, n4, soFar), `objects on ${n4}`).to.deep.equal([]);
    expect(await verifyObjects(cluster, n5, soFar), `objects on ${n5}`).to.deep.equal([]);

    await cluster.removeNode(n5);
    await writer.waitForMoreAcks(5);
    await cluster.removeNode(n4);
    await writer.waitForMoreAcks(5);

    await writer.stop();
    const after = await cluster.waitForLeader();
    for (const [id, s] of after.statuses) {
      expect(s.nodes.map((n) => n.id).sort(), `${id}'s members after removal`).to.deep.equal([...founders].sort());
    }
    const acked = [...writer.acked.values()];
    expect(acked.length).to.be.greaterThan(SNAPSHOT_ENTRIES + TRAILING_ENTRIES + 30);
    for (const id of cluster.liveIds()) {
      expect(await verifyObjects(cluster, id, acked), `every acknowledged write on ${id}`).to.deep.equal([]);
    }
    // A stale read after the linearizable ones: each node has applied everything locally too.
    for (const id of cluster.liveIds()) {
      expect(await verifyObjects(cluster, id, acked, { stale: true }), `stale reads on ${id}`).to.deep.equal([]);
    }
    await cluster.waitReady();
  });

  it('removes the current leader: the rest elect a new leader, the removal is reported as done, no write is lost', async () => {
    const n = await cluster.addNode();
    writer = new BackgroundWriter(cluster, { concurrency: 2, tag: 'leader-removal' }).start();
    await writer.waitForMoreAcks(5);
    const { leaderId, term } = await cluster.waitForLeader();
    const answers = await cluster.removeNode(leaderId);
    const rest = cluster.liveIds();
    expect(rest).to.not.include(leaderId);
    const after = await cluster.waitForLeader({ among: rest, minTerm: term, deadlineMs: 15_000 });
    expect(after.leaderId).to.not.equal(leaderId);
    for (const [id, s] of after.statuses) {
      expect(s.nodes.map((x) => x.id).sort(), `${id}'s members`).to.deep.equal(rest.slice().sort());
    }
    await writer.waitForMoreAcks(5, 20_000);
    await writer.stop();
    for (const id of rest) {
      expect(await verifyObjects(cluster, id, writer.acked.values()), `acknowledged writes on ${id}`).to.deep.equal([]);
    }
    expect(rest).to.include(n);
    // Last, so the cluster checks above run even when this fails: the DELETE that removed the leader
    // must say so (etcd's MemberRemove of the leader succeeds too), not leave the caller guessing.
    expect(answers[0]!.status, `DELETE /admin/members/${leaderId} on itself → ${JSON.stringify(answers[0]!.body)}`).to.be.within(200, 299);
  });

  it('a removed member restarted from its old data dir stays out of the cluster', async () => {
    const members = cluster.liveIds();
    const zombie = await cluster.addNode();
    await cluster.removeNode(zombie, { keepProcess: true });
    await cluster.kill(zombie, 'SIGKILL');
    await cluster.restart(zombie);
    let w: BackgroundWriter | undefined;
    try {
      // Even if it was killed before the removal reached it, it learns it: the members refuse its links
      // with reason 'removed'. Then it says so, fails readiness and presents nobody as leader.
      await pollUntil(`${zombie} to learn it was removed and refuse readiness`, async () => {
        const ready = await cluster.request(zombie, '/readyz');
        if (ready.status !== 503) throw new Error(`/readyz ${ready.status}`);
        const s = (await cluster.status(zombie)) as Awaited<ReturnType<typeof cluster.status>> & { removed?: boolean };
        if (s.removed !== true) throw new Error(`/cluster/status removed=${String(s.removed)}`);
        for (const n of s.nodes) expect(n.role, `${zombie} must not present ${n.id} as leader`).to.not.equal('Leader');
        return true;
      }, { deadlineMs: 10_000 });
      // The real members keep working without it while it runs (the writes are the observation window).
      w = new BackgroundWriter(cluster, { concurrency: 2, targets: () => members, tag: 'zombie' }).start();
      await w.waitForMoreAcks(20, 30_000);
      await w.stop();
      const { leaderId, statuses } = await cluster.waitForLeader({ among: members });
      expect(leaderId).to.not.equal(zombie);
      for (const n of (await cluster.status(zombie)).nodes) expect(n.role, `${zombie}'s view of ${n.id}`).to.not.equal('Leader');
      for (const [id, s] of statuses) {
        expect(s.nodes.map((n) => n.id), `${id}'s members`).to.not.include(zombie);
      }
      for (const id of members) {
        expect(await verifyObjects(cluster, id, w.acked.values()), `writes on ${id}`).to.deep.equal([]);
      }
    } finally {
      await w?.stop();
      await cluster.discard(zombie);
    }
  });
});
