// Model-based check: random appends, conflicting overwrites, snapshots + compactions and reopens, with
// tiny segments, must always replay to the same log as a plain in-memory model.
import { expect } from 'chai';
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { DurableLog } from './durable-log.js';
import { entryData, makeEntry, tempDir } from './testing/helpers.js';

type Op =
  | { kind: 'append'; n: number }
  | { kind: 'overwrite'; back: number; n: number }
  | { kind: 'snapshot'; back: number; compactBack: number }
  | { kind: 'reopen' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('append' as const), n: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('overwrite' as const), back: fc.integer({ min: 0, max: 8 }), n: fc.integer({ min: 0, max: 4 }) }) },
  // biased towards snapshotting/compacting right at the tail, where a just-truncated suffix is most fragile
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('snapshot' as const), back: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 6 })), compactBack: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4 })) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
);

class Model {
  /** terms[i] = term of entry compact+1+i */
  terms: number[] = [];
  compact = 0;
  snapIndex = 0;
  term = 1;
  savedTerm = 0;
  get last() {
    return this.compact + this.terms.length;
  }
  termAt(i: number) {
    return this.terms[i - this.compact - 1];
  }
}

describe('storage/model', function () {
  this.timeout(180_000);

  it('replays to exactly what the model holds after any sequence of operations', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 25 }), async (ops) => {
        const t = tempDir('model');
        const opts = { fsyncDeadlineMs: 10_000, segmentBytes: 3000, logger: { warn: () => undefined } };
        let { log } = await DurableLog.open(t.dir, opts);
        const m = new Model();
        try {
          for (const op of [...ops, { kind: 'reopen' } as Op]) {
            if (op.kind === 'append' || op.kind === 'overwrite') {
              // as in Raft, only entries above the snapshot (uncommitted) are ever overwritten
              const from = op.kind === 'append' ? m.last + 1 : Math.max(m.snapIndex + 1, m.last - op.back);
              if (op.kind === 'overwrite') m.term++;
              const n = op.kind === 'append' ? op.n : Math.max(1, op.n);
              const entries = Array.from({ length: n }, (_, k) => makeEntry(from + k, m.term));
              await log.save({ term: m.term, vote: 'n1', commit: m.compact }, entries);
              m.savedTerm = m.term;
              m.terms.length = from - m.compact - 1;
              for (const e of entries) m.terms.push(e.term);
            } else if (op.kind === 'snapshot') {
              const at = m.last - op.back;
              if (at <= m.compact || at < m.snapIndex || at < 1) continue;
              const pending = log.createSnapshot({ index: at, term: m.termAt(at)!, conf: { voters: ['n1'], learners: [] } });
              writeFileSync(pending.path, `s${at}`);
              await pending.commit();
              m.snapIndex = at;
              const through = at - op.compactBack;
              if (through > m.compact) {
                await log.compact(through);
                m.terms = m.terms.slice(through - m.compact);
                m.compact = through;
              }
            } else {
              await log.close();
              const opened = await DurableLog.open(t.dir, opts);
              log = opened.log;
              expect([log.firstIndex(), log.lastIndex()]).to.deep.equal([m.compact + 1, m.last]);
              expect(opened.state.snapshot.index).to.equal(m.snapIndex);
              expect(opened.state.hardState.term).to.equal(m.savedTerm);
              const expected = [];
              for (let i = m.snapIndex + 1; i <= m.last; i++) expected.push([i, m.termAt(i)]);
              expect(opened.state.entries.map((e) => [e.index, e.term])).to.deep.equal(expected);
              for (const e of opened.state.entries) expect(Buffer.from(e.data).equals(Buffer.from(entryData(e.index, e.term)))).to.equal(true);
            }
          }
        } finally {
          await log.close();
          t.cleanup();
        }
      }),
      { numRuns: 60 },
    );
  });
});
