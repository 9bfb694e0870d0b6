// Acceptance for the stego engine: exact round trips on every valid PngSuite image (all colour types, bit
// depths, Adam7, odd sizes, tRNS) and on large generated images, plus "only StegoError ever escapes" on the
// suite's deliberately corrupt files and on damaged copies of valid ones.

import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { capacity, embed, extract, payloadSize, type EngineOptions, type Payload } from '../src/stego/engine.js';
import { StegoError } from '../src/stego/errors.js';
import { decodePng } from '../src/stego/png/decode.js';
import { encodePng } from '../src/stego/png/encode.js';
import { readHeader } from '../src/stego/png/header.js';
import { pngSuiteDir } from '../src/stego/png/fixtures.js';
import type { Raster } from '../src/stego/raster.js';

const LOW_COST = 10; // scrypt 2^10 keeps 160 images × several encrypted round trips fast; one test below uses the default
const PLAIN: EngineOptions = {};
const SEALED: EngineOptions = { passphrase: 'pässwörd 🔑', scryptLog2N: LOW_COST };

const TEXT: Payload = { kind: 'text', text: 'Grüße, 世界 🎉\u0000end' };
const FILE: Payload = { kind: 'file', filename: 'données.bin', data: Uint8Array.of(0, 0, 1, 255, 0, 128, 0) };

async function codeOf(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
    return 'ok';
  } catch (e) {
    if (!(e instanceof StegoError)) throw new Error(`non-StegoError escaped the engine: ${String(e)}`, { cause: e });
    return e.code;
  }
}

function comparable(p: Payload): unknown {
  return p.kind === 'text' ? p : { kind: p.kind, filename: p.filename, data: Buffer.from(p.data) };
}

/** A text of exactly n UTF-8 bytes, mixing 1-, 2- and 4-byte characters and zero bytes. */
function textOfBytes(n: number): Payload {
  let text = '';
  let left = n;
  const pieces = ['🎉', 'ß', '\u0000', 'a'];
  for (let i = 0; left > 0; i++) {
    const piece = pieces[i % pieces.length]!;
    const size = Buffer.byteLength(piece);
    if (size <= left) {
      text += piece;
      left -= size;
    }
  }
  return { kind: 'text', text };
}

function fileOfBytes(n: number): Payload {
  const data = Uint8Array.from({ length: n - 2 }, (_, i) => (i * 131) & 0xff); // 1 length byte + 1-byte name
  return { kind: 'file', filename: 'f', data };
}

/** Alpha and fully transparent pixels of the decoded output must equal the input's, sample for sample. */
function expectTransparencyKept(before: Raster, after: Raster): void {
  expect([after.colorType, after.bitDepth, after.width, after.height]).to.deep.equal([
    before.colorType,
    before.bitDepth,
    before.width,
    before.height,
  ]);
  expect(after.transparentKey).to.deep.equal(before.transparentKey);
  const { channels } = before;
  for (let p = 0; p < before.width * before.height; p++) {
    const base = p * channels;
    const keyed = before.transparentKey?.every((k, c) => before.data[base + c] === k) ?? false;
    const clear = before.hasAlpha && before.data[base + channels - 1] === 0;
    for (let c = 0; c < channels; c++) {
      const i = base + c;
      const mustMatch = keyed || clear || (before.hasAlpha && c === channels - 1);
      if (mustMatch && after.data[i] !== before.data[i]) expect.fail(`sample ${i} (pixel ${p}) changed under transparency`);
      if (!mustMatch && Math.abs(after.data[i]! - before.data[i]!) > 3) expect.fail(`sample ${i} moved by more than 3`);
    }
  }
}

async function roundTrip(png: Buffer, payload: Payload, opts: EngineOptions, cap: number): Promise<void> {
  if (payloadSize(payload, opts) > cap) {
    expect(await codeOf(() => embed(png, payload, opts))).to.equal('capacity_exceeded');
    return;
  }
  const out = await embed(png, payload, opts);
  expect(comparable(await extract(out, opts))).to.deep.equal(comparable(payload));
}

describe('stego corpus: every valid PngSuite image', function () {
  const dir = pngSuiteDir();
  if (dir === undefined) {
    it('is skipped: ../shared/pngsuite is not present (set PNGSUITE_DIR to run it)', function () {
      this.skip();
    });
    return;
  }
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.png')).sort();
  const valid = files.filter((f) => !f.startsWith('x'));
  const corrupt = files.filter((f) => f.startsWith('x'));

  it('finds the corpus', () => {
    expect(valid.length).to.be.greaterThan(150);
    expect(corrupt.length).to.be.greaterThan(10);
  });

  for (const name of valid) {
    it(`${name}: exact round trips, exact capacity, transparency kept`, async () => {
      const png = fs.readFileSync(path.join(dir, name));
      expect(await codeOf(() => extract(png))).to.equal('no_payload');
      const plainCap = (await capacity(png, PLAIN)).capacityBytes;
      const sealedCap = (await capacity(png, SEALED)).capacityBytes;
      expect(sealedCap).to.equal(Math.max(0, plainCap + 19 - 54));

      for (const opts of [PLAIN, SEALED]) {
        const cap = opts === PLAIN ? plainCap : sealedCap;
        await roundTrip(png, TEXT, opts, cap);
        await roundTrip(png, FILE, opts, cap);
        if (cap > 0) {
          await roundTrip(png, textOfBytes(cap), opts, cap);
          expect(await codeOf(() => embed(png, textOfBytes(cap + 1), opts))).to.equal('capacity_exceeded');
        } else {
          expect(await codeOf(() => embed(png, textOfBytes(1), opts))).to.equal('capacity_exceeded');
        }
        if (cap >= 2) await roundTrip(png, fileOfBytes(cap), opts, cap);
      }

      if (plainCap >= payloadSize(TEXT)) {
        const before = decodePng(png, { maxPixels: 1e7 });
        const out = await embed(png, textOfBytes(plainCap), PLAIN);
        expect(readHeader(out)).to.deep.include({ width: before.width, height: before.height, interlace: 0 });
        expectTransparencyKept(before, decodePng(out, { maxPixels: 1e7 }));
      }
      if (sealedCap >= payloadSize(TEXT)) {
        const out = await embed(png, TEXT, SEALED);
        // a sealed image answers exactly like a cover to anyone without its passphrase
        expect(await codeOf(() => extract(out))).to.equal('no_payload');
        expect(await codeOf(() => extract(out, { passphrase: 'passwort', scryptLog2N: LOW_COST }))).to.equal('no_payload');
      }
    });
  }

  it('the deliberately corrupt x* files only ever produce StegoErrors', async () => {
    for (const name of corrupt) {
      const png = fs.readFileSync(path.join(dir, name));
      for (const work of [() => extract(png), () => capacity(png), () => embed(png, TEXT), () => extract(png, SEALED)]) {
        expect(await codeOf(work), name).to.not.equal('ok');
      }
    }
  });

  it('truncated and bit-flipped copies of valid images only ever produce StegoErrors or exact results', async () => {
    let rng = 0x2545f491;
    const next = (n: number): number => {
      rng ^= rng << 13;
      rng ^= rng >>> 17;
      rng ^= rng << 5;
      return (rng >>> 0) % n;
    };
    for (const name of valid.filter((_, i) => i % 4 === 0)) {
      const png = fs.readFileSync(path.join(dir, name));
      const cap = (await capacity(png)).capacityBytes;
      const carrier = cap >= payloadSize(TEXT) ? await embed(png, TEXT) : png;
      for (let k = 0; k < 6; k++) {
        const damaged = Buffer.from(carrier.subarray(0, k < 3 ? next(carrier.length) : carrier.length));
        if (k >= 3) damaged[next(damaged.length)]! ^= 1 << next(8);
        const code = await codeOf(async () => {
          const p = await extract(damaged);
          expect(comparable(p)).to.deep.equal(comparable(TEXT)); // damage the CRCs let through must not alter the payload
        });
        expect(['ok', 'not_png', 'corrupt_png', 'no_payload', 'corrupt_payload', 'unsupported_png']).to.include(code);
        await codeOf(() => capacity(damaged));
      }
    }
  });
});

describe('stego corpus: large generated images', function () {
  function photo(width: number, height: number, channels: 3 | 4, bitDepth: 8 | 16): Raster {
    const max = bitDepth === 16 ? 0xffff : 0xff;
    const data = bitDepth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
    let noise = 0x9e3779b9;
    let i = 0;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < 3; c++) {
          noise ^= noise << 13;
          noise ^= noise >>> 17;
          noise ^= noise << 5;
          const gradient = ((x * (c + 1) + y * (3 - c)) / (width + height) / 3) * max;
          data[i++] = Math.min(max, Math.floor(gradient) + ((noise >>> 0) % (max >> 4)));
        }
        // A transparent band, a translucent band and an opaque rest.
        if (channels === 4) data[i++] = y < height / 5 ? 0 : y < (2 * height) / 5 ? max >> 1 : max;
      }
    }
    const colorType = channels === 4 ? 6 : 2;
    return {
      width, height, colorType, bitDepth, channels, hasAlpha: channels === 4, data, chunks: [],
      source: { width, height, bitDepth, colorType, interlace: 0 },
    };
  }

  const bigFile: Payload = {
    kind: 'file',
    filename: 'archive (1).tar.gz',
    data: Uint8Array.from({ length: 768 << 10 }, (_, i) => (i % 251 === 0 ? 0 : (i * 7919) & 0xff)),
  };

  const cases: { name: string; make: () => Raster }[] = [
    { name: '4000×3000 RGB 8-bit', make: () => photo(4000, 3000, 3, 8) },
    { name: '2000×1500 RGB 16-bit', make: () => photo(2000, 1500, 3, 16) },
    { name: '2000×1500 RGBA 8-bit with a transparent band', make: () => photo(2000, 1500, 4, 8) },
  ];

  for (const { name, make } of cases) {
    it(`${name}: 768 KiB file with a passphrase and a text without, exact; alpha exact`, async function () {
      this.timeout(300_000);
      const raster = make();
      const png = await encodePng(raster);
      const sealed = await embed(png, bigFile, SEALED);
      expect(comparable(await extract(sealed, SEALED))).to.deep.equal(comparable(bigFile));
      const after = decodePng(sealed, { maxPixels: 4e7 });
      expectTransparencyKept(raster, after);
      const plain = await embed(png, TEXT);
      expect(await extract(plain)).to.deep.equal(TEXT);
      const { capacityBytes } = await capacity(png);
      expect(await codeOf(() => embed(png, fileOfBytes(capacityBytes + 1)))).to.equal('capacity_exceeded');
    });
  }

  it('default scrypt cost round trip (what production uses)', async () => {
    const png = await encodePng(photo(200, 100, 3, 8));
    const out = await embed(png, TEXT, { passphrase: 'default cost' });
    expect(await extract(out, { passphrase: 'default cost' })).to.deep.equal(TEXT);
    expect(await codeOf(() => extract(out, { passphrase: 'Default cost' }))).to.equal('no_payload');
  });
});
