import { expect } from 'chai';
import { findCondition, isTrue, setCondition } from './conditions.js';
import { names, ordinalOf, podHost, selectorLabels, selectorString } from './names.js';

describe('operator/api: conditions', () => {
  const t0 = new Date('2026-12-06T10:00:00Z');
  const t1 = new Date('2026-12-06T10:05:00Z');

  it('moves lastTransitionTime only when the status changes', () => {
    let list = setCondition([], { type: 'Available', status: 'False', reason: 'Creating', message: 'x' }, 1, t0);
    list = setCondition(list, { type: 'Available', status: 'False', reason: 'Creating', message: 'y' }, 2, t1);
    expect(findCondition(list, 'Available')).to.include({ lastTransitionTime: t0.toISOString(), message: 'y', observedGeneration: 2 });
    list = setCondition(list, { type: 'Available', status: 'True', reason: 'Ready', message: 'ok' }, 2, t1);
    expect(findCondition(list, 'Available')!.lastTransitionTime).to.equal(t1.toISOString());
    expect(isTrue(list, 'Available')).to.equal(true);
  });

  it('keeps one entry per type, sorted, so equal inputs give equal lists', () => {
    let list = setCondition([], { type: 'QuorumLost', status: 'False', reason: 'a', message: '' }, 1, t0);
    list = setCondition(list, { type: 'Available', status: 'True', reason: 'a', message: '' }, 1, t0);
    list = setCondition(list, { type: 'QuorumLost', status: 'False', reason: 'a', message: '' }, 1, t1);
    expect(list.map((c) => c.type)).to.deep.equal(['Available', 'QuorumLost']);
  });
});

describe('operator/api: names', () => {
  const c = { name: 'demo', namespace: 'prod' };
  it('derives pod, PVC and DNS names from the cluster name', () => {
    expect(names.pod(c, 2)).to.equal('demo-2');
    expect(names.pvc(c, 2)).to.equal('data-demo-2');
    expect(podHost(c, 1, 'cluster.local')).to.equal('demo-1.demo-peers.prod.svc.cluster.local');
    expect(selectorString(selectorLabels(c))).to.equal('stego.io/cluster=demo,app.kubernetes.io/component=node');
  });
  it('reads ordinals only from this cluster\'s pod names', () => {
    expect(ordinalOf(c, 'demo-3')).to.equal(3);
    expect(ordinalOf(c, 'demo-gateway-1')).to.equal(null);
    expect(ordinalOf(c, 'demo-03')).to.equal(null);
    expect(ordinalOf(c, 'other-1')).to.equal(null);
  });
});
