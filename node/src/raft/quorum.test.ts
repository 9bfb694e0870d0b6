import { expect } from 'chai';
import { committedIndex, voteResult } from './quorum.js';

describe('quorum (Raft §5.2, §5.3)', () => {
  const commitCases: { voters: string[]; match: Record<string, number>; want: number }[] = [
    { voters: ['a'], match: { a: 5 }, want: 5 },
    { voters: ['a', 'b', 'c'], match: { a: 5, b: 3, c: 1 }, want: 3 },
    { voters: ['a', 'b', 'c'], match: { a: 5, b: 5, c: 1 }, want: 5 },
    { voters: ['a', 'b', 'c', 'd'], match: { a: 9, b: 7, c: 3, d: 1 }, want: 3 },
    { voters: ['a', 'b', 'c', 'd', 'e'], match: { a: 9, b: 8, c: 7, d: 2, e: 1 }, want: 7 },
    { voters: [], match: {}, want: 0 },
  ];
  for (const c of commitCases) {
    it(`commits the majority's match for ${JSON.stringify(c.match)}`, () => {
      expect(committedIndex(c.voters, (id) => c.match[id] ?? 0)).to.equal(c.want);
    });
  }

  const voteCases: { voters: string[]; votes: [string, boolean][]; want: string }[] = [
    { voters: ['a', 'b', 'c'], votes: [['a', true]], want: 'pending' },
    { voters: ['a', 'b', 'c'], votes: [['a', true], ['b', true]], want: 'won' },
    { voters: ['a', 'b', 'c'], votes: [['a', true], ['b', false], ['c', false]], want: 'lost' },
    { voters: ['a', 'b', 'c', 'd'], votes: [['a', true], ['b', true]], want: 'pending' },
    { voters: ['a', 'b', 'c', 'd'], votes: [['a', true], ['b', false], ['c', false]], want: 'lost' },
    { voters: ['a', 'b', 'c'], votes: [['a', true], ['x', true]], want: 'pending' },
  ];
  for (const c of voteCases) {
    it(`vote ${JSON.stringify(c.votes)} among ${c.voters.length} is ${c.want}`, () => {
      expect(voteResult(c.voters, new Map(c.votes))).to.equal(c.want);
    });
  }
});
