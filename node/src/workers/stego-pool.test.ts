import { expect } from 'chai';
import { StegoError } from '../stego/errors.js';
import { photoPng } from '../stego/png/synthetic.js';
import { StegoPool } from './stego-pool.js';

describe('StegoPool (real engine in worker threads)', () => {
  let pool: StegoPool;
  before(() => {
    pool = new StegoPool({ size: 1, maxQueue: 2, maxPixels: 1_000_000 });
  });
  after(() => pool.close());

  it('embeds and extracts a file payload, moving the input to the worker and hashing the output there', async () => {
    const cover = await photoPng(80, 60);
    // A buffer that owns its whole ArrayBuffer, as an upload arena's is: Buffer.from() of a small buffer
    // may return a slice of Node's shared allocation pool (64 KiB on Node 24), which must be copied.
    const input = Buffer.allocUnsafeSlow(cover.length);
    cover.copy(input);
    const data = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    const { png, sha256 } = await pool.embed(input, { kind: 'file', filename: 'x.bin', data }, { digest: true });
    expect(input.length, 'input transferred, not copied').to.equal(0);
    const { createHash } = await import('node:crypto');
    expect(sha256).to.equal(createHash('sha256').update(png).digest('hex'));
    const back = await pool.extract(png);
    expect(back.kind).to.equal('file');
    if (back.kind === 'file') {
      expect(back.filename).to.equal('x.bin');
      expect(Buffer.from(back.data).equals(data)).to.equal(true);
    }
  });

  it('copies a slice of Node\'s shared buffer pool instead of detaching the pool', async () => {
    const cover = await photoPng(16, 16);
    const pooled = Buffer.from(cover);
    expect(pooled.buffer.byteLength, 'a pooled slice (Buffer.poolSize on this runtime)').to.be.greaterThan(pooled.length);
    const neighbour = Buffer.from('still here');
    await pool.capacity(pooled);
    expect(pooled.equals(cover), 'the submitted slice is intact').to.equal(true);
    expect(neighbour.toString(), 'other slices of the pool are intact').to.equal('still here');
  });

  it('re-creates the engine\'s StegoErrors on the main thread', async () => {
    const err = await pool.capacity(Buffer.from('not a png')).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(StegoError);
    expect((err as StegoError).code).to.equal('not_png');
  });

  it('applies its pixel limit to every job', async () => {
    const err = await pool.capacity(await photoPng(1200, 1000)).then(() => undefined, (e: unknown) => e);
    expect((err as StegoError).code).to.equal('image_too_large');
  });

  it('passes the passphrase through', async () => {
    const { png } = await pool.embed(await photoPng(80, 60), { kind: 'text', text: 'hi' }, { passphrase: 'pw' });
    const err = await pool.extract(Buffer.from(png)).then(() => undefined, (e: unknown) => e);
    expect((err as StegoError).code).to.equal('no_payload');
    expect(await pool.extract(png, { passphrase: 'pw' })).to.deep.equal({ kind: 'text', text: 'hi' });
  });
});
