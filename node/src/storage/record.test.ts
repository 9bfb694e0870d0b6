import { expect } from 'chai';
import fc from 'fast-check';
import { encodeEntry, encodeEntryYielding, encodeHardState, parseRecord, RecordType } from './record.js';

describe('storage/record', () => {
  it('round-trips entries of any size and type, and the yielding encoder writes the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.constantFrom('normal' as const, 'conf' as const, 'noop' as const),
        fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1_048_000, max: 3_500_000 }).map((n) => new Uint8Array(n).fill(n % 251))),
        async (term, index, type, data) => {
          const e = { term, index, type, data };
          const bytes = Buffer.concat(encodeEntry(e));
          expect(Buffer.concat(await encodeEntryYielding(e)).equals(bytes)).to.equal(true);
          const r = parseRecord(bytes, 0);
          expect(r.ok).to.equal(true);
          if (!r.ok || r.record.type !== RecordType.Entry) return;
          expect(r.next).to.equal(bytes.length);
          expect([r.record.entry.term, r.record.entry.index, r.record.entry.type]).to.deep.equal([term, index, type]);
          expect(Buffer.from(r.record.entry.data).equals(Buffer.from(data))).to.equal(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('round-trips hard states, including a null vote', () => {
    for (const hs of [{ term: 0, vote: null, commit: 0 }, { term: 7, vote: 'node-ü', commit: 12345 }]) {
      const r = parseRecord(Buffer.concat(encodeHardState(hs)), 0);
      expect(r.ok && r.record.type === RecordType.HardState && r.record.hardState).to.deep.equal(hs);
    }
  });

  it('reports a record cut short as incomplete and a flipped byte (length included) as bad', () => {
    const bytes = Buffer.concat(encodeEntry({ term: 2, index: 9, type: 'normal', data: Buffer.from('hello world') }));
    for (let cut = 0; cut < bytes.length; cut++) expect(parseRecord(bytes.subarray(0, cut), 0)).to.include({ ok: false, reason: 'incomplete' });
    for (let i = 0; i < bytes.length; i++) {
      const damaged = Buffer.from(bytes);
      damaged[i] = damaged[i]! ^ 0x10;
      const r = parseRecord(damaged, 0);
      expect(r.ok, `flip at ${i}`).to.equal(false);
    }
  });
});
