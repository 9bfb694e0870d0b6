// Extract checks the IDAT CRCs only when it fails (decodePngForExtract): every failing input must
// answer exactly what the checking decode (decodePng, then the payload read) answers, with the input
// consumed or not, with a passphrase or not; the one permitted difference is an image whose image data
// inflates correctly (zlib's Adler-32) behind a wrong IDAT CRC, which extract reads.
import { expect } from 'chai';
import { createRequire } from 'node:module';
import { capacity, embed, extract, type Payload } from '../engine.js';
import { StegoError } from '../errors.js';
import { revealFromRaster } from '../payload.js';
import { decodePng } from './decode.js';
import { encodePng } from './encode.js';
import { photoLikeRaster } from './synthetic.js';
import { xorshift32 } from '../xorshift.js';

const require = createRequire(import.meta.url);
const extractChunks = require('png-chunks-extract') as (d: Uint8Array) => { name: string; data: Uint8Array }[];
const encodeChunks = require('png-chunks-encode') as (c: { name: string; data: Uint8Array }[]) => Uint8Array;

const LIMIT = { maxPixels: 40_000_000 };
const PAYLOAD: Payload = { kind: 'text', text: 'read through deferred IDAT CRCs' };
const SEALED = { passphrase: 'deferred', scryptLog2N: 10 };

/** `png` with its image data cut into `pieces` IDAT chunks and a tEXt chunk after them, in its own ArrayBuffer. */
function rechunked(png: Uint8Array, pieces: number): Uint8Array {
  const chunks = extractChunks(png);
  const idat = Buffer.concat(chunks.filter((c) => c.name === 'IDAT').map((c) => c.data));
  const step = Math.ceil(idat.length / pieces);
  const data = Array.from({ length: pieces }, (_, i) => ({ name: 'IDAT', data: idat.subarray(i * step, (i + 1) * step) }));
  const text = { name: 'tEXt', data: Buffer.from('Comment\0after', 'latin1') };
  return new Uint8Array(encodeChunks([chunks[0]!, ...data, text, { name: 'IEND', data: new Uint8Array(0) }]));
}

/** Byte ranges [start, end) of each IDAT chunk's data and of its CRC field. */
function idatLayout(png: Uint8Array): { data: [number, number]; crc: [number, number] }[] {
  const view = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  const out: { data: [number, number]; crc: [number, number] }[] = [];
  for (let at = 8; at + 12 <= view.length; ) {
    const length = view.readUInt32BE(at);
    const name = view.toString('latin1', at + 4, at + 8);
    if (name === 'IDAT') out.push({ data: [at + 8, at + 8 + length], crc: [at + 8 + length, at + 12 + length] });
    at += 12 + length;
  }
  return out;
}

type Outcome = { ok: unknown } | { code: string; message: string };

async function outcomeOf(work: () => Promise<Payload>): Promise<Outcome> {
  try {
    const p = await work();
    return { ok: p.kind === 'file' ? { ...p, data: Buffer.from(p.data) } : p };
  } catch (e) {
    if (!(e instanceof StegoError)) throw e;
    return { code: e.code, message: e.message };
  }
}

/** What extract answered before the deferral: every CRC checked by the decode, then the payload read. */
function checkingExtract(png: Uint8Array, opts: typeof SEALED | Record<string, never>): Promise<Payload> {
  return Promise.resolve().then(() => revealFromRaster(decodePng(png, LIMIT), opts));
}

const copyOf = (b: Uint8Array) => new Uint8Array(b);

describe('png/decode extract defers the IDAT CRCs', () => {
  let carrier: Uint8Array; // a public payload, 5 IDAT chunks
  let sealed: Uint8Array; // a sealed payload, 5 IDAT chunks
  let cover: Uint8Array; // nothing embedded, 5 IDAT chunks
  before(async () => {
    const base = await encodePng(photoLikeRaster({ width: 160, height: 120, channels: 4, seed: 5 }));
    cover = rechunked(base, 5);
    carrier = rechunked(await embed(base, PAYLOAD), 5);
    sealed = rechunked(await embed(base, PAYLOAD, SEALED), 5);
  });

  it('reads intact images, and an intact cover is no_payload (the CRCs of data joined in place check out)', async () => {
    for (const consumeInput of [false, true]) {
      expect(await extract(copyOf(carrier), { consumeInput })).to.deep.equal(PAYLOAD);
      expect(await extract(copyOf(sealed), { ...SEALED, consumeInput })).to.deep.equal(PAYLOAD);
      const empty = await outcomeOf(() => extract(copyOf(cover), { consumeInput }));
      expect(empty).to.have.property('code', 'no_payload');
    }
  });

  it('answers a wrong IDAT CRC on an image without a payload as decodePng does, consumed or not', async () => {
    for (const chunk of [0, 2, 4]) {
      const damaged = copyOf(cover);
      damaged[idatLayout(damaged)[chunk]!.crc[0]]! ^= 0x10;
      const expected = await outcomeOf(() => checkingExtract(damaged, {}));
      expect(expected).to.deep.equal({ code: 'corrupt_png', message: 'corrupt PNG: IDAT CRC mismatch' });
      for (const consumeInput of [false, true]) {
        expect(await outcomeOf(() => extract(copyOf(damaged), { consumeInput })), `chunk ${chunk}`).to.deep.equal(expected);
        expect(await outcomeOf(() => extract(copyOf(damaged), { ...SEALED, consumeInput })), `chunk ${chunk}`).to.deep.equal(expected);
      }
    }
  });

  it('reads a payload behind a wrong IDAT CRC whose data is intact; embed and capacity still refuse it', async () => {
    const damaged = copyOf(carrier);
    damaged[idatLayout(damaged)[3]!.crc[1] - 1]! ^= 0x01;
    expect(await extract(copyOf(damaged), { consumeInput: true })).to.deep.equal(PAYLOAD);
    const refused = async (work: () => Promise<unknown>) => work().then(() => 'ok', (e: unknown) => (e as StegoError).message);
    expect(await refused(() => embed(copyOf(damaged), PAYLOAD))).to.equal('corrupt PNG: IDAT CRC mismatch');
    expect(await refused(() => capacity(copyOf(damaged)))).to.equal('corrupt PNG: IDAT CRC mismatch');
    // with a passphrase the CRCs are checked before scrypt runs, as before
    const sealedDamaged = copyOf(sealed);
    sealedDamaged[idatLayout(sealedDamaged)[3]!.crc[0]]! ^= 0x01;
    expect(await outcomeOf(() => extract(sealedDamaged, SEALED))).to.deep.equal({ code: 'corrupt_png', message: 'corrupt PNG: IDAT CRC mismatch' });
  });

  it('a wrong IDAT CRC ahead of a later defect is reported first, as by the checking split', async () => {
    const damaged = copyOf(cover);
    damaged[idatLayout(damaged)[1]!.crc[0]]! ^= 0x01;
    const truncated = damaged.subarray(0, damaged.length - 6); // IEND cut
    const expected = await outcomeOf(() => checkingExtract(truncated, {}));
    expect(expected).to.deep.equal({ code: 'corrupt_png', message: 'corrupt PNG: IDAT CRC mismatch' });
    expect(await outcomeOf(() => extract(copyOf(truncated), { consumeInput: true }))).to.deep.equal(expected);
  });

  it('every single-bit flip and truncation answers as the checking decode, or reads the payload behind a bad IDAT CRC', async function () {
    this.timeout(60_000);
    const random = xorshift32(0x1b873593);
    const next = (n: number): number => random() % n;
    const layout = idatLayout(carrier);
    const tally = { same: 0, readBehindBadCrc: 0 };
    for (let k = 0; k < 400; k++) {
      const [source, opts] = k % 4 === 3 ? [sealed, SEALED] : [carrier, {}];
      let damaged = copyOf(source);
      if (k % 10 === 9) damaged = damaged.subarray(0, next(damaged.length));
      else {
        // most flips land in the image data (the bulk of the file), some in the IDAT CRC fields
        const at = k % 5 === 0 ? layout[next(layout.length)]!.crc[0] + next(4) : next(damaged.length);
        damaged[at]! ^= 1 << next(8);
      }
      const expected = await outcomeOf(() => checkingExtract(damaged, opts));
      const got = await outcomeOf(() => extract(copyOf(damaged), { ...opts, consumeInput: k % 2 === 0 }));
      if ('code' in expected && expected.message === 'corrupt PNG: IDAT CRC mismatch' && 'ok' in got) {
        expect(got.ok, `case ${k}`).to.deep.equal(PAYLOAD);
        tally.readBehindBadCrc++;
      } else {
        expect(got, `case ${k}`).to.deep.equal(expected);
        tally.same++;
      }
    }
    expect(tally.same).to.be.greaterThan(200);
    expect(tally.readBehindBadCrc).to.be.greaterThan(10);
  });
});
