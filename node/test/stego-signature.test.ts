// The "no signature" guarantee of format version 2, checked the way an adversary would look: a
// public-order read (the default slot order, public by design) of a passphrase-protected image must find
// nothing but the cover's own noise, and the bits actually embedded must look uniformly random. Then a
// small run of the steganalysis bench (node/bench/steganalysis, real photographs) must still see
// StegoCluster as noise while it sees stepic.

import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { embed, extract, type Payload } from '../src/stego/engine.js';
import { deriveOrderKey } from '../src/stego/crypto.js';
import { decodeFrame, MAGIC } from '../src/stego/frame.js';
import { extractBytes } from '../src/stego/lsb.js';
import { DEFAULT_ORDER_KEY, KeyedPermutation, SlotSpace, SlotWalk } from '../src/stego/order.js';
import { decodePng } from '../src/stego/png/decode.js';
import { encodePng } from '../src/stego/png/encode.js';
import { photoLikeRaster } from '../src/stego/png/synthetic.js';
import type { Raster } from '../src/stego/raster.js';
import { SEALED_OVERHEAD } from '../src/stego/sealed.js';
import { codeOf } from '../src/stego/fixtures/outcome.js';

const LOW_COST = 10;
const SIDE = 256;
const RATE = 0.1; // bits per colour sample, the bound for "undetectable"
const PUBLIC_SLOTS = 256;


/** Sample indices of the first n usable slots of an order. */
function walk(raster: Raster, key: Uint8Array, n: number): number[] {
  const space = new SlotSpace(raster);
  const w = new SlotWalk(space, new KeyedPermutation(key, space.slotCount));
  return Array.from({ length: n }, () => w.next());
}

function bytesAlong(raster: Raster, key: Uint8Array, n: number): Uint8Array {
  const space = new SlotSpace(raster);
  return extractBytes(new SlotWalk(space, new KeyedPermutation(key, space.slotCount)), raster.data, n)!;
}

describe('stego signature: a passphrase-protected image read in the public order', function () {
  this.timeout(120_000);
  const passphrase = 'signature test';
  // Highly structured content: if anything of it showed through unencrypted, the statistics below would see it.
  const payloadBytes = Math.floor((RATE * SIDE * SIDE * 3) / 8) - SEALED_OVERHEAD - 2;
  const payload: Payload = { kind: 'file', filename: 'z', data: new Uint8Array(payloadBytes) };
  const cases: { cover: Raster; stego: Raster; png: Buffer }[] = [];

  before(async () => {
    for (const seed of [1, 2, 3, 4]) {
      const coverPng = await encodePng(photoLikeRaster({ width: SIDE, height: SIDE, channels: 3, seed }));
      const png = await embed(coverPng, payload, { passphrase, scryptLog2N: LOW_COST });
      cases.push({ cover: decodePng(coverPng, { maxPixels: 1e6 }), stego: decodePng(png, { maxPixels: 1e6 }), png });
    }
  });

  it('answers no_payload without the passphrase and with a wrong one, exactly as for the cover', async () => {
    for (const { png } of cases) {
      expect(await codeOf(() => extract(png))).to.equal('no_payload');
      expect(await codeOf(() => extract(png, { passphrase: 'signature tesT', scryptLog2N: LOW_COST }))).to.equal('no_payload');
      expect(await extract(png, { passphrase, scryptLog2N: LOW_COST })).to.have.property('kind', 'file');
    }
  });

  it('has no magic and no frame in the public order', async () => {
    for (const { stego } of cases) {
      const prefix = bytesAlong(stego, DEFAULT_ORDER_KEY, MAGIC.length);
      expect(Buffer.from(prefix).equals(Buffer.from(MAGIC))).to.equal(false);
      const space = new SlotSpace(stego);
      const w = new SlotWalk(space, new KeyedPermutation(DEFAULT_ORDER_KEY, space.slotCount));
      const reader = {
        header: (n: number) => extractBytes(w, stego.data, n),
        bodyBytesAvailable: () => 0,
        body: () => new Uint8Array(0),
      };
      expect(await decodeFrame(reader)).to.equal(null);
    }
  });

  it('changes the first public-order slots no more often than any other slots', () => {
    // A public header would change about half of its ~120 slots; random spreading changes RATE / 2 of them.
    let changed = 0;
    let changedEverywhere = 0;
    for (const { cover, stego } of cases) {
      for (const s of walk(stego, DEFAULT_ORDER_KEY, PUBLIC_SLOTS)) if (stego.data[s] !== cover.data[s]) changed++;
      for (let i = 0; i < stego.data.length; i++) if (stego.data[i] !== cover.data[i]) changedEverywhere++;
    }
    const slots = PUBLIC_SLOTS * cases.length;
    const expected = (changedEverywhere / (SIDE * SIDE * 3 * cases.length)) * slots;
    expect(expected).to.be.within(0.3 * RATE * slots, 0.7 * RATE * slots); // ±1 changes about half the bits it carries
    // Binomial: the standard deviation is about sqrt(expected); 6 of them is far outside chance.
    expect(changed).to.be.below(expected + 6 * Math.sqrt(expected));
  });

  it('embeds bits that look uniformly random (byte histogram and runs), though the content is all zeros', async () => {
    const orderKey = await deriveOrderKey(passphrase, LOW_COST);
    for (const { stego } of cases) {
      const bytes = bytesAlong(stego, orderKey, payloadBytes + 2 + SEALED_OVERHEAD);
      const counts = new Array<number>(256).fill(0);
      for (const b of bytes) counts[b]!++;
      const e = bytes.length / 256;
      const chi = counts.reduce((acc, c) => acc + (c - e) ** 2 / e, 0);
      expect(chi, 'byte chi-square, 255 degrees of freedom (p < 1e-9 above 400)').to.be.below(400);
      let ones = 0;
      let runs = 1;
      for (let i = 0; i < bytes.length * 8; i++) {
        const bit = (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
        ones += bit;
        if (i > 0 && bit !== ((bytes[(i - 1) >> 3]! >> (7 - ((i - 1) & 7))) & 1)) runs++;
      }
      const bits = bytes.length * 8;
      expect(Math.abs(ones - bits / 2)).to.be.below(6 * Math.sqrt(bits / 4));
      expect(Math.abs(runs - bits / 2)).to.be.below(6 * Math.sqrt(bits / 4));
    }
  });
});

describe('stego signature: classic steganalysis on real photographs (small run of bench:steganalysis)', function () {
  this.timeout(600_000);

  it('sees stepic and sequential LSB replacement, and not StegoCluster', function () {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
    const script = path.join(root, 'node/bench/steganalysis/run.py');
    const r = spawnSync('/usr/bin/python3', [script, '--quick'], { encoding: 'utf8', env: { ...process.env, npm_node_execpath: process.execPath } });
    if (r.status !== 0) {
      throw new Error(
        `${script} --quick failed (needs: apt-get install python3-numpy python3-scipy python3-pil python3-pip stepic; ` +
          `it fetches scikit-image's wheel with pip download once):\n${r.stderr}`,
      );
    }
    type Row = Record<string, number> & { 'mean score shift': Record<string, number> };
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { covers: number; rates: Record<string, Record<string, Row>> };
    expect(result.covers).to.be.at.least(6);
    const at = result.rates['0.4']!;
    const shift = (tool: string, detector: string) => at[tool]!['mean score shift'][detector]!;
    // the whole-image estimators and their scans of the top rows (where sequential tools write)
    for (const detector of ['RS (Fridrich)', 'SPA (Dumitrescu)', 'WS (Fridrich-Goljan, Ker-Boehme)', 'RS, prefix scan', 'SPA, prefix scan', 'WS, prefix scan']) {
      // the detectors work: they estimate most of the 0.4 bpc LSB replacement
      expect(shift('stepic (LSB replacement)', detector), detector).to.be.above(0.25);
      expect(shift('sequential LSB replacement', detector), detector).to.be.above(0.25);
      // and see close to nothing of StegoCluster's ±1 embedding, with or without passphrase
      expect(Math.abs(shift('StegoCluster + passphrase', detector)), detector).to.be.below(0.06);
      expect(Math.abs(shift('StegoCluster, no passphrase', detector)), detector).to.be.below(0.06);
    }
  });
});
