import { expect } from 'chai';
import { fakePng, pollUntil, TestCluster } from './test-cluster.js';
import { ClusterError } from './errors.js';

describe('cluster: RaftNode + ClusterService over InMemoryTransport', function () {
  let c: TestCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  it('three nodes elect one leader and report the same configuration', async () => {
    c = await TestCluster.start();
    const leader = await c.waitForLeader();
    for (const m of c.members.values()) {
      const st = m.node.status();
      expect(st.leader_id).to.equal(leader);
      expect(st.nodes.map((n) => n.id)).to.deep.equal(['n1', 'n2', 'n3']);
      expect(st.nodes.every((n) => n.voter)).to.equal(true);
    }
    const st = c.member(leader).node.status();
    expect(st.nodes.find((n) => n.id === leader)!.role).to.equal('Leader');
  });

  it('an object written on a follower is committed, applied locally before the answer, and readable everywhere', async () => {
    c = await TestCluster.start();
    const leader = await c.waitForLeader();
    const follower = [...c.members.keys()].find((id) => id !== leader)!;
    const { png, sha256 } = fakePng('hello');
    const meta = await c.member(follower).service.putObject(png, sha256);
    // read-your-writes on the node written to, even for a stale read
    const local = await c.member(follower).service.getObject(meta.id, true);
    expect(local?.bytes.equals(png)).to.equal(true);
    for (const m of c.members.values()) {
      const got = await m.service.getObject(meta.id, false);
      expect(got?.meta.sha256).to.equal(sha256);
      expect(got?.bytes.equals(png)).to.equal(true);
    }
    const listed = await c.member(leader).service.listObjects(false);
    expect(listed.map((o) => o.id)).to.deep.equal([meta.id]);
  });

  it('delete removes the object on every node and answers false for an absent one', async () => {
    c = await TestCluster.start();
    const leader = await c.waitForLeader();
    const { png, sha256 } = fakePng('to-delete');
    const meta = await c.member(leader).service.putObject(png, sha256);
    const follower = [...c.members.keys()].find((id) => id !== leader)!;
    expect(await c.member(follower).service.deleteObject(meta.id)).to.equal(true);
    expect(await c.member(follower).service.deleteObject(meta.id)).to.equal(false);
    for (const m of c.members.values()) expect(await m.service.getObject(meta.id, false)).to.equal(undefined);
  });

  it('a leader crash keeps committed objects and a new leader accepts writes', async () => {
    c = await TestCluster.start();
    const leader = await c.waitForLeader();
    const objs = [];
    for (let i = 0; i < 5; i++) {
      const { png, sha256 } = fakePng(`obj-${i}`);
      objs.push(await c.member(leader).service.putObject(png, sha256));
    }
    await c.crash(leader);
    const rest = [...c.members.keys()];
    const next = await c.waitForLeader(rest);
    expect(next).to.not.equal(leader);
    for (const id of rest) for (const o of objs) expect((await c.member(id).service.getObject(o.id, false))?.meta.sha256).to.equal(o.sha256);
    const { png, sha256 } = fakePng('after');
    await c.member(rest.find((id) => id !== next)!).service.putObject(png, sha256);
    // the crashed node restarts from its own disk and catches up
    const back = await c.restart(leader, ['n1', 'n2', 'n3']);
    await pollUntil('restarted node to apply everything', 10_000, () => back.node.appliedIndex >= c!.member(next).node.commitIndex);
    expect(back.node.store.size).to.equal(6);
  });

  it('answers 503 no_leader when the majority is gone', async () => {
    c = await TestCluster.start({ overrides: { requestTimeoutMs: 800 } });
    const leader = await c.waitForLeader();
    const others = [...c.members.keys()].filter((id) => id !== leader);
    await c.crash(others[0]!);
    await c.crash(others[1]!);
    // check-quorum makes the isolated leader step down
    await pollUntil('isolated leader to step down', 5000, () => !c!.member(leader).node.isLeader);
    const { png, sha256 } = fakePng('nobody');
    const err = await c.member(leader).service.putObject(png, sha256).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ClusterError);
    expect((err as ClusterError).status).to.equal(503);
  });
});
