import { expect } from 'chai';
import { CompactedError, SnapshotOutOfDateError, UnavailableError } from './errors.js';
import { MemoryStorage } from './storage.js';
import type { Entry } from './types.js';

function ents(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, type: 'normal', data: new Uint8Array([i]) });
  return out;
}

describe('MemoryStorage', () => {
  it('answers term/entries and the first/last index', () => {
    const s = new MemoryStorage();
    s.append(ents(1, 5, 1));
    expect([s.firstIndex(), s.lastIndex(), s.term(0), s.term(3)]).to.deep.equal([1, 5, 0, 1]);
    expect(s.entries(2, 4).map((e) => e.index)).to.deep.equal([2, 3]);
    expect(() => s.term(6)).to.throw(UnavailableError);
  });

  it('overwrites a suffix on append and rejects a gap', () => {
    const s = new MemoryStorage();
    s.append(ents(1, 5, 1));
    s.append(ents(3, 4, 2));
    expect(s.lastIndex()).to.equal(4);
    expect(s.term(3)).to.equal(2);
    expect(() => s.append(ents(7, 8, 2))).to.throw(/gap/);
  });

  it('limits entries by bytes but always returns one', () => {
    const s = new MemoryStorage();
    s.append(ents(1, 5, 1));
    expect(s.entries(1, 6, 1)).to.have.length(1);
    expect(s.entries(1, 6, 34)).to.have.length(2);
  });

  it('compacts behind a snapshot and throws CompactedError before it', () => {
    const s = new MemoryStorage();
    s.append(ents(1, 10, 1));
    s.createSnapshot(6, { voters: ['a'], learners: [] });
    s.compact(6);
    expect(s.firstIndex()).to.equal(7);
    expect(s.term(6)).to.equal(1);
    expect(() => s.entries(5, 8)).to.throw(CompactedError);
    expect(() => s.term(5)).to.throw(CompactedError);
    expect(s.initialState().confState.voters).to.deep.equal(['a']);
  });

  it('applySnapshot replaces the log and refuses an older snapshot', () => {
    const s = new MemoryStorage();
    s.append(ents(1, 3, 1));
    s.applySnapshot({ index: 20, term: 4, conf: { voters: ['a', 'b'], learners: [] } });
    expect([s.firstIndex(), s.lastIndex(), s.term(20)]).to.deep.equal([21, 20, 4]);
    expect(() => s.applySnapshot({ index: 10, term: 4, conf: { voters: [], learners: [] } })).to.throw(SnapshotOutOfDateError);
    s.append(ents(21, 22, 4));
    expect(s.lastIndex()).to.equal(22);
  });
});
