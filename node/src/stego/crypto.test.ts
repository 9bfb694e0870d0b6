import { expect } from 'chai';
import { assertScryptCost, deriveKeys, open, seal, verifierMatches, SEAL_OVERHEAD } from './crypto.js';
import { StegoError } from './errors.js';

const salt = new Uint8Array(16).fill(7);
const aad = Uint8Array.of(1, 2, 3);

describe('stego crypto', () => {
  it('derives the same keys for the same passphrase and salt, different ones otherwise', async () => {
    const a = await deriveKeys('correct horse', salt, 10);
    const b = await deriveKeys('correct horse', salt, 10);
    const c = await deriveKeys('correct horsf', salt, 10);
    const d = await deriveKeys('correct horse', new Uint8Array(16), 10);
    expect(Buffer.from(a.aesKey)).to.deep.equal(Buffer.from(b.aesKey));
    expect(verifierMatches(a, b.verifier)).to.equal(true);
    expect(verifierMatches(a, c.verifier)).to.equal(false);
    expect(verifierMatches(a, d.verifier)).to.equal(false);
    expect(Buffer.from(a.orderKey)).to.not.deep.equal(Buffer.from(a.aesKey));
  });

  it('treats canonically equivalent passphrases alike (NFC)', async () => {
    const composed = await deriveKeys('caf\u00e9', salt, 10);
    const decomposed = await deriveKeys('cafe\u0301', salt, 10);
    expect(verifierMatches(composed, decomposed.verifier)).to.equal(true);
  });

  it('seals and opens, and reports any tampering as corrupt_payload', async () => {
    const { aesKey } = await deriveKeys('pw', salt, 10);
    const plain = Uint8Array.of(0, 1, 2, 255, 0);
    const sealed = seal(aesKey, plain, aad);
    expect(sealed.length).to.equal(plain.length + SEAL_OVERHEAD);
    expect(Buffer.from(open(aesKey, sealed, aad))).to.deep.equal(Buffer.from(plain));
    for (let i = 0; i < sealed.length; i++) {
      const bad = Uint8Array.from(sealed);
      bad[i]! ^= 0x10;
      expect(() => open(aesKey, bad, aad)).to.throw(StegoError).with.property('code', 'corrupt_payload');
    }
    expect(() => open(aesKey, sealed, Uint8Array.of(1, 2, 4))).to.throw(StegoError).with.property('code', 'corrupt_payload');
    expect(() => open(aesKey, sealed.subarray(0, 10), aad)).to.throw(StegoError).with.property('code', 'corrupt_payload');
  });

  it('uses a fresh nonce per seal', async () => {
    const { aesKey } = await deriveKeys('pw', salt, 10);
    const a = seal(aesKey, Uint8Array.of(1), aad);
    const b = seal(aesKey, Uint8Array.of(1), aad);
    expect(Buffer.from(a)).to.not.deep.equal(Buffer.from(b));
  });

  it('bounds the scrypt cost from options and from headers', () => {
    expect(() => assertScryptCost(15, 'option')).to.not.throw();
    expect(() => assertScryptCost(9, 'option')).to.throw(StegoError).with.property('code', 'invalid_request');
    expect(() => assertScryptCost(15.5, 'option')).to.throw(StegoError).with.property('code', 'invalid_request');
    expect(() => assertScryptCost(30, 'header')).to.throw(StegoError).with.property('code', 'corrupt_payload');
  });
});
