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
  PLAIN_HEADER_BYTES,
  type EncodedFrame,
} from './frame.js';
import type { Payload } from './payload.js';
import { BufferSealedReader, openSealedFrame, SEALED_OVERHEAD, sealFrame } from './sealed.js';
import { codeOf } from './fixtures/outcome.js';

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

/** decodeFrame with "no frame" reported as the engine reports it. */
async function decode(bytes: Uint8Array, passphrase?: string): Promise<Payload> {
  const found = await decodeFrame(new BufferFrameReader(bytes), passphrase);
  if (found === null) throw new StegoError('no_payload', 'no frame');
  return found;
}

async function unseal(bytes: Uint8Array, passphrase: string, maxBytes = bytes.length): Promise<Payload> {
  return openSealedFrame(new BufferSealedReader(bytes), { passphrase, scryptLog2N: LOW_COST }, maxBytes);
}

/** A version-1 encrypted header (the writer is gone; readers must still understand it). */
function v1EncryptedHeader(bodyLength: number, log2N: number): Uint8Array {
  const h = new Uint8Array(40);
  h.set([0x53, 0x54, 0x47, 0x43, 1, 40, 2], 0);
  new DataView(h.buffer).setUint32(7, bodyLength);
  h[27] = log2N;
  new DataView(h.buffer).setUint32(36, crc32(h.subarray(0, 36)));
  return h;
}


function normalise(p: Payload): unknown {
  return p.kind === 'text' ? p : { ...p, data: Buffer.from(p.data) };
}

describe('stego frame', () => {
  it('round-trips any payload in a public frame (no passphrase), written as version 2', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, async (payload) => {
        const frame = encodeFrame(payload);
        expect(frame.header.length).to.equal(PLAIN_HEADER_BYTES);
        expect(frame.header[4]).to.equal(2);
        expect(frame.body.length).to.equal(contentBytes(payload) + 4);
        expect(normalise(await decode(flat(frame)))).to.deep.equal(normalise(payload));
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips any payload in a sealed frame (passphrase)', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, fc.string({ minLength: 1, maxLength: 30 }), async (payload, passphrase) => {
        const frame = await sealFrame(payload, { passphrase, scryptLog2N: LOW_COST });
        expect(frame.bytes.length).to.equal(contentBytes(payload) + SEALED_OVERHEAD);
        expect(frame.orderKey).to.have.length(32);
        expect(normalise(await unseal(frame.bytes, passphrase))).to.deep.equal(normalise(payload));
      }),
      { numRuns: 30 },
    );
  });

  it('a sealed frame of a given payload differs every time and has no fixed byte anywhere', async () => {
    const payload: Payload = { kind: 'text', text: 'same text' };
    const frames = await Promise.all([1, 2, 3, 4].map(() => sealFrame(payload, { passphrase: 'pw', scryptLog2N: LOW_COST })));
    const length = frames[0]!.bytes.length;
    for (let i = 0; i < length; i++) {
      expect(new Set(frames.map((f) => f.bytes[i])).size, `byte ${i}`).to.be.greaterThan(1);
    }
    expect(Buffer.from(frames[0]!.orderKey)).to.deep.equal(Buffer.from(frames[1]!.orderKey));
  });

  it('answers no_payload for a sealed frame under any other passphrase, and for noise', async () => {
    const frame = await sealFrame({ kind: 'text', text: 'secret' }, { passphrase: 'right', scryptLog2N: LOW_COST });
    expect(await codeOf(() => unseal(frame.bytes, 'wrong'))).to.equal('no_payload');
    expect(await codeOf(() => unseal(frame.bytes, 'Right'))).to.equal('no_payload');
    expect(await codeOf(() => unseal(new Uint8Array(200), 'right'))).to.equal('no_payload');
    expect(await codeOf(() => unseal(new Uint8Array(10), 'right'))).to.equal('no_payload');
  });

  it('public frames: every single-bit flip is no_payload or corrupt_payload', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, fc.nat(), async (payload, where) => {
        const bytes = flat(encodeFrame(payload));
        const bit = where % (bytes.length * 8);
        bytes[bit >> 3]! ^= 0x80 >> (bit & 7);
        expect(await codeOf(() => decode(bytes))).to.be.oneOf(bit < 32 ? ['no_payload'] : ['corrupt_payload']);
      }),
      { numRuns: 150 },
    );
  });

  it('sealed frames: a flip in the salt or header is no_payload, in the body corrupt_payload', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, fc.nat(), async (payload, where) => {
        const bytes = (await sealFrame(payload, { passphrase: 'pw', scryptLog2N: LOW_COST })).bytes;
        const bit = where % (bytes.length * 8);
        bytes[bit >> 3]! ^= 0x80 >> (bit & 7);
        expect(await codeOf(() => unseal(bytes, 'pw'))).to.equal(bit < 38 * 8 ? 'no_payload' : 'corrupt_payload');
      }),
      { numRuns: 60 },
    );
  });

  it('detects truncation as no_payload or corrupt_payload', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, fc.nat(), fc.boolean(), async (payload, cut, sealed) => {
        const bytes = sealed ? (await sealFrame(payload, { passphrase: 'pw', scryptLog2N: LOW_COST })).bytes : flat(encodeFrame(payload));
        const keep = cut % bytes.length;
        const code = await codeOf(() => (sealed ? unseal(bytes.subarray(0, keep), 'pw', bytes.length) : decode(bytes.subarray(0, keep))));
        expect(code).to.be.oneOf(keep < (sealed ? 38 : 11) ? ['no_payload'] : ['corrupt_payload']);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses a sealed header claiming more than the image holds', async () => {
    const frame = await sealFrame({ kind: 'text', text: 'x'.repeat(100) }, { passphrase: 'pw', scryptLog2N: LOW_COST });
    expect(await codeOf(() => unseal(frame.bytes, 'pw', frame.bytes.length - 1))).to.equal('corrupt_payload');
  });

  it('never throws anything but StegoError on arbitrary bytes, with or without a magic prefix', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.boolean(), fc.option(fc.constant('pw')), async (noise, magic, pw) => {
        const bytes = magic ? Buffer.concat([Buffer.from('STGC'), noise]) : noise;
        expect(await codeOf(() => decode(bytes, pw ?? undefined))).to.be.oneOf(['no_payload', 'corrupt_payload']);
        if (pw) expect(await codeOf(() => unseal(bytes, pw))).to.equal('no_payload');
      }),
      { numRuns: 200 },
    );
  });

  it('ignores a passphrase given for a public frame', async () => {
    const payload: Payload = { kind: 'text', text: 'public' };
    expect(await decode(flat(encodeFrame(payload)), 'anything')).to.deep.equal(payload);
  });

  it('reads version-1 public frames and names an unknown version (with a valid CRC) clearly', async () => {
    const bytes = flat(encodeFrame({ kind: 'text', text: 'x' }));
    bytes[4] = 1;
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(11, crc32(bytes.subarray(0, 11)));
    expect(await decode(bytes)).to.deep.equal({ kind: 'text', text: 'x' });
    bytes[4] = 3;
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(11, crc32(bytes.subarray(0, 11)));
    let error: StegoError | undefined;
    await decode(bytes).catch((e: StegoError) => (error = e));
    expect(error?.code).to.equal('corrupt_payload');
    expect(error?.message).to.match(/version 3 is not supported/);
    expect(error?.details).to.include({ version: 3, supportedVersion: 2 });
  });

  it('refuses an encrypted public header in version 2 (only version 1 wrote them)', async () => {
    const bytes = Buffer.concat([v1EncryptedHeader(40, LOW_COST), new Uint8Array(40)]);
    bytes[4] = 2;
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(36, crc32(bytes.subarray(0, 36)));
    expect(await codeOf(() => decode(bytes, 'p'))).to.equal('corrupt_payload');
  });

  it('refuses a version-1 header asking for an excessive scrypt cost before running scrypt', async () => {
    const bytes = Buffer.concat([v1EncryptedHeader(40, 24), new Uint8Array(40)]);
    expect(await codeOf(() => decode(bytes, 'p'))).to.equal('corrupt_payload');
    expect(await codeOf(() => decode(v1EncryptedHeader(40, LOW_COST)))).to.equal('corrupt_payload');
    expect(await codeOf(() => decode(Buffer.concat([v1EncryptedHeader(40, LOW_COST), new Uint8Array(40)])))).to.equal('passphrase_required');
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
