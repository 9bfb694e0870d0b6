import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger } from '../log.js';
import { makeMessage } from '../raft/message.js';
import { ElectionLog } from './election-log.js';

function capture(): { lines: Record<string, unknown>[]; log: ElectionLog } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ nodeId: 'n1', level: 'info', destination: sink });
  return { lines, log: new ElectionLog(logger, 'n1', 1000) };
}

describe('cluster/ElectionLog', () => {
  it('writes one JSON line per election event with node, term and reason', async () => {
    const { lines, log } = capture();
    log.leaderLinkLost();
    log.transition({ role: 'Follower', leader: 'n2', term: 3 }, { role: 'PreCandidate', leader: null, term: 3 });
    log.transition({ role: 'PreCandidate', leader: null, term: 3 }, { role: 'Candidate', leader: null, term: 4 });
    log.transition({ role: 'Candidate', leader: null, term: 4 }, { role: 'Leader', leader: 'n1', term: 4 });
    log.transition({ role: 'Leader', leader: 'n1', term: 4 }, { role: 'Follower', leader: null, term: 5 });
    log.outgoing(makeMessage({ type: 'voteResp', from: 'n1', to: 'n3', term: 5, reject: false }));
    log.outgoing(makeMessage({ type: 'preVoteResp', from: 'n1', to: 'n3', term: 6, reject: true }));
    log.outgoing(makeMessage({ type: 'app', from: 'n1', to: 'n3', term: 6 }));
    await new Promise((r) => setImmediate(r));
    const events = lines.map((l) => l.event);
    expect(events).to.deep.equal([
      'campaign_started', 'leader_changed', 'became_leader', 'leader_changed', 'stepped_down', 'leader_changed', 'vote_granted', 'pre_vote_denied',
    ]);
    for (const l of lines) {
      expect(l.node).to.equal('n1');
      expect(l.term).to.be.a('number');
      expect(l.reason).to.be.a('string');
    }
    expect(lines[0]!.reason).to.equal('link to the leader closed');
    expect(lines[4]!.reason).to.equal('saw a higher term');
    expect(lines[6]!.candidate).to.equal('n3');
  });
});
