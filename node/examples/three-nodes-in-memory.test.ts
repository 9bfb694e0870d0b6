import { expect } from 'chai';
import { runExample } from './three-nodes-in-memory.js';

describe('example: three nodes in memory', () => {
  it('elects a leader and applies the same values on every node', () => {
    const r = runExample(['a', 'b', 'c']);
    expect(['n1', 'n2', 'n3']).to.include(r.leader);
    for (const applied of Object.values(r.applied)) expect(applied).to.deep.equal(['a', 'b', 'c']);
  });
});
