import { expect } from 'chai';
import { Inflights, Progress } from './progress.js';

describe('Progress flow control', () => {
  it('probe sends one append at a time; replicate fills the inflight window', () => {
    const p = new Progress(5, 2, false);
    expect(p.isPaused()).to.equal(false);
    p.probeSent = true;
    expect(p.isPaused()).to.equal(true);
    p.maybeUpdate(4);
    p.becomeReplicate();
    p.inflights.add(5);
    p.inflights.add(6);
    expect(p.isPaused()).to.equal(true);
    p.inflights.freeLE(5);
    expect(p.isPaused()).to.equal(false);
  });

  it('maybeDecrTo ignores stale rejections and jumps to the hint in probe state', () => {
    const p = new Progress(10, 4, false);
    expect(p.maybeDecrTo(5, 2)).to.equal(false); // not the append we sent
    expect(p.maybeDecrTo(9, 3)).to.equal(true);
    expect(p.next).to.equal(4);
  });

  it('snapshot state pauses until the snapshot is acknowledged, then probes after it', () => {
    const p = new Progress(3, 4, false);
    p.becomeSnapshot(50);
    expect(p.isPaused()).to.equal(true);
    p.becomeProbe();
    expect(p.next).to.equal(51);
  });

  it('Inflights frees acknowledged appends in order', () => {
    const f = new Inflights(3);
    for (const i of [3, 6, 9]) f.add(i);
    expect(f.full()).to.equal(true);
    f.freeLE(6);
    expect(f.count).to.equal(1);
  });
});
