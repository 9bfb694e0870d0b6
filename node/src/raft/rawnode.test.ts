import { expect } from 'chai';
import { TestNetwork, texts } from './testnet.js';

describe('raft smoke', () => {
  it('elects a leader and replicates a proposal to every node', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.campaign('a');
    expect(net.leader()).to.equal('a');
    net.propose('a', 'x');
    net.propose('a', 'y');
    for (const id of ['a', 'b', 'c']) expect(texts(net.get(id).applied)).to.deep.equal(['x', 'y']);
  });
});
