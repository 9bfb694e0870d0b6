import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger } from '../log.js';
import { fakePng, pollUntil, TestCluster } from './test-cluster.js';
import { ClusterError } from './errors.js';
import { encodeCommand } from './commands.js';

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

  it('a no-op put answers the object its apply found, even when a delete applied right after it (B1)', async () => {
    c = await TestCluster.start();
    const leader = await c.waitForLeader();
    const service = c.member(leader).service;
    const first = fakePng('first');
    const stored = await service.putObject(first.png, first.sha256, 'b1-key');
    // same key (same object id): a no-op at apply. The delete is proposed in the same tick, so both
    // entries commit and apply together before the put's answer is built.
    const second = fakePng('second');
    const put = service.putObject(second.png, second.sha256, 'b1-key');
    const del = service.write(encodeCommand({ kind: 'delete', id: stored.id }));
    const [answer] = await Promise.all([put, del]);
    expect(answer.id).to.equal(stored.id);
    expect(answer.sha256).to.equal(first.sha256);
    expect(await service.getObject(stored.id, false)).to.equal(undefined);
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
    expect((err as ClusterError).code).to.be.oneOf(['no_leader', 'timeout', 'unavailable', 'proposal_lost']);
  });
});

describe('cluster: snapshots, membership and storage failure (in-process)', function () {
  let c: TestCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  async function writeMany(from: TestCluster, via: string, n: number, prefix: string): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const { png, sha256 } = fakePng(`${prefix}-${i}`, 512);
      ids.push((await from.member(via).service.putObject(png, sha256)).id);
    }
    return ids;
  }

  it('a follower that was down past a compaction catches up through a streamed snapshot', async () => {
    // a log budget (a quarter of snapshotBytes) of a few entries: the leader cannot keep what the follower lacks
    c = await TestCluster.start({ overrides: { snapshotEntries: 20, snapshotTrailingEntries: 5, snapshotBytes: 8192 } });
    const leader = await c.waitForLeader();
    const lagging = [...c.members.keys()].find((id) => id !== leader)!;
    await c.crash(lagging);
    const ids = await writeMany(c, leader, 60, 'snap');
    const del = ids.shift()!;
    expect(await c.member(leader).service.deleteObject(del)).to.equal(true);
    await pollUntil('leader to compact its log', 5000, () => c!.member(leader).node.status().snapshot_index > 20);
    const back = await c.restart(lagging, ['n1', 'n2', 'n3']);
    await pollUntil('lagging node to catch up', 10_000, () => back.node.appliedIndex >= c!.member(leader).node.commitIndex);
    expect(back.node.status().snapshot_index).to.be.greaterThan(1);
    expect(back.node.store.size).to.equal(ids.length);
    expect(back.node.store.get(del)).to.equal(undefined);
    for (const id of ids.slice(-3)) expect((await back.service.getObject(id, true))?.bytes.length).to.equal(512);
    // and it restarts from its own snapshot + log
    await c.crash(lagging);
    const again = await c.restart(lagging, ['n1', 'n2', 'n3']);
    await pollUntil('restarted node to replay its log', 5000, () => again.node.readiness().ready);
    expect(again.node.store.size).to.equal(ids.length);
  });

  it('a leader compacts no further than a lagging follower needs, within its log budget: the follower catches up from the log', async () => {
    const sent: unknown[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.includes('"snapshot sent"')) sent.push(JSON.parse(l));
        done();
      },
    });
    c = await TestCluster.start({ overrides: { snapshotEntries: 20, snapshotTrailingEntries: 5 }, logger: createLogger({ nodeId: 'test', level: 'info', destination: sink }) });
    const leader = await c.waitForLeader();
    const lagging = [...c.members.keys()].find((id) => id !== leader)!;
    const matched = c.member(leader).node.progressOf(lagging)!.match;
    await c.crash(lagging);
    const ids = await writeMany(c, leader, 60, 'kept');
    await pollUntil('leader to take a snapshot', 5000, () => c!.member(leader).node.status().snapshot_index > 20);
    // entries after the follower's match are all still there, though the trailing count alone would drop them
    expect(c.member(leader).node.status().snapshot_index - 5).to.be.greaterThan(matched);
    const back = await c.restart(lagging, ['n1', 'n2', 'n3']);
    await pollUntil('lagging node to catch up', 10_000, () => back.node.appliedIndex >= c!.member(leader).node.commitIndex);
    expect(back.node.store.size).to.equal(ids.length);
    expect(sent).to.deep.equal([]);
  });

  it('a follower that holds part of the store is sent only the packs it lacks, and completes them from its own', async () => {
    const sent: { to: string; bytes: number; delta: boolean }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.includes('"snapshot sent"')) sent.push(JSON.parse(l));
        done();
      },
    });
    // a log budget of a few entries: the follower cannot catch up from the log
    c = await TestCluster.start({ overrides: { snapshotEntries: 20, snapshotTrailingEntries: 5, snapshotBytes: 8192 }, logger: createLogger({ nodeId: 'test', level: 'info', destination: sink }) });
    const leader = await c.waitForLeader();
    const lagging = [...c.members.keys()].find((id) => id !== leader)!;
    const old = await writeMany(c, leader, 40, 'old');
    await pollUntil('every member to snapshot the old objects', 5000, () => [...c!.members.values()].every((m) => m.node.status().snapshot_index > 20));
    await pollUntil('the follower to apply them', 5000, () => c!.member(lagging).node.appliedIndex >= c!.member(leader).node.commitIndex);
    await c.crash(lagging);
    const leaderSnapshot = c.member(leader).node.status().snapshot_index;
    const added = await writeMany(c, leader, 40, 'new');
    await pollUntil('leader to compact past the follower', 5000, () => c!.member(leader).node.status().snapshot_index > leaderSnapshot + 20);
    const back = await c.restart(lagging, ['n1', 'n2', 'n3']);
    await pollUntil('lagging node to catch up', 10_000, () => back.node.appliedIndex >= c!.member(leader).node.commitIndex);
    const toLagging = sent.filter((s) => s.to === lagging);
    expect(toLagging).to.have.length.greaterThan(0);
    // the new objects' bytes and a manifest of 80 entries (~34 KB), not the old objects' bytes too (~53 KB)
    for (const s of toLagging) expect(s.delta).to.equal(true);
    expect(toLagging.at(-1)!.bytes).to.be.lessThan(80 * 512);
    expect(back.node.store.size).to.equal(80);
    for (const id of [...old, ...added]) expect((await back.service.getObject(id, true))?.bytes.length, id).to.equal(512);
    await c.crash(lagging);
    const again = await c.restart(lagging, ['n1', 'n2', 'n3']);
    await pollUntil('restarted node to replay its log', 5000, () => again.node.readiness().ready);
    expect(again.node.store.size).to.equal(80);
    for (const id of old.slice(0, 3)) expect((await again.service.getObject(id, true))?.bytes.length, id).to.equal(512);
  });

  it('adds a member as learner, promotes it once caught up, then removes it; removing the leader hands over first', async () => {
    c = await TestCluster.start({ overrides: { snapshotEntries: 10, snapshotTrailingEntries: 2 } });
    const leader = await c.waitForLeader();
    const ids = await writeMany(c, leader, 15, 'member');
    const n4 = await c.startMember('n4', ['n1', 'n2', 'n3', 'n4'], true);
    const follower = [...c.members.keys()].find((id) => id !== leader && id !== 'n4')!;
    // admin calls may land on any node: a follower forwards them to the leader
    const added = await c.member(follower).service.addMember('n4', c.addressOf('n4'));
    expect(added.done).to.equal(true);
    expect(c.member(leader).node.confState().voters).to.include('n4');
    await pollUntil('n4 to apply everything', 5000, () => n4.node.appliedIndex >= c!.member(leader).node.commitIndex);
    expect(n4.node.store.size).to.equal(ids.length);
    expect(n4.node.store.members().get('n1')).to.equal(c.addressOf('n1'));

    const removed = await c.member(leader).service.removeMember('n4');
    expect(removed.done).to.equal(true);
    await pollUntil('n4 to notice its removal', 5000, () => n4.node.removed);
    expect(c.member(leader).node.confState().voters).to.not.include('n4');
    expect(c.member(leader).node.status().nodes.map((n) => n.id)).to.deep.equal(['n1', 'n2', 'n3']);

    const removedLeader = await c.member(follower).service.removeMember(leader);
    expect(removedLeader.done).to.equal(true);
    const rest = ['n1', 'n2', 'n3'].filter((id) => id !== leader);
    const next = await c.waitForLeader(rest);
    expect(next).to.not.equal(leader);
    expect(c.member(next).node.confState().voters).to.deep.equal(rest);
    await pollUntil('old leader to notice its removal', 5000, () => c!.member(leader).node.removed);
  });

  it('refuses a second membership change while one is in progress, and unknown members', async () => {
    c = await TestCluster.start({ catchUpTimeoutMs: 1000 });
    const leader = await c.waitForLeader();
    const err = await c.member(leader).service.removeMember('n9').catch((e: unknown) => e);
    expect((err as ClusterError).code).to.equal('not_found');
    const bad = await Promise.resolve()
      .then(() => c!.member(leader).service.addMember('n4', 'no-port'))
      .catch((e: unknown) => e);
    expect((bad as ClusterError).code).to.equal('invalid_member');
    // n4 never starts: the add stays pending as a learner (202) and blocks other changes (409)
    const pending = c.member(leader).service.addMember('n4', 'mem-n4:1');
    await pollUntil('n4 to be a learner', 5000, () => c!.member(leader).node.confState().learners.includes('n4'));
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    const conflict = await c.member(leader).service.removeMember(follower).catch((e: unknown) => e);
    expect((conflict as ClusterError).code).to.equal('change_in_progress');
    expect((await pending).done).to.equal(false);
    // the stuck learner itself can always be removed, which cancels its promotion
    expect((await c.member(leader).service.removeMember('n4')).done).to.equal(true);
    expect(c.member(leader).node.confState().learners).to.deep.equal([]);
  });

  it('a leader asked to remove itself hands over, is removed, and reports success', async () => {
    c = await TestCluster.start();
    const leader = await c.waitForLeader();
    const r = await c.member(leader).service.removeMember(leader);
    expect(r.done).to.equal(true);
    expect(c.member(leader).node.removed).to.equal(true);
    const rest = ['n1', 'n2', 'n3'].filter((id) => id !== leader);
    const next = await c.waitForLeader(rest);
    expect(c.member(next).node.confState().voters).to.deep.equal(rest);
  });

  it('transfers leadership on request', async () => {
    c = await TestCluster.start();
    const leader = await c.waitForLeader();
    const target = [...c.members.keys()].find((id) => id !== leader)!;
    const r = await c.member(leader).service.transferLeadership(target);
    expect(r.body.leader_id).to.equal(target);
    expect(await c.waitForLeader()).to.equal(target);
  });

  it("a leader answers a write before it tells the followers the write's commit index", async () => {
    c = await TestCluster.start();
    const leader = await c.waitForLeader();
    const service = c.member(leader).service;
    const transport = c.member(leader).transport;
    // the new leader's own first entry committed (its commit index is sent out like any other)
    await pollUntil('the election entry committed', 5_000, () => c!.member(leader).node.status().commit_index === c!.member(leader).node.status().last_index);
    const commitBefore = c.member(leader).node.status().commit_index;
    const events: string[] = [];
    const send = transport.send.bind(transport);
    transport.send = (m) => {
      // the commit-only append that carries the new commit index to a follower
      if (m.type === 'app' && (m.entries?.length ?? 0) === 0 && m.commit > commitBefore) events.push(`commit ${m.commit} to ${m.to}`);
      send(m);
    };
    const { png, sha256 } = fakePng('answered-first');
    await service.putObject(png, sha256).then(() => events.push('answered'));
    await pollUntil('the commit index sent to the followers', 5_000, () => events.some((e) => e.startsWith('commit')));
    expect(events.indexOf('answered'), events.join(', ')).to.equal(0);
  });

  it('a leader whose fsync fails steps down, refuses work with 503, and the others carry on', async () => {
    c = await TestCluster.start({ overrides: { fsyncDeadlineMs: 300 } });
    const leader = await c.waitForLeader();
    await writeMany(c, leader, 2, 'pre');
    c.member(leader).faults.fail = true;
    const { png, sha256 } = fakePng('doomed');
    const err = await c.member(leader).service.putObject(png, sha256).catch((e: unknown) => e);
    expect((err as ClusterError).code).to.equal('unavailable');
    const sick = c.member(leader).node;
    expect(sick.haltCause).to.not.equal(undefined);
    expect(sick.readiness().ready).to.equal(false);
    expect(sick.status().storage_failed).to.be.a('string');
    const rest = [...c.members.keys()].filter((id) => id !== leader);
    const next = await c.waitForLeader(rest);
    const ids = await writeMany(c, next, 2, 'post');
    expect(c.member(next).node.store.get(ids[1]!)).to.not.equal(undefined);
  });

  it('a stalled fsync (past the deadline) also steps the node down', async () => {
    c = await TestCluster.start({ overrides: { fsyncDeadlineMs: 200 } });
    const leader = await c.waitForLeader();
    c.member(leader).faults.stallMs = 1500;
    const { png, sha256 } = fakePng('stalled');
    const err = await c.member(leader).service.putObject(png, sha256).catch((e: unknown) => e);
    expect((err as ClusterError).code).to.equal('unavailable');
    expect(c.member(leader).node.haltCause?.code).to.equal('storage_stalled');
    await c.waitForLeader([...c.members.keys()].filter((id) => id !== leader));
  });
});

describe('cluster: heartbeats follow the clock, not the tick count', function () {
  let c: TestCluster | undefined;
  let spinner: NodeJS.Timeout | undefined;
  afterEach(async () => {
    clearInterval(spinner);
    await c?.stop();
    c = undefined;
  });

  it('a leader whose ticks run late still sends a heartbeat about every heartbeat interval of wall time', async function () {
    this.timeout(20_000);
    // the default timings: 5 ms tick, 50 ms heartbeat, 150–300 ms election timeout
    c = await TestCluster.start({ overrides: { tickMs: 5, heartbeatTicks: 10, electionTicks: 30 } });
    const leader = await c.waitForLeader();
    const node = c.member(leader).node;
    const transport = c.member(leader).transport;
    let ticks = 0;
    let rounds = 0;
    // the core is private to the driver: count the ticks it is given while this node leads
    const raw = (node as unknown as { raw: { tick(): void } }).raw;
    const tick = raw.tick.bind(raw);
    raw.tick = () => {
      if (node.isLeader) ticks++;
      tick();
    };
    const peer = [...c.members.keys()].find((id) => id !== leader)!;
    const send = transport.send.bind(transport);
    transport.send = (m) => {
      if (m.type === 'heartbeat' && m.to === peer) rounds++;
      send(m);
    };
    // a busy loop: a timer of the ticks' own period holds it 15 ms each time, so every 5 ms tick runs at
    // least 10 ms late; counted in ticks, a heartbeat round took 10 of them (150 ms or more of wall time)
    spinner = setInterval(() => {
      const end = performance.now() + 15;
      while (performance.now() < end);
    }, 5);
    await new Promise((r) => setTimeout(r, 1500));
    clearInterval(spinner);
    expect(node.isLeader, 'the leader kept its role').to.equal(true);
    expect(ticks, 'ticks while leading').to.be.greaterThan(10);
    // one round per 50 ms of wall time is at least one per 4 ticks of ≥ 15 ms; per tick count it was 1 in 10
    expect(rounds * 5, `${rounds} heartbeat rounds in ${ticks} late ticks`).to.be.at.least(ticks);
  });
});
