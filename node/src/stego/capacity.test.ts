import { expect } from 'chai';
import { assertFits, capacityForSlots, frameOverheadBytes } from './capacity.js';
import { StegoError } from './errors.js';

describe('stego capacity', () => {
  it('subtracts the frame overhead from one bit per usable slot', () => {
    expect(frameOverheadBytes(false)).to.equal(15 + 4);
    expect(frameOverheadBytes(true)).to.equal(16 + 6 + 16 + 16);
    expect(capacityForSlots(8000, false)).to.equal(1000 - 19);
    expect(capacityForSlots(8007, false)).to.equal(1000 - 19);
    expect(capacityForSlots(8000, true)).to.equal(1000 - 54);
    expect(capacityForSlots(100, true)).to.be.lessThan(0);
  });

  it('accepts exactly the capacity and states needed and available bytes beyond it', () => {
    expect(() => assertFits(981, 8000, false)).to.not.throw();
    let error: unknown;
    try {
      assertFits(982, 8000, false);
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(StegoError);
    const e = error as StegoError;
    expect(e.code).to.equal('capacity_exceeded');
    expect(e.message).to.contain('982').and.contain('981');
    expect(e.details).to.include({ neededBytes: 982, availableBytes: 981, overheadBytes: 19 });
  });

  it('reports 0 available when not even the framing fits', () => {
    let error: StegoError | undefined;
    try {
      assertFits(0, 24, true);
    } catch (e) {
      error = e as StegoError;
    }
    expect(error?.details).to.include({ neededBytes: 0, availableBytes: 0 });
    expect(error?.message).to.contain('too small').and.contain('encryption');
  });
});
