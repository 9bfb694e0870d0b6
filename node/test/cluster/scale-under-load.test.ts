// Scaling 3→5 one member at a time (add learner → node promotes it once caught up → next member) while a
// paced writer commits ~40 objects of ~33 KB per second: the sequence the operator runs. Every step must
// finish within its deadline, the leader must stay (no election), and the writer must keep getting acks.

import { expect } from 'chai';
import { Cluster, dumpOnFailure } from './harness.js';
import { BackgroundWriter } from './workload.js';
import { makeCover } from './fixtures.js';

// 8 loops, each starting a write at most every 200 ms: 40 writes per second at most, at most 8 in flight.
const WRITER = { concurrency: 8, paceMs: 200, timeoutMs: 10_000, tag: 'scale' };

describe('cluster (3→5 processes): scale-up under a heavy writer', function () {
  this.timeout(600_000);
  let cluster: Cluster;
  let writer: BackgroundWriter | undefined;

  before(async function () {
    this.timeout(60_000);
    cluster = await Cluster.start({ size: 3, env: JSON.parse(process.env.SCALE_ENV ?? "{}") as Record<string, string> });
  });
  afterEach(function () {
    dumpOnFailure(this, cluster);
  });
  after(async () => {
    await writer?.stop();
    await cluster?.stop();
  });

  it('adds member 4 and then member 5 as learners that get promoted, without losing the leader', async () => {
    const founders = cluster.allIds();
    const before = await cluster.waitForLeader();
    // RGBA noise: ~33 KB per object that does not compress
    writer = new BackgroundWriter(cluster, { ...WRITER, targets: () => founders, cover: makeCover(92, 92, 11) }).start();
    const preload = Number(process.env.SCALE_PRELOAD ?? 200);
    await writer.waitForMoreAcks(preload, preload * 100);
    const t1 = Date.now();
    const n4 = await cluster.addNode({ deadlineMs: 60_000 });
    const t2 = Date.now();
    const n5 = await cluster.addNode({ deadlineMs: 60_000 });
    const t3 = Date.now();
    // Readiness of every member while the writer runs: a member that keeps answering 503 stalls a
    // StatefulSet rollout (and the operator's view of ready members) even though Raft is fine.
    const notReady = new Map<string, string[]>();
    const sampleUntil = Date.now() + 5_000;
    let samples = 0;
    while (Date.now() < sampleUntil) {
      samples++;
      for (const id of cluster.liveIds()) {
        const r = await cluster.request<{ reason?: string }>(id, '/readyz', { timeoutMs: 2_000 });
        if (r.status !== 200) notReady.set(id, [...(notReady.get(id) ?? []), JSON.stringify(r.body).slice(0, 120)]);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`scale-under-load: /readyz not 200 in ${samples} rounds: ${JSON.stringify([...notReady].map(([id, v]) => [id, v.length, v[0]]))}`);
    const ackedAtEnd = writer.ackedCount();
    await writer.stop();
    expect([...notReady], 'members answering /readyz 503 while they keep up with the writer').to.deep.equal([]);
    const after = await cluster.waitForLeader();
    console.log(`scale-under-load: ${n4} in ${t2 - t1} ms, ${n5} in ${t3 - t2} ms; acked ${ackedAtEnd} failed ${writer.attempts - ackedAtEnd}; term ${before.term}→${after.term}`);
    for (const [id, s] of after.statuses) {
      expect(s.nodes.filter((n) => n.voter).map((n) => n.id).sort(), `${id}'s voters`).to.deep.equal([...founders, n4, n5].sort());
    }
    expect(after.term, 'no election while scaling').to.equal(before.term);
  });
});

describe('cluster (3→4 processes): a learner whose leader changes while it catches up', function () {
  this.timeout(120_000);
  let cluster: Cluster;

  before(async function () {
    this.timeout(60_000);
    cluster = await Cluster.start({ size: 3 });
  });
  afterEach(function () {
    dumpOnFailure(this, cluster);
  });
  after(async () => {
    await cluster?.stop();
  });

  // The operator adds a member once (POST /admin/members) and then waits while a learner exists, trusting
  // the node to promote it once caught up. An election while the learner copies the log (heavy writes) used
  // to strand it: only the leader that accepted the add promoted, so under the new leader it stayed a
  // learner for good and the scale-up never finished.
  it('is promoted by the new leader once it catches up', async () => {
    const { leaderId } = await cluster.waitForLeader();
    const joiner = await cluster.startJoiner();
    await cluster.kill(joiner, 'SIGSTOP'); // it cannot catch up until resumed
    const add = cluster.request<unknown>(leaderId, '/admin/members', {
      method: 'POST',
      headers: { ...cluster.adminHeaders(), 'content-type': 'application/json' },
      body: JSON.stringify({ id: joiner, raft_address: cluster.node(joiner).raftAddress }),
      timeoutMs: 45_000,
    });
    await cluster.waitForMembership((_voters, all) => all.includes(joiner), `${joiner} to be added as a learner`, 15_000);
    // the leader now (an election on a loaded machine may already have replaced the one found above; a
    // transfer sent to a follower would be forwarded and could hand leadership back to `leaderId`)
    const before = await cluster.waitForLeader();
    const moved = await cluster.request<unknown>(before.leaderId, '/admin/transfer-leadership', {
      method: 'POST',
      headers: { ...cluster.adminHeaders(), 'content-type': 'application/json' },
      body: '{}',
      timeoutMs: 15_000,
    });
    expect(moved.status, `transfer-leadership → ${JSON.stringify(moved.body)}`).to.equal(200);
    const answer = await add;
    expect(answer.status, `POST /admin/members → ${JSON.stringify(answer.body)}`).to.be.oneOf([200, 202]);
    const after = await cluster.waitForLeader({ minTerm: before.term + 1 });
    expect(after.term, `a new term after the transfer from ${before.leaderId}`).to.be.greaterThan(before.term);
    await cluster.kill(joiner, 'SIGCONT');
    // Nobody calls the admin API again: the new leader must finish what the old one started.
    await cluster.waitForMembership((voters) => voters.includes(joiner), `${joiner} to be promoted by ${after.leaderId}`, 20_000);
  });
});
