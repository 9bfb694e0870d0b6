import { expect } from 'chai';
import { FAULT_KINDS, makeSchedule } from './nemesis.js';

describe('chaos nemesis schedule', () => {
  it('is a pure function of the seed: same seed, same schedule; another seed, another', () => {
    const a = makeSchedule({ seed: 7, durationMs: 120_000 });
    expect(makeSchedule({ seed: 7, durationMs: 120_000 })).to.deep.equal(a);
    expect(makeSchedule({ seed: 8, durationMs: 120_000 })).to.not.deep.equal(a);
  });

  it('runs one fault at a time, each healed before the next, all inside the run', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const steps = makeSchedule({ seed, durationMs: 60_000 });
      expect(steps.length).to.be.greaterThan(3);
      for (let i = 0; i < steps.length; i++) {
        const s = steps[i]!;
        expect(s.at + s.duration).to.be.at.most(60_000);
        if (i > 0) expect(s.at).to.be.greaterThan(steps[i - 1]!.at + steps[i - 1]!.duration);
      }
    }
  });

  it('draws every fault kind over long runs, and only the kinds asked for', () => {
    const seen = new Set(Array.from({ length: 10 }, (_, i) => makeSchedule({ seed: i, durationMs: 300_000 })).flat().map((s) => s.kind));
    expect([...seen].sort()).to.deep.equal([...FAULT_KINDS].sort());
    const only = makeSchedule({ seed: 3, durationMs: 60_000, kinds: ['kill-all'] });
    expect(new Set(only.map((s) => s.kind))).to.deep.equal(new Set(['kill-all']));
  });
});
