import { expect } from 'chai';
import { ConfChangeError, NotLeaderError, ProposalDroppedError } from './errors.js';
import { makeMessage, type Message } from './message.js';
import { RawNode } from './rawnode.js';
import { MemoryStorage } from './storage.js';
import { TestNetwork, texts } from './testnet.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Cuts `old` off and makes the others forget it (as when its process dies), so `next` can campaign at once. */
function failOver(net: TestNetwork, old: string, next: string): void {
  net.isolate(old);
  for (const id of net.nodes.keys()) if (id !== old) net.raw(id).peerLinkLost(old);
  net.raw(next).campaign();
  net.settle();
}

function electA(voters = ['a', 'b', 'c'], overrides = {}): TestNetwork {
  const net = new TestNetwork(voters, overrides);
  net.campaign('a');
  expect(net.leader()).to.equal('a');
  return net;
}

describe('raft: elections (Raft §5.2)', () => {
  it('a follower campaigns after a randomized timeout in [electionTicks, 2*electionTicks)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const node = new RawNode({ id: 'a', storage: new MemoryStorage(), electionTicks: 10, heartbeatTicks: 1, randomSeed: seed, peers: ['a', 'b', 'c'] });
      node.advance(node.ready());
      let ticks = 0;
      while (node.role === 'follower' && ticks < 100) {
        node.tick();
        ticks++;
      }
      expect(ticks, `seed ${seed}`).to.be.within(10, 19);
      expect(node.role).to.equal('preCandidate');
    }
  });

  it('the vote is in the Ready that carries the vote response (persist before sending)', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.raw('a').campaign();
    const pre = net.readyOf('a');
    net.raw('a').advance(pre);
    for (const m of pre.messages) net.raw(m.to).step(m);
    const b = net.readyOf('b');
    net.raw('b').advance(b);
    expect(b.messages.map((m) => m.type)).to.deep.equal(['preVoteResp']);
    expect(b.hardState, 'a pre-vote changes no durable state').to.equal(undefined);
    for (const m of b.messages) net.raw('a').step(m);
    const vote = net.readyOf('a');
    net.raw('a').advance(vote);
    expect(vote.hardState).to.deep.include({ term: 2, vote: 'a' });
    for (const m of vote.messages.filter((x) => x.to === 'b')) net.raw('b').step(m);
    const granted = net.readyOf('b');
    expect(granted.messages.map((m) => m.type)).to.deep.equal(['voteResp']);
    expect(granted.hardState).to.deep.include({ term: 2, vote: 'a' });
    expect(granted.mustSync).to.equal(true);
  });

  const oneVote: { name: string; first: string; second: string; grantSecond: boolean }[] = [
    { name: 'a different candidate in the same term is refused', first: 'a', second: 'c', grantSecond: false },
    { name: 'the same candidate asking again is granted (idempotent retry)', first: 'a', second: 'a', grantSecond: true },
  ];
  for (const c of oneVote) {
    it(`one vote per term: ${c.name}`, () => {
      const b = new RawNode({ id: 'b', storage: new MemoryStorage(), electionTicks: 10, heartbeatTicks: 1, randomSeed: 1, peers: ['a', 'b', 'c'], checkQuorum: false });
      b.advance(b.ready());
      const vote = (from: string): Message => makeMessage({ type: 'vote', from, to: 'b', term: 5, index: 3, logTerm: 1 });
      b.step(vote(c.first));
      b.step(vote(c.second));
      const resps = b.ready().messages.filter((m) => m.type === 'voteResp');
      expect(resps.map((m) => !m.reject)).to.deep.equal([true, c.grantSecond]);
    });
  }

  it('a candidate with an out-of-date log cannot win (§5.4.1)', () => {
    const net = electA();
    net.isolate('c');
    net.propose('a', 'x');
    net.heal();
    failOver(net, 'a', 'c');
    expect(net.raw('c').role).to.not.equal('leader');
    net.raw('b').campaign();
    net.settle();
    expect(net.leader()).to.equal('b');
  });

  it('a leader steps down when it sees a higher term (§5.1)', () => {
    const net = electA(['a', 'b', 'c'], { checkQuorum: false, preVote: false });
    net.isolate('a');
    net.raw('b').campaign();
    net.settle();
    expect(net.raw('b').role).to.equal('leader');
    net.heal();
    net.tick(2);
    expect(net.raw('a').role).to.equal('follower');
    expect(net.raw('a').leader).to.equal('b');
  });
});

describe('raft: election timeout slots', () => {
  it('voters draw timeouts from disjoint slots of [electionTicks, 2*electionTicks), so silent failures rarely split the vote', () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      // Every node isolated: each one's first campaign shows its own randomized timeout.
      const net = new TestNetwork(['a', 'b', 'c'], { electionTicks: 12, randomSeed: seed });
      for (const id of ['a', 'b', 'c']) net.isolate(id);
      const firedAt = new Map<string, number>();
      for (let t = 1; t <= 40 && firedAt.size < 3; t++) {
        net.tick(1);
        for (const id of ['a', 'b', 'c']) if (!firedAt.has(id) && net.raw(id).role !== 'follower') firedAt.set(id, t);
      }
      expect(firedAt.size).to.equal(3);
      const times = [...firedAt.values()];
      for (const t of times) expect(t).to.be.within(12, 23);
      const slots = new Set(times.map((t) => Math.floor((t - 12) / 4)));
      expect(slots.size, `seed ${seed}: ${times.join(',')}`).to.equal(3);
    }
  });
});

describe('raft: pre-vote and check-quorum', () => {
  it('a partitioned node rejoining does not depose a healthy leader or inflate terms', () => {
    const net = electA();
    const term = net.raw('a').term;
    net.isolate('c');
    net.tick(100);
    expect(net.raw('c').term).to.equal(term);
    net.heal();
    net.tick(30);
    expect(net.leader()).to.equal('a');
    expect(net.raw('a').term).to.equal(term);
  });

  it('without pre-vote the rejoining node does disrupt (contrast)', () => {
    const net = electA(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    const term = net.raw('a').term;
    net.isolate('c');
    net.tick(100, ['c']);
    expect(net.raw('c').term).to.be.greaterThan(term);
    net.heal();
    // c's next campaign (within one randomized timeout, < 2 × electionTicks) carries its inflated term to a.
    net.tick(20);
    expect(net.raw('a').term).to.be.greaterThan(term);
  });

  it('a leader cut off from the majority steps down within two election timeouts', () => {
    const net = electA();
    net.isolate('a');
    net.tick(20, ['a']);
    expect(net.raw('a').role).to.equal('follower');
    expect(net.raw('a').leader).to.equal(null);
  });

  it('followers in a leader lease ignore (pre)votes', () => {
    const net = electA();
    net.tick(1);
    net.raw('b').step(makeMessage({ type: 'preVote', from: 'c', to: 'b', term: net.raw('b').term + 1, index: 100, logTerm: 100 }));
    net.raw('b').step(makeMessage({ type: 'vote', from: 'c', to: 'b', term: net.raw('b').term + 1, index: 100, logTerm: 100 }));
    const rd = net.readyOf('b');
    expect(rd.messages.filter((m) => m.type.endsWith('Resp') && m.type !== 'heartbeatResp')).to.deep.equal([]);
    expect(rd.hardState).to.equal(undefined);
  });
});

describe('raft: log replication (Raft §5.3, §5.4)', () => {
  it('replicates and applies in order on every node', () => {
    const net = electA();
    for (const v of ['x', 'y', 'z']) net.propose('a', v);
    for (const id of ['a', 'b', 'c']) expect(texts(net.get(id).applied)).to.deep.equal(['x', 'y', 'z']);
  });

  it('a follower propose throws NotLeaderError with the leader hint', () => {
    const net = electA();
    expect(() => net.raw('b').propose(enc.encode('x'))).to.throw(NotLeaderError).with.property('leaderHint', 'a');
  });

  it('overwrites a divergent follower suffix, backing off a whole term per round trip', () => {
    const net = electA(['a', 'b', 'c']);
    // a leads term 2 and appends 40 entries that only it holds.
    net.isolate('a');
    for (let i = 0; i < 40; i++) net.raw('a').propose(enc.encode(`lost${i}`));
    net.settle();
    failOver(net, 'a', 'b');
    expect(net.leader()).to.equal('b');
    net.propose('b', 'kept');
    // a returns: it must drop its 40 entries, and the leader must find the match point quickly.
    net.heal();
    const before = net.delivered.length;
    net.tick(12);
    const rejects = net.delivered.slice(before).filter((m) => m.type === 'appResp' && m.reject && m.from === 'a');
    expect(rejects.length).to.be.at.most(3);
    expect(texts(net.get('a').applied)).to.deep.equal(['kept']);
    expect(net.raw('a').lastIndex).to.equal(net.raw('b').lastIndex);
  });

  it('a new leader commits previous-term entries only through an entry of its own term (§5.4.2)', () => {
    const net = electA();
    net.dropTypes.add('appResp');
    net.propose('a', 'old');
    // Replicated everywhere, but a never learned it, so it is not committed.
    expect(net.raw('b').lastIndex).to.equal(net.raw('a').lastIndex);
    expect(net.raw('b').commitIndex).to.be.lessThan(net.raw('b').lastIndex);
    net.heal();
    failOver(net, 'a', 'b');
    const b = net.raw('b');
    expect(b.role).to.equal('leader');
    // The old entry is committed together with b's noop of the new term, never alone.
    const noop = b.debugLog().find((e) => e.type === 'noop' && e.term === b.term);
    expect(noop).to.not.equal(undefined);
    expect(b.commitIndex).to.be.at.least(noop?.index ?? Infinity);
    expect(texts(net.get('c').applied)).to.deep.equal(['old']);
  });

  it('lets a leader send before its fsync but count its own copy only once durable (thesis §10.2.1)', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.raw('a').campaign();
    const pre = net.readyOf('a');
    expect(pre.messages.length).to.be.greaterThan(0);
    expect(pre.sendBeforePersist, 'a candidate must persist its vote first').to.equal(false);
    net.raw('a').advance(pre);
    for (const m of pre.messages) net.raw(m.to).step(m);
    net.settle();
    expect(net.leader()).to.equal('a');
    const { index } = net.raw('a').propose(enc.encode('x'));
    const rd = net.readyOf('a');
    expect(rd.sendBeforePersist).to.equal(true);
    // b persists and acknowledges while a's own write is still in flight: one durable copy of three.
    for (const m of rd.messages.filter((x) => x.to === 'b')) net.raw('b').step(m);
    const b = net.readyOf('b');
    net.raw('b').advance(b);
    for (const m of b.messages) net.raw('a').step(m);
    expect(net.raw('a').commitIndex).to.be.lessThan(index);
    net.get('a').storage.append(rd.entries);
    net.raw('a').advance(rd);
    expect(net.raw('a').commitIndex).to.equal(index);
  });

  it('caps appends in flight per follower (maxInflightMsgs) and batches by maxSizePerMsg', () => {
    const net = electA(['a', 'b', 'c'], { maxInflightMsgs: 2, maxSizePerMsg: 40 });
    net.dropTypes.add('appResp');
    const before = net.delivered.length;
    for (let i = 0; i < 10; i++) net.raw('a').propose(enc.encode(`v${i}`));
    net.settle();
    const apps = net.delivered.slice(before).filter((m) => m.type === 'app' && m.to === 'b' && (m.entries?.length ?? 0) > 0);
    // two appends of one entry each were allowed out before the window closed; the Ready coalesced them
    // into one message (coalesce.ts), still within maxSizePerMsg
    expect(apps.flatMap((m) => m.entries ?? []).length).to.equal(2);
    expect(apps.length).to.be.within(1, 2);
    for (const m of apps) expect((m.entries ?? []).reduce((s, e) => s + e.data.byteLength + 16, 0)).to.be.at.most(40);
  });

  it('drops proposals beyond maxUncommittedBytes', () => {
    const net = electA(['a', 'b', 'c'], { maxUncommittedBytes: 10 });
    net.isolate('a');
    net.raw('a').propose(new Uint8Array(8));
    expect(() => net.raw('a').propose(new Uint8Array(8))).to.throw(ProposalDroppedError, /uncommitted_limit/);
    net.heal();
    net.tick(3);
    expect(() => net.raw('a').propose(new Uint8Array(8))).to.not.throw();
  });
});

describe('raft: snapshots', () => {
  it('sends a snapshot to a follower that needs compacted entries, which restores it and catches up', () => {
    const net = electA();
    net.isolate('c');
    for (let i = 0; i < 10; i++) net.propose('a', `v${i}`);
    net.compact('a');
    net.heal();
    const before = net.delivered.length;
    net.tick(5);
    const snaps = net.delivered.slice(before).filter((m) => m.type === 'snap');
    expect(snaps.length).to.equal(1);
    expect(snaps[0]?.snapshot?.index).to.equal(net.get('a').storage.snapshot().index);
    expect(net.get('c').storage.snapshot().index).to.equal(snaps[0]?.snapshot?.index);
    net.propose('a', 'after');
    expect(texts(net.get('c').applied)).to.deep.equal(['after']);
    expect(net.raw('a').status().progress['c']?.state).to.equal('replicate');
  });

  it('ignores a snapshot that is not newer than its commit index', () => {
    const net = electA();
    net.propose('a', 'x');
    const c = net.raw('c');
    c.step(makeMessage({ type: 'snap', from: 'a', to: 'c', term: c.term, snapshot: { index: 1, term: 1, conf: { voters: ['a'], learners: [] } } }));
    const rd = c.ready();
    expect(rd.snapshot).to.equal(undefined);
    expect(rd.messages[0]).to.deep.include({ type: 'appResp', index: c.commitIndex });
  });
});

describe('raft: membership (one change at a time, learners)', () => {
  it('adds a learner that replicates without voting, promotes it, then removes it', () => {
    const net = electA();
    net.raw('a').proposeConfChange({ type: 'addLearner', node: 'd' });
    net.add('d', {});
    net.settle();
    net.propose('a', 'x');
    expect(texts(net.get('d').applied)).to.deep.equal(['x']);
    expect(net.raw('a').status().conf).to.deep.equal({ voters: ['a', 'b', 'c'], learners: ['d'] });
    // A learner does not count toward quorum: with b and c gone, nothing commits.
    net.isolate('b');
    net.isolate('c');
    const { index } = net.raw('a').propose(enc.encode('y'));
    net.settle();
    expect(net.raw('a').commitIndex).to.be.lessThan(index);
    net.heal();
    net.tick(3);
    // A learner never campaigns.
    net.isolate('a');
    net.tick(50, ['d']);
    expect(net.raw('d').role).to.equal('follower');
    net.heal();
    net.tick(30);
    const leader = net.leader() ?? 'a';
    net.raw(leader).proposeConfChange({ type: 'promote', node: 'd' });
    net.settle();
    expect(net.raw('d').status().conf.voters).to.deep.equal(['a', 'b', 'c', 'd']);
    net.raw(leader).proposeConfChange({ type: 'removeNode', node: 'd' });
    net.settle();
    expect(net.raw(leader).status().conf).to.deep.equal({ voters: ['a', 'b', 'c'], learners: [] });
  });

  it('refuses a second change while one is unapplied, and promotion of an unknown node', () => {
    const net = electA();
    net.dropTypes.add('app');
    net.raw('a').proposeConfChange({ type: 'addLearner', node: 'd' });
    expect(() => net.raw('a').proposeConfChange({ type: 'addLearner', node: 'e' })).to.throw(ConfChangeError, /one change at a time/);
    net.heal();
    net.tick(3);
    expect(() => net.raw('a').proposeConfChange({ type: 'promote', node: 'zz' })).to.throw(ConfChangeError, /not a learner/);
    expect(() => net.raw('a').proposeConfChange({ type: 'addVoter', node: 'zz' })).to.throw(ConfChangeError, /learner/);
  });

  it('a removed node cannot disrupt the cluster', () => {
    const net = electA();
    net.dropTypes.add('app');
    net.raw('a').proposeConfChange({ type: 'removeNode', node: 'c' });
    net.settle();
    net.heal();
    // c never hears of its removal (cut off) but a and b commit it.
    net.isolate('c');
    net.tick(3);
    expect(net.raw('a').status().conf.voters).to.deep.equal(['a', 'b']);
    const term = net.raw('a').term;
    net.tick(100, ['c']);
    net.heal();
    net.tick(40);
    expect(net.leader()).to.equal('a');
    expect(net.raw('a').term).to.equal(term);
  });

  it('a leader that removes itself steps down', () => {
    const net = electA();
    net.raw('a').proposeConfChange({ type: 'removeNode', node: 'a' });
    net.settle();
    expect(net.raw('a').role).to.equal('follower');
    net.tick(40);
    expect(['b', 'c']).to.include(net.leader());
  });
});

describe('raft: leadership transfer (thesis §3.10)', () => {
  it('transfers to an up-to-date voter', () => {
    const net = electA();
    net.propose('a', 'x');
    net.raw('a').transferLeader('c');
    net.settle();
    expect(net.leader()).to.equal('c');
  });

  it('catches the target up first, drops proposals meanwhile, and aborts after an election timeout', () => {
    const net = electA();
    net.cutLink('a', 'c');
    net.propose('a', 'x');
    net.raw('a').transferLeader('c');
    net.settle();
    expect(net.raw('a').status().leadTransferee).to.equal('c');
    expect(() => net.raw('a').propose(enc.encode('y'))).to.throw(ProposalDroppedError, /transferring/);
    net.tick(10, ['a']);
    expect(net.raw('a').status().leadTransferee).to.equal(null);
    expect(() => net.raw('a').propose(enc.encode('y'))).to.not.throw();
  });

  it('a follower forwards transferLeader to the leader', () => {
    const net = electA();
    net.raw('b').transferLeader('b');
    net.settle();
    expect(net.leader()).to.equal('b');
  });
});

describe('raft: ReadIndex (thesis §6.4)', () => {
  it('the leader answers after a heartbeat round, at its commit index', () => {
    const net = electA();
    net.propose('a', 'x');
    net.raw('a').readIndex(enc.encode('r1'));
    net.settle();
    const rs = net.get('a').readStates;
    expect(rs.map((r) => [r.index, dec.decode(r.ctx)])).to.deep.equal([[net.raw('a').commitIndex, 'r1']]);
  });

  it('a follower forwards the request and receives the read index', () => {
    const net = electA();
    net.propose('a', 'x');
    net.raw('c').readIndex(enc.encode('r2'));
    net.settle();
    expect(net.get('c').readStates.map((r) => r.index)).to.deep.equal([net.raw('a').commitIndex]);
  });

  it('a leader cut off from the majority never answers', () => {
    const net = electA();
    net.isolate('a');
    net.raw('a').readIndex(enc.encode('r3'));
    net.tick(5, ['a']);
    expect(net.get('a').readStates).to.deep.equal([]);
  });

  it('a new leader answers only after committing an entry of its term', () => {
    const net = electA();
    net.isolate('a');
    for (const id of ['b', 'c']) net.raw(id).peerLinkLost('a');
    // b's noop will not reach c: b cannot know the latest commit index.
    net.dropTypes.add('app');
    net.raw('b').campaign();
    net.settle();
    expect(net.raw('b').role).to.equal('leader');
    net.raw('b').readIndex(enc.encode('r4'));
    net.settle();
    expect(net.get('b').readStates).to.deep.equal([]);
    net.heal();
    net.isolate('a');
    net.tick(2, ['b', 'c']);
    expect(net.get('b').readStates.map((r) => dec.decode(r.ctx))).to.deep.equal(['r4']);
  });

  it('a node without a known leader refuses with NotLeaderError', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    expect(() => net.raw('b').readIndex(enc.encode('r5'))).to.throw(NotLeaderError);
  });
});

/** Ticks only the survivors until one of them leads; returns how many ticks that took (100 at most). */
function ticksUntilLeader(net: TestNetwork, survivors: string[], onTick: (tick: number) => void = () => {}): number {
  let ticks = 0;
  while (!survivors.includes(net.leader() ?? '') && ticks < 100) {
    net.tick(1, survivors);
    onTick(++ticks);
  }
  return ticks;
}

describe('raft: peerLinkLost fast failover', () => {
  it('followers that lose the link to the leader elect a new one well before the election timeout', () => {
    const net = electA(['a', 'b', 'c'], { electionTicks: 30, heartbeatTicks: 10 });
    net.tick(5);
    net.isolate('a');
    net.raw('b').peerLinkLost('a');
    net.raw('c').peerLinkLost('a');
    const ticks = ticksUntilLeader(net, ['b', 'c']);
    expect(['b', 'c']).to.include(net.leader());
    expect(ticks).to.be.at.most(8);
  });

  it('retries the pre-vote quickly when the other follower sees the same link close a little later', () => {
    const net = electA(['a', 'b', 'c'], { electionTicks: 30, heartbeatTicks: 10, linkLostRankTicks: 8 });
    net.tick(2);
    net.isolate('a');
    net.raw('b').peerLinkLost('a'); // b campaigns at once; c, still in its lease, ignores the pre-vote
    // c's own link-down event arrives 15 ms later
    const ticks = ticksUntilLeader(net, ['b', 'c'], (t) => t === 3 && net.raw('c').peerLinkLost('a'));
    expect(net.leader()).to.equal('b'); // b's retry wins, before c's own ranked campaign (8 ticks)
    expect(ticks).to.be.at.most(7);
  });

  it('two followers racing after the same crash do not split the vote: the later-ranked one yields', () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      // No rank spacing, so both fast campaigns start within the same tick or two.
      const net = electA(['a', 'b', 'c'], { electionTicks: 30, heartbeatTicks: 10, linkLostRankTicks: 0, randomSeed: seed });
      const term = net.raw('a').term;
      net.isolate('a');
      net.raw('b').peerLinkLost('a');
      net.raw('c').peerLinkLost('a');
      const ticks = ticksUntilLeader(net, ['b', 'c']);
      expect(net.leader(), `seed ${seed}`).to.equal('b');
      expect(net.raw('b').term, `seed ${seed}: one round, no split vote`).to.equal(term + 1);
      expect(ticks).to.be.at.most(6);
    }
  });

  it('ranks campaigns by id so the lowest remaining voter goes first', () => {
    const net = electA(['a', 'b', 'c', 'd', 'e'], { electionTicks: 30, heartbeatTicks: 10 });
    net.isolate('a');
    for (const id of ['b', 'c', 'd', 'e']) net.raw(id).peerLinkLost('a');
    let ticks = 0;
    while (net.leader() === 'a' || net.leader() === null) {
      net.tick(1, ['b', 'c', 'd', 'e']);
      if (++ticks > 60) break;
    }
    expect(net.leader()).to.equal('b');
  });

  it('is safe: a node that alone lost its link cannot depose a live leader', () => {
    const net = electA(['a', 'b', 'c'], { electionTicks: 30, heartbeatTicks: 10 });
    const term = net.raw('a').term;
    net.cutLink('a', 'b');
    net.raw('b').peerLinkLost('a');
    net.tick(10);
    expect(net.raw('a').role).to.equal('leader');
    expect(net.raw('a').term).to.equal(term);
    expect(net.raw('c').term).to.equal(term);
  });
});

describe('raft: status and restart', () => {
  it('reports per-peer progress on the leader', () => {
    const net = electA();
    net.propose('a', 'x');
    net.tick(1);
    const st = net.raw('a').status();
    expect(st).to.deep.include({ role: 'leader', leader: 'a', commit: st.lastIndex });
    expect(Object.keys(st.progress).sort()).to.deep.equal(['b', 'c']);
    expect(st.progress['b']).to.deep.include({ match: st.lastIndex, next: st.lastIndex + 1, state: 'replicate', recentActive: true });
    expect(st.progress['b']?.ticksSinceContact).to.be.within(0, 1);
  });

  it('a restarted node with a durable state machine (applied > snapshot) still knows its membership', () => {
    const net = electA();
    net.raw('a').proposeConfChange({ type: 'addLearner', node: 'd' });
    net.settle();
    net.propose('a', 'x');
    const b = net.get('b');
    const restarted = new RawNode({ id: 'b', storage: b.storage, electionTicks: 10, heartbeatTicks: 1, randomSeed: 9, applied: b.node.appliedIndex });
    expect(restarted.status().conf).to.deep.equal({ voters: ['a', 'b', 'c'], learners: ['d'] });
    expect(restarted.hasReady()).to.equal(false);
  });

  it('tolerates a persisted commit index below the snapshot index', () => {
    const storage = new MemoryStorage();
    storage.applySnapshot({ index: 1, term: 1, conf: { voters: ['a', 'b', 'c'], learners: [] } });
    storage.setHardState({ term: 2, vote: null, commit: 0 });
    const node = new RawNode({ id: 'a', storage, electionTicks: 10, heartbeatTicks: 1, randomSeed: 1, applied: 1 });
    expect(node.commitIndex).to.equal(1);
    expect(node.status().conf.voters).to.deep.equal(['a', 'b', 'c']);
  });

  it('rejects an invalid configuration', () => {
    expect(() => new RawNode({ id: 'a', storage: new MemoryStorage(), electionTicks: 1, heartbeatTicks: 1, randomSeed: 1 })).to.throw(/electionTicks/);
  });
});

describe('raft: beat (heartbeats on the driver clock)', () => {
  it('a leader broadcasts heartbeats at once and restarts its heartbeat interval; others do nothing', () => {
    const net = electA(['a', 'b', 'c'], { electionTicks: 30, heartbeatTicks: 10 });
    net.settle();
    const a = net.raw('a');
    a.tick();
    a.tick();
    expect(a.beat()).to.equal(true);
    const beats = a.takeUrgentMessages().filter((m) => m.type === 'heartbeat');
    expect(beats.map((m) => m.to).sort()).to.deep.equal(['b', 'c']);
    // the interval restarted: the next tick-driven heartbeat is heartbeatTicks after the beat, not 8 ticks on
    for (let i = 0; i < 9; i++) a.tick();
    expect(a.takeUrgentMessages().filter((m) => m.type === 'heartbeat')).to.deep.equal([]);
    a.tick();
    expect(a.takeUrgentMessages().filter((m) => m.type === 'heartbeat')).to.have.length(2);
    expect(net.raw('b').beat()).to.equal(false);
    expect(net.raw('b').takeUrgentMessages()).to.deep.equal([]);
  });
});
