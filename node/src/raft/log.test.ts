import { expect } from 'chai';
import { RaftLog } from './log.js';
import { MemoryStorage } from './storage.js';
import type { Entry } from './types.js';

function e(index: number, term: number): Entry {
  return { index, term, type: 'normal', data: new Uint8Array(0) };
}

function logWith(terms: number[]): RaftLog {
  const s = new MemoryStorage();
  s.append(terms.map((t, i) => e(i + 1, t)));
  return new RaftLog(s, 1 << 20);
}

describe('RaftLog', () => {
  // Raft §5.4.1: compare last terms, then lengths.
  const upToDate: { last: [number, number]; want: boolean }[] = [
    { last: [3, 2], want: true }, // same index, same term
    { last: [2, 2], want: false }, // shorter, same term
    { last: [1, 3], want: true }, // higher term wins even if shorter
    { last: [9, 1], want: false }, // longer but older term
  ];
  for (const c of upToDate) {
    it(`isUpToDate(index ${c.last[0]}, term ${c.last[1]}) against [1,2,2] is ${c.want} (§5.4.1)`, () => {
      expect(logWith([1, 2, 2]).isUpToDate(c.last[0], c.last[1])).to.equal(c.want);
    });
  }

  const conflicts: { ents: Entry[]; want: number }[] = [
    { ents: [], want: 0 },
    { ents: [e(1, 1), e(2, 2)], want: 0 },
    { ents: [e(2, 2), e(3, 3)], want: 3 },
    { ents: [e(4, 3)], want: 4 }, // new entry
    { ents: [e(1, 1), e(2, 5)], want: 2 },
  ];
  for (const c of conflicts) {
    it(`findConflict(${c.ents.map((x) => `${x.index}@${x.term}`).join(',')}) = ${c.want}`, () => {
      expect(logWith([1, 2, 2]).findConflict(c.ents)).to.equal(c.want);
    });
  }

  it('maybeAppend refuses a mismatching previous entry and truncates a conflicting suffix (§5.3)', () => {
    const log = logWith([1, 2, 2, 2]);
    expect(log.maybeAppend(3, 9, 0, [e(4, 3)])).to.equal(undefined);
    expect(log.maybeAppend(2, 2, 3, [e(3, 3)])).to.equal(3);
    expect(log.lastIndex()).to.equal(3);
    expect(log.term(3)).to.equal(3);
    expect(log.committed).to.equal(3);
  });

  it('findConflictByTerm skips a whole term at once (fast back-off)', () => {
    const log = logWith([1, 1, 2, 2, 2, 2, 5, 5]);
    expect(log.findConflictByTerm(8, 4)).to.equal(6);
    expect(log.findConflictByTerm(8, 1)).to.equal(2);
    expect(log.findConflictByTerm(8, 0)).to.equal(0);
  });

  it('maybeCommit only commits an index whose term is the given term (§5.4.2)', () => {
    const log = logWith([1, 2, 3]);
    expect(log.maybeCommit(2, 3)).to.equal(false);
    expect(log.committed).to.equal(0);
    expect(log.maybeCommit(3, 3)).to.equal(true);
    expect(log.committed).to.equal(3);
  });
});
