import { expect } from 'chai';
import { embed, extract, type Payload } from './engine.js';
import { V1_FIXTURES } from './fixtures/v1.js';
import { codeOf } from './fixtures/outcome.js';

function comparable(p: Payload): unknown {
  return p.kind === 'file' ? { ...p, data: Buffer.from(p.data) } : p;
}


describe('stego format version 1 images (written before version 2)', () => {
  for (const fixture of V1_FIXTURES) {
    it(`still extracts ${fixture.name}`, async () => {
      const back = await extract(fixture.png, fixture.passphrase ? { passphrase: fixture.passphrase } : {});
      expect(comparable(back)).to.deep.equal(comparable(fixture.payload));
    });
  }

  it('keeps version 1 answers for its encrypted images, whose header was public anyway', async () => {
    const sealed = V1_FIXTURES.filter((f) => f.passphrase !== undefined);
    expect(sealed).to.have.length.greaterThan(0);
    for (const fixture of sealed) {
      expect(await codeOf(() => extract(fixture.png))).to.equal('passphrase_required');
      expect(await codeOf(() => extract(fixture.png, { passphrase: 'not it' }))).to.equal('wrong_passphrase');
    }
  });

  it('re-embedding into a version-1 image writes version 2 over it', async () => {
    const fixture = V1_FIXTURES.find((f) => f.name === 'plainTextRgb8')!;
    const payload: Payload = { kind: 'text', text: 'now sealed' };
    const out = await embed(fixture.png, payload, { passphrase: 'new', scryptLog2N: 10 });
    expect(await extract(out, { passphrase: 'new', scryptLog2N: 10 })).to.deep.equal(payload);
  });
});
