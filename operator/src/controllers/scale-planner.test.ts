import { expect } from 'chai';
import { plan, quorum, type Action, type PlanInput, type PlannerMember, type PlannerPod } from './scale-planner.js';

/** A model cluster the planner's actions are applied to, with the invariants checked after every step. */
class Model {
  members: PlannerMember[];
  pods: Map<number, PlannerPod>;
  stsReplicas: number | null;
  leader: number | null;
  down = new Set<number>();
  actions: Action[] = [];

  constructor(size: number, leader = 0) {
    this.members = Array.from({ length: size }, (_, i) => ({ ordinal: i, voter: true, healthy: true }));
    this.pods = new Map(this.members.map((m) => [m.ordinal, pod(m.ordinal)]));
    this.stsReplicas = size;
    this.leader = leader;
  }

  input(desired: number): PlanInput {
    return {
      desired,
      statefulSetReplicas: this.stsReplicas,
      bootstrapped: true,
      leader: this.leader,
      members: this.members.map((m) => ({ ...m, healthy: !this.down.has(m.ordinal) })),
      pods: [...this.pods.values()],
    };
  }

  apply(a: Action): void {
    this.actions.push(a);
    switch (a.type) {
      case 'scaleStatefulSet':
        this.stsReplicas = a.replicas;
        for (let i = 0; i < a.replicas; i++) if (!this.pods.has(i)) this.pods.set(i, pod(i));
        for (const o of [...this.pods.keys()]) if (o >= a.replicas) this.pods.delete(o);
        break;
      case 'addMember':
        expect(this.members.some((m) => m.ordinal === a.ordinal)).to.equal(false);
        // the node adds a learner and promotes it once caught up; the model promotes at once
        this.members.push({ ordinal: a.ordinal, voter: true, healthy: true });
        this.pods.get(a.ordinal)!.dataLost = false;
        break;
      case 'removeMember':
        expect(a.ordinal, 'never removes the leader').to.not.equal(this.leader);
        this.members = this.members.filter((m) => m.ordinal !== a.ordinal);
        break;
      case 'transferLeadership': {
        const to = this.members.find((m) => m.voter && m.ordinal !== a.from && !this.down.has(m.ordinal));
        expect(to, 'a transfer needs another healthy voter').to.not.equal(undefined);
        this.leader = to!.ordinal;
        break;
      }
      case 'deletePod':
        expect(a.ordinal, 'never deletes the leader pod').to.not.equal(this.leader);
        this.pods.set(a.ordinal, pod(a.ordinal));
        break;
      default:
        break;
    }
    this.checkQuorum();
  }

  checkQuorum(): void {
    const voters = this.members.filter((m) => m.voter);
    const healthy = voters.filter((m) => !this.down.has(m.ordinal)).length;
    expect(healthy, `quorum kept after ${JSON.stringify(this.actions.at(-1))}`).to.be.at.least(quorum(voters.length));
    expect(this.members.some((m) => m.ordinal === this.leader), 'the leader is a member').to.equal(true);
  }

  /** Plans and applies until the planner has nothing left or waits. */
  run(desired: number, maxSteps = 50): Action {
    for (let i = 0; i < maxSteps; i++) {
      const a = plan(this.input(desired));
      if (a.type === 'none' || a.type === 'wait') return a;
      this.apply(a);
    }
    throw new Error(`no convergence after ${maxSteps} steps: ${JSON.stringify(this.actions)}`);
  }

  ordinals(): number[] {
    return this.members.map((m) => m.ordinal).sort((a, b) => a - b);
  }
}

function pod(ordinal: number): PlannerPod {
  return { ordinal, running: true, dataLost: false, outdated: false, terminal: false };
}

const kinds = (as: Action[]): string[] => as.map((a) => ('ordinal' in a ? `${a.type}:${a.ordinal}` : 'from' in a ? `${a.type}:${a.from}` : `${a.type}:${(a as { replicas: number }).replicas}`));

describe('operator/controllers: scale planner', () => {
  it('bootstrap: creates the initial pods, then waits for them to form a cluster', () => {
    const base = { desired: 3, bootstrapped: false, leader: null, members: null, pods: [] };
    expect(plan({ ...base, statefulSetReplicas: null })).to.deep.include({ type: 'scaleStatefulSet', replicas: 3 });
    expect(plan({ ...base, statefulSetReplicas: 3 }).type).to.equal('wait');
  });

  it('3 → 5: one pod and one member at a time', () => {
    const m = new Model(3);
    expect(m.run(5).type).to.equal('none');
    expect(kinds(m.actions)).to.deep.equal(['scaleStatefulSet:4', 'addMember:3', 'scaleStatefulSet:5', 'addMember:4']);
    expect(m.ordinals()).to.deep.equal([0, 1, 2, 3, 4]);
  });

  it('5 → 3: removes the highest ordinals from Raft first, then shrinks the StatefulSet', () => {
    const m = new Model(5);
    expect(m.run(3).type).to.equal('none');
    expect(kinds(m.actions)).to.deep.equal(['removeMember:4', 'removeMember:3', 'scaleStatefulSet:3']);
    expect(m.ordinals()).to.deep.equal([0, 1, 2]);
  });

  it('3 → 1 does not hang, even when the last remaining ordinal is not the leader', () => {
    const m = new Model(3, 2);
    expect(m.run(1).type).to.equal('none');
    expect(kinds(m.actions)).to.deep.equal(['transferLeadership:2', 'removeMember:2', 'removeMember:1', 'scaleStatefulSet:1']);
    expect(m.ordinals()).to.deep.equal([0]);
    expect(m.leader).to.equal(0);
  });

  it('leader removal: hands leadership away before removing the leader', () => {
    const m = new Model(5, 4);
    expect(m.run(4).type).to.equal('none');
    expect(kinds(m.actions)).to.deep.equal(['transferLeadership:4', 'removeMember:4', 'scaleStatefulSet:4']);
    expect(m.leader).to.not.equal(4);
  });

  it('a member down during a scale-up: waits instead of raising the quorum, resumes when it is back', () => {
    const m = new Model(3);
    m.down.add(1);
    const w = m.run(5);
    expect(w.type).to.equal('wait');
    expect((w as { reason: string }).reason).to.match(/member\(s\) 1 down/);
    expect(m.members).to.have.length(3);
    m.down.delete(1);
    expect(m.run(5).type).to.equal('none');
    expect(m.ordinals()).to.deep.equal([0, 1, 2, 3, 4]);
  });

  it('a member down during a scale-down: removes the down member first when it is the one leaving, waits when a removal would lose quorum', () => {
    const m = new Model(5);
    m.down.add(4);
    expect(m.run(4).type).to.equal('none');
    expect(m.ordinals()).to.deep.equal([0, 1, 2, 3]);

    // 3 voters, one of the staying members down: removing a healthy one would leave 1 of 2
    const n = new Model(3);
    n.down.add(1);
    const w = n.run(2);
    expect(w).to.deep.include({ type: 'wait' });
    expect((w as { reason: string }).reason).to.match(/no healthy quorum/);
    expect(n.ordinals()).to.deep.equal([0, 1, 2]);
  });

  it('a PVC lost: the member is removed and added again as a learner', () => {
    const m = new Model(3);
    m.pods.get(1)!.dataLost = true;
    expect(m.run(3).type).to.equal('none');
    expect(kinds(m.actions)).to.deep.equal(['removeMember:1', 'addMember:1']);
    expect(m.ordinals()).to.deep.equal([0, 1, 2]);
  });

  it('a PVC lost on the leader: leadership moves first', () => {
    const m = new Model(3, 0);
    m.pods.get(0)!.dataLost = true;
    expect(m.run(3).type).to.equal('none');
    expect(kinds(m.actions)).to.deep.equal(['transferLeadership:0', 'removeMember:0', 'addMember:0']);
  });

  it('waits for a learner to be promoted, and removes a learner that is no longer wanted', () => {
    const input: PlanInput = {
      desired: 4, statefulSetReplicas: 4, bootstrapped: true, leader: 0,
      members: [0, 1, 2].map((o) => ({ ordinal: o, voter: true, healthy: true })).concat([{ ordinal: 3, voter: false, healthy: true }]),
      pods: [0, 1, 2, 3].map(pod),
    };
    expect(plan(input)).to.deep.include({ type: 'wait' });
    expect(plan({ ...input, desired: 3 })).to.deep.include({ type: 'removeMember', ordinal: 3 });
  });

  it('no leader: nothing changes', () => {
    const m = new Model(3);
    expect(plan({ ...m.input(5), leader: null }).type).to.equal('wait');
  });

  it('rolling update: followers first, then the leader after a transfer', () => {
    const m = new Model(3, 2);
    for (const p of m.pods.values()) p.outdated = true;
    const seen: Action[] = [];
    for (let i = 0; i < 6; i++) {
      const a = plan(m.input(3));
      if (a.type === 'none') break;
      seen.push(a);
      m.apply(a);
      if (a.type === 'deletePod') m.pods.get(a.ordinal)!.outdated = false;
    }
    expect(kinds(seen)).to.deep.equal(['deletePod:1', 'deletePod:0', 'transferLeadership:2', 'deletePod:2']);
  });

  it('a terminal pod counts as a failed member', () => {
    const m = new Model(3);
    m.pods.get(2)!.terminal = true;
    expect(plan(m.input(5)).type).to.equal('wait');
  });
});
