import { expect } from 'chai';
import { applyToConf, confChangeProblem, decodeConfChange, encodeConfChange, type ConfChange } from './confchange.js';
import { ConfChangeError } from './errors.js';

describe('conf changes (one at a time, learners first)', () => {
  const conf = { voters: ['a', 'b', 'c'], learners: ['d'] };
  const cases: { cc: ConfChange; problem: RegExp | null; voters?: string[]; learners?: string[] }[] = [
    { cc: { type: 'addLearner', node: 'e' }, problem: null, voters: ['a', 'b', 'c'], learners: ['d', 'e'] },
    { cc: { type: 'addLearner', node: 'a' }, problem: /already a voter/ },
    { cc: { type: 'promote', node: 'd' }, problem: null, voters: ['a', 'b', 'c', 'd'], learners: [] },
    { cc: { type: 'promote', node: 'zz' }, problem: /not a learner/ },
    { cc: { type: 'promote', node: 'a' }, problem: /already a voter/ },
    { cc: { type: 'removeNode', node: 'b' }, problem: null, voters: ['a', 'c'], learners: ['d'] },
    { cc: { type: 'removeNode', node: 'd' }, problem: null, voters: ['a', 'b', 'c'], learners: [] },
    { cc: { type: 'removeNode', node: 'zz' }, problem: /not a member/ },
  ];
  for (const c of cases) {
    it(`${c.cc.type} ${c.cc.node}: ${c.problem ? 'rejected' : 'applied'}`, () => {
      const problem = confChangeProblem(conf, c.cc);
      if (c.problem) {
        expect(problem).to.match(c.problem);
        expect(applyToConf(conf, c.cc)).to.deep.equal(conf);
      } else {
        expect(problem).to.equal(null);
        expect(applyToConf(conf, c.cc)).to.deep.equal({ voters: c.voters, learners: c.learners });
      }
    });
  }

  it('round-trips through encode/decode and rejects garbage', () => {
    const cc: ConfChange = { type: 'promote', node: 'n4' };
    expect(decodeConfChange(encodeConfChange(cc))).to.deep.equal(cc);
    expect(() => decodeConfChange(new TextEncoder().encode('{"type":"explode","node":"x"}'))).to.throw(ConfChangeError);
    expect(() => decodeConfChange(new Uint8Array([0xff]))).to.throw(ConfChangeError);
  });

  it('cannot remove the last voter', () => {
    expect(confChangeProblem({ voters: ['a'], learners: [] }, { type: 'removeNode', node: 'a' })).to.match(/last voter/);
  });
});
