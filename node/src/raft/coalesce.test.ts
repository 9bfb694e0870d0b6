import { expect } from 'chai';
import { coalesceMessages } from './coalesce.js';
import { makeMessage, type Message } from './message.js';
import { TestNetwork, texts } from './testnet.js';
import type { Entry } from './types.js';

const entry = (index: number, term: number, bytes = 1): Entry => ({ index, term, type: 'normal', data: new Uint8Array(bytes) });
const app = (to: string, index: number, logTerm: number, entries: Entry[], commit = 0, term = 2): Message =>
  makeMessage({ type: 'app', from: 'a', to, term, index, logTerm, entries, commit });
const ack = (to: string, index: number, reject = false, term = 2): Message => makeMessage({ type: 'appResp', from: 'b', to, term, index, reject });

describe('coalesceMessages', () => {
  it('merges appends that continue each other into one per peer, keeping the later commit', () => {
    const msgs = [
      app('b', 4, 2, [entry(5, 2)], 3),
      app('c', 4, 2, [entry(5, 2)], 3),
      app('b', 5, 2, [entry(6, 2)], 4),
      app('c', 5, 2, [entry(6, 2)], 4),
      app('b', 6, 2, [], 6),
    ];
    const out = coalesceMessages(msgs, 1 << 20);
    expect(out.map((m) => [m.to, m.index, m.entries!.map((e) => e.index), m.commit])).to.deep.equal([
      ['b', 4, [5, 6], 6],
      ['c', 4, [5, 6], 4],
    ]);
  });

  it('leaves appends that do not continue, other terms and other types in place and in order', () => {
    const hb = makeMessage({ type: 'heartbeat', from: 'a', to: 'b', term: 2 });
    const msgs = [
      app('b', 4, 2, [entry(5, 2)]),
      hb,
      app('b', 5, 2, [entry(6, 2)]), // a heartbeat sits between: not a neighbour any more
      app('b', 9, 2, [entry(10, 2)]), // a gap
      app('b', 10, 1, [entry(11, 2)]), // logTerm does not match the previous last entry
      app('b', 11, 2, [entry(12, 3)], 0, 3), // another term
    ];
    expect(coalesceMessages(msgs, 1 << 20)).to.deep.equal(msgs);
  });

  it('does not grow a merged append past the size cap', () => {
    const msgs = [app('b', 4, 2, [entry(5, 2, 600)]), app('b', 5, 2, [entry(6, 2, 600)]), app('b', 6, 2, [entry(7, 2, 300)])];
    const out = coalesceMessages(msgs, 1000); // 616 + 616 > 1000, 616 + 316 <= 1000
    expect(out.map((m) => m.entries!.map((e) => e.index))).to.deep.equal([[5], [6, 7]]);
  });

  it('keeps only the highest of consecutive accepted acknowledgements, and every rejection', () => {
    const msgs = [ack('a', 5), ack('a', 7), ack('a', 6, true), ack('a', 8), ack('a', 9)];
    expect(coalesceMessages(msgs, 1 << 20).map((m) => [m.index, m.reject])).to.deep.equal([
      [7, false],
      [6, true],
      [9, false],
    ]);
  });

  it('a leader proposing several times between Readies sends one append per follower, and all commit', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.campaign('a');
    const raw = net.raw('a');
    for (const t of ['x', 'y', 'z']) raw.propose(new TextEncoder().encode(t));
    const rd = raw.ready();
    const apps = rd.messages.filter((m) => m.type === 'app');
    expect(apps.map((m) => [m.to, m.entries!.length])).to.deep.equal([
      ['b', 3],
      ['c', 3],
    ]);
    // persist and advance as a driver would, deliver, then let the cluster finish
    const a = net.get('a');
    if (rd.hardState) a.storage.setHardState(rd.hardState);
    a.storage.append(rd.entries);
    a.applied.push(...rd.committedEntries);
    raw.advance(rd);
    for (const m of rd.messages) net.raw(m.to).step(m);
    net.settle();
    for (const id of ['a', 'b', 'c']) expect(texts(net.get(id).applied)).to.deep.equal(['x', 'y', 'z']);
  });
});
