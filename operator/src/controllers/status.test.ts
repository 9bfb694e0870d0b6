import { expect } from 'chai';
import { testCluster } from '../resources/fixtures.js';
import type { ClusterStatusReport, PodProbe } from './node-client.js';
import { observe, roleLabel, signature } from './observe.js';
import { computeStatus, QUORUM_LOSS_GRACE_MS, type PassResult } from './status.js';

const node = (id: string, role: string, healthy = true, voter = true): NonNullable<ClusterStatusReport['nodes']>[number] => ({ id, role, healthy, voter });

function report(id: string, term: number, leader: string | null, nodes?: ClusterStatusReport['nodes']): ClusterStatusReport {
  return { node_id: id, term, leader_id: leader, applied_index: 10, ...(nodes ? { nodes } : {}) };
}

const threeUp = [node('demo-0', 'Leader'), node('demo-1', 'Follower'), node('demo-2', 'Follower')];

describe('operator/controllers: observe', () => {
  it('takes the leader agreed at the highest term; a deposed leader that has not heard the news is ignored', () => {
    const probes: PodProbe[] = [
      { pod: 'demo-0', status: report('demo-0', 3, 'demo-0', threeUp), ready: true },
      { pod: 'demo-1', status: report('demo-1', 4, 'demo-1', [node('demo-0', 'Follower'), node('demo-1', 'Leader'), node('demo-2', 'Follower')]), ready: true },
      { pod: 'demo-2', status: report('demo-2', 4, 'demo-1'), ready: true },
    ];
    const v = observe(probes);
    expect(v.leader).to.equal('demo-1');
    expect(v.term).to.equal(4);
    expect(v.members!.map((m) => [m.id, m.role])).to.deep.equal([['demo-0', 'Follower'], ['demo-1', 'Leader'], ['demo-2', 'Follower']]);
    expect(roleLabel('demo-1', v)).to.equal('leader');
    expect(roleLabel('demo-0', v)).to.equal('follower');
  });

  it('labels learners, unhealthy members and strangers', () => {
    const v = observe([{ pod: 'demo-0', status: report('demo-0', 2, 'demo-0', [node('demo-0', 'Leader'), node('demo-1', 'Unknown', false), node('demo-3', 'Learner', true, false)]), ready: true }]);
    expect(roleLabel('demo-1', v)).to.equal('unknown');
    expect(roleLabel('demo-3', v)).to.equal('learner');
    expect(roleLabel('demo-9', v)).to.equal('unknown');
  });

  it('without any self-declared leader there is no leader, and the signature changes with the view', () => {
    const v = observe([{ pod: 'demo-0', status: report('demo-0', 5, 'demo-1'), ready: false }, { pod: 'demo-1', status: null, ready: false }]);
    expect(v.leader).to.equal(null);
    expect(v.members).to.equal(null);
    expect(v.term).to.equal(5);
    const w = observe([{ pod: 'demo-0', status: report('demo-0', 5, 'demo-0', threeUp), ready: true }]);
    expect(signature(v)).to.not.equal(signature(w));
    expect(signature(w)).to.equal(signature(observe([{ pod: 'demo-0', status: report('demo-0', 5, 'demo-0', threeUp), ready: true }])));
  });
});

describe('operator/controllers: status', () => {
  const now = new Date('2026-12-06T12:00:00Z');
  const healthy = observe(['demo-0', 'demo-1', 'demo-2'].map((p) => ({ pod: p, status: report(p, 2, 'demo-0', p === 'demo-0' ? threeUp : undefined), ready: true })));
  const base: PassResult = {
    view: healthy,
    action: { type: 'none' },
    bootstrapped: true,
    podCount: 3,
    volumes: {},
    frontDoor: { ready: true, reason: 'GatewayConfigured', message: '' },
    error: null,
  };
  const cond = (s: ReturnType<typeof computeStatus>, t: string): string => s.conditions!.find((c) => c.type === t)!.status;

  it('a healthy cluster: Available, LeaderElected, not Degraded, Healthy phase, observedGeneration moves', () => {
    const cr = testCluster();
    cr.metadata.generation = 4;
    const s = computeStatus(cr, base, now);
    expect(s).to.include({ phase: 'Healthy', leader: 'demo-0', term: 2, replicas: 3, readyReplicas: 3, observedGeneration: 4, bootstrapped: true });
    expect([cond(s, 'Available'), cond(s, 'LeaderElected'), cond(s, 'Degraded'), cond(s, 'Progressing'), cond(s, 'QuorumLost')]).to.deep.equal(['True', 'True', 'False', 'False', 'False']);
    expect(s.conditions!.every((c) => c.observedGeneration === 4)).to.equal(true);
    expect(s.selector).to.equal('stego.io/cluster=demo,app.kubernetes.io/component=node');
  });

  it('an error keeps the previous observedGeneration and says so in Degraded', () => {
    const cr = testCluster();
    cr.metadata.generation = 5;
    cr.status = { observedGeneration: 4 };
    const s = computeStatus(cr, { ...base, error: 'statefulset: 422 Invalid' }, now);
    expect(s.observedGeneration).to.equal(4);
    expect(cond(s, 'Degraded')).to.equal('True');
    expect(s.conditions!.find((c) => c.type === 'Degraded')!.message).to.include('422');
  });

  const lonely = observe([{ pod: 'demo-2', status: report('demo-2', 7, null), ready: false }]);
  const leaderless = { ...base, view: lonely, action: { type: 'wait', reason: 'no leader: membership cannot change' } } satisfies PassResult;

  it('no leader and too few answers in one pass is an election, not yet a lost quorum', () => {
    const cr = testCluster();
    cr.status = { leader: 'demo-0', members: healthy.members! };
    const s = computeStatus(cr, leaderless, now);
    expect(cond(s, 'QuorumLost')).to.equal('False');
    expect(s.phase).to.not.equal('QuorumLost');
    expect(cond(s, 'LeaderElected')).to.equal('False');
    // the next pass, shortly after, still waits; one past the grace raises it
    const soon = computeStatus({ ...cr, status: s }, leaderless, new Date(now.getTime() + QUORUM_LOSS_GRACE_MS - 1));
    expect(cond(soon, 'QuorumLost')).to.equal('False');
    const later = computeStatus({ ...cr, status: soon }, leaderless, new Date(now.getTime() + QUORUM_LOSS_GRACE_MS));
    expect(cond(later, 'QuorumLost')).to.equal('True');
  });

  it('a leader elected within the grace clears the wait: the next leaderless spell starts its own grace', () => {
    const cr = testCluster();
    cr.status = { leader: 'demo-0', members: healthy.members! };
    const first = computeStatus(cr, leaderless, now);
    const back = computeStatus({ ...cr, status: first }, base, new Date(now.getTime() + 5_000));
    expect(cond(back, 'LeaderElected')).to.equal('True');
    const again = computeStatus({ ...cr, status: back }, leaderless, new Date(now.getTime() + QUORUM_LOSS_GRACE_MS + 1_000));
    expect(cond(again, 'QuorumLost')).to.equal('False');
  });

  it('quorum lost: too few members answer, with the recovery pointer and no leader', () => {
    const cr = testCluster();
    cr.status = { leader: 'demo-0', members: healthy.members! };
    const before = computeStatus(cr, leaderless, new Date(now.getTime() - QUORUM_LOSS_GRACE_MS));
    cr.status = before;
    const s = computeStatus(cr, leaderless, now);
    expect(s.phase).to.equal('QuorumLost');
    expect(cond(s, 'QuorumLost')).to.equal('True');
    expect(s.conditions!.find((c) => c.type === 'QuorumLost')!.message).to.match(/1 of 3 members answer.*will not re-bootstrap/);
    expect(cond(s, 'Available')).to.equal('False');
    expect(s.leader).to.equal(undefined);
  });

  it('an even member count is accepted but warned about', () => {
    const s = computeStatus(testCluster({ replicas: 4 }), base, now);
    expect(s.conditions!.find((c) => c.type === 'Available')!.message).to.include('4 members tolerate no more failures than 3');
  });

  it('a scale in progress is Progressing with the planner\'s reason', () => {
    const s = computeStatus(testCluster({ replicas: 5 }), { ...base, action: { type: 'addMember', ordinal: 3, reason: 'scaling up to 5: adding member 3 as a learner' } }, now);
    expect(s.phase).to.equal('Scaling');
    expect(s.conditions!.find((c) => c.type === 'Progressing')).to.include({ status: 'True', reason: 'AddingMember' });
  });
});
