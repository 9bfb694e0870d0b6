import { expect } from 'chai';
import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import { StegoError } from './errors.js';
import {
  BufferFrameReader,
  contentBytes,
  decodeContent,
  decodeFrame,
  encodeContent,
  encodeFrame,
  ENCRYPTED_HEADER_BYTES,
  PLAIN_HEADER_BYTES,
  type EncodedFrame,
} from './frame.js';
import type { Payload } from './payload.js';

const LOW_COST = 10;

const filenameArb = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
  .filter((s) => !/[\p{Cc}/\\]/u.test(s) && s !== '.' && s !== '..' && Buffer.byteLength(s) <= 255);

export const payloadArb: fc.Arbitrary<Payload> = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 200 }).map((text): Payload => ({ kind: 'text', text })),
  fc
    .record({ filename: filenameArb, data: fc.uint8Array({ maxLength: 300 }) })
    .map(({ filename, data }): Payload => ({ kind: 'file', filename, data })),
);

function flat(frame: EncodedFrame): Uint8Array {
  return Buffer.concat([frame.header, frame.body]);
}

async function codeOf(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
    return 'ok';
  } catch (e) {
    if (!(e instanceof StegoError)) throw e; // a raw Error escaping is itself a failure
    return e.code;
  }
}

function normalise(p: Payload): unknown {
  return p.kind === 'text' ? p : { ...p, data: Buffer.from(p.data) };
}

describe('stego frame', () => {
  it('round-trips any payload, plain', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, async (payload) => {
        const frame = await encodeFrame(payload, { scryptLog2N: LOW_COST });
        expect(frame.header.length).to.equal(PLAIN_HEADER_BYTES);
        expect(frame.body.length).to.equal(contentBytes(payload) + 4);
        expect(frame.bodyOrderKey).to.equal(null);
        const back = await decodeFrame(new BufferFrameReader(flat(frame)));
        expect(normalise(back)).to.deep.equal(normalise(payload));
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips any payload, encrypted', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, fc.string({ minLength: 1, maxLength: 30 }), async (payload, passphrase) => {
        const frame = await encodeFrame(payload, { passphrase, scryptLog2N: LOW_COST });
        expect(frame.header.length).to.equal(ENCRYPTED_HEADER_BYTES);
        expect(frame.body.length).to.equal(contentBytes(payload) + 28);
        expect(frame.bodyOrderKey).to.have.length(32);
        const back = await decodeFrame(new BufferFrameReader(flat(frame)), passphrase);
        expect(normalise(back)).to.deep.equal(normalise(payload));
      }),
      { numRuns: 30 },
    );
  });

  it('detects every single-bit flip as no_payload or corrupt_payload', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, fc.nat(), fc.boolean(), async (payload, where, encrypted) => {
        const passphrase = encrypted ? 'pw' : undefined;
        const bytes = flat(await encodeFrame(payload, { passphrase, scryptLog2N: LOW_COST }));
        const bit = where % (bytes.length * 8);
        bytes[bit >> 3]! ^= 0x80 >> (bit & 7);
        const code = await codeOf(() => decodeFrame(new BufferFrameReader(bytes), passphrase));
        expect(code).to.be.oneOf(bit < 32 ? ['no_payload'] : ['corrupt_payload']);
      }),
      { numRuns: 150 },
    );
  });

  it('detects truncation as no_payload or corrupt_payload', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, fc.nat(), fc.boolean(), async (payload, cut, encrypted) => {
        const passphrase = encrypted ? 'pw' : undefined;
        const bytes = flat(await encodeFrame(payload, { passphrase, scryptLog2N: LOW_COST }));
        const keep = cut % bytes.length;
        const code = await codeOf(() => decodeFrame(new BufferFrameReader(bytes.subarray(0, keep)), passphrase));
        expect(code).to.be.oneOf(keep < 11 ? ['no_payload'] : ['corrupt_payload']);
      }),
      { numRuns: 150 },
    );
  });

  it('never throws anything but StegoError on arbitrary bytes, with or without a magic prefix', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.boolean(), fc.option(fc.constant('pw')), async (noise, magic, pw) => {
        const bytes = magic ? Buffer.concat([Buffer.from('STGC'), noise]) : noise;
        const code = await codeOf(() => decodeFrame(new BufferFrameReader(bytes), pw ?? undefined));
        expect(code).to.be.oneOf(['no_payload', 'corrupt_payload']);
      }),
      { numRuns: 300 },
    );
  });

  it('reports a missing or wrong passphrase as such, and ignores one given for a plain payload', async () => {
    const payload: Payload = { kind: 'text', text: 'secret' };
    const sealed = flat(await encodeFrame(payload, { passphrase: 'right', scryptLog2N: LOW_COST }));
    expect(await codeOf(() => decodeFrame(new BufferFrameReader(sealed)))).to.equal('passphrase_required');
    expect(await codeOf(() => decodeFrame(new BufferFrameReader(sealed), 'wrong'))).to.equal('wrong_passphrase');
    const plain = flat(await encodeFrame(payload, { scryptLog2N: LOW_COST }));
    expect(await decodeFrame(new BufferFrameReader(plain), 'anything')).to.deep.equal(payload);
  });

  it('names an unknown format version (with a valid CRC) clearly', async () => {
    const bytes = flat(await encodeFrame({ kind: 'text', text: 'x' }, { scryptLog2N: LOW_COST }));
    bytes[4] = 2;
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(11, crc32(bytes.subarray(0, 11)));
    let error: StegoError | undefined;
    await decodeFrame(new BufferFrameReader(bytes)).catch((e: StegoError) => (error = e));
    expect(error?.code).to.equal('corrupt_payload');
    expect(error?.message).to.match(/version 2 is not supported/);
    expect(error?.details).to.include({ version: 2, supportedVersion: 1 });
  });

  it('refuses a header asking for an excessive scrypt cost before running scrypt', async () => {
    const bytes = flat(await encodeFrame({ kind: 'text', text: 'x' }, { passphrase: 'p', scryptLog2N: LOW_COST }));
    bytes[11 + 16] = 24;
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(36, crc32(bytes.subarray(0, 36)));
    expect(await codeOf(() => decodeFrame(new BufferFrameReader(bytes), 'p'))).to.equal('corrupt_payload');
  });

  it('rejects payloads that cannot round-trip exactly', () => {
    const bad: Payload[] = [
      { kind: 'text', text: 'lone \ud800 surrogate' },
      { kind: 'file', filename: '', data: new Uint8Array() },
      { kind: 'file', filename: '../etc/passwd', data: new Uint8Array() },
      { kind: 'file', filename: 'a\\b', data: new Uint8Array() },
      { kind: 'file', filename: 'nul\u0000', data: new Uint8Array() },
      { kind: 'file', filename: 'é'.repeat(128), data: new Uint8Array() },
    ];
    bad.push({ kind: 'image' } as unknown as Payload, { kind: 'file', filename: 'x', data: [1, 2] } as unknown as Payload);
    for (const payload of bad) {
      expect(() => encodeContent(payload), JSON.stringify(payload)).to.throw(StegoError).with.property('code', 'invalid_request');
    }
  });

  it('keeps binary data with zero bytes and non-ASCII names exact', () => {
    const payload: Payload = { kind: 'file', filename: 'résumé 📄.bin', data: Uint8Array.of(0, 0, 255, 0) };
    const content = encodeContent(payload);
    expect(content.length).to.equal(contentBytes(payload));
    expect(normalise(decodeContent('file', content))).to.deep.equal(normalise(payload));
  });

  it('refuses invalid UTF-8 and unsafe names when reading', () => {
    expect(() => decodeContent('text', Uint8Array.of(0xff, 0xfe))).to.throw(StegoError).with.property('code', 'corrupt_payload');
    expect(() => decodeContent('file', Uint8Array.of(2, 0x2f, 0x61))).to.throw(StegoError).with.property('code', 'corrupt_payload');
    expect(() => decodeContent('file', Uint8Array.of(9, 0x61))).to.throw(StegoError).with.property('code', 'corrupt_payload');
    expect(() => decodeContent('file', new Uint8Array())).to.throw(StegoError).with.property('code', 'corrupt_payload');
  });
});
