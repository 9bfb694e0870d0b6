import { expect } from 'chai';
import { transferableCopy } from '../workers/protocol.js';
import { DEFER_BYTES, UploadArena } from './upload-arena.js';

function feed(arena: UploadArena, key: object, chunks: string[]): void {
  const s = arena.stream(key);
  for (const c of chunks) s.write(Buffer.from(c));
}

describe('UploadArena', () => {
  it('stores consecutive parts back to back in one buffer that may be transferred whole', () => {
    const arena = new UploadArena(64);
    const a = {};
    const b = {};
    feed(arena, a, ['hello ', 'world']);
    feed(arena, b, ['second']);
    const first = arena.contentOf(a)!;
    const second = arena.contentOf(b)!;
    expect(first.toString()).to.equal('hello world');
    expect(second.toString()).to.equal('second');
    expect(first.buffer).to.equal(second.buffer);
    expect(first.buffer.byteLength).to.equal(64);
    // A partial view of an arena is transferable: the whole arena moves, with no copy.
    const sent = transferableCopy(second);
    expect(sent.bytes).to.equal(second);
    expect(sent.transfer).to.deep.equal([second.buffer]);
  });

  it('keeps chunks beyond the declared length (understated Content-Length) and joins them', () => {
    const arena = new UploadArena(8);
    const key = {};
    feed(arena, key, ['12345', '67890', 'abc']);
    expect(arena.contentOf(key)!.toString()).to.equal('1234567890abc');
  });

  it('works without a declared length, and never marks a joined buffer from the shared pool', () => {
    const arena = new UploadArena(0);
    const key = {};
    feed(arena, key, ['ab', 'cd']);
    const bytes = arena.contentOf(key)!;
    expect(bytes.toString()).to.equal('abcd');
    const sent = transferableCopy(bytes);
    expect(sent.bytes).to.not.equal(bytes);
    expect(bytes.toString(), 'original still readable').to.equal('abcd');
  });

  it('answers undefined for a part it never stored, and an empty buffer for an empty part', () => {
    const arena = new UploadArena(16);
    expect(arena.contentOf({})).to.equal(undefined);
    const empty = {};
    arena.stream(empty);
    expect(arena.contentOf(empty)!.length).to.equal(0);
  });

  it('allocates the declared length only once DEFER_BYTES arrived, so an upload refused early never does', async () => {
    const declared = 8 * DEFER_BYTES;
    const refused = new UploadArena(declared);
    let pieces = 0;
    const s = refused.stream({}, { push: () => { if (++pieces > 3) throw new Error('refused'); } });
    const piece = Buffer.alloc(64 * 1024, 1);
    const failed = new Promise<Error>((resolve) => s.on('error', resolve));
    for (let i = 0; i < 5; i++) s.write(piece);
    expect((await failed).message).to.equal('refused');
    expect(refused.allocatedBytes).to.equal(0);

    // a part that keeps coming gets the whole arena, earlier bytes copied in, in order
    const kept = new UploadArena(declared);
    const key = {};
    const w = kept.stream(key);
    const chunks = Array.from({ length: 2 * DEFER_BYTES / piece.length }, (_, i) => Buffer.alloc(piece.length, i));
    for (const c of chunks) w.write(c);
    expect(kept.allocatedBytes).to.equal(declared);
    expect(kept.contentOf(key)!.equals(Buffer.concat(chunks))).to.equal(true);

    // a small body is placed in the arena when it is read
    const small = new UploadArena(11);
    const k = {};
    feed(small, k, ['hello ', 'world']);
    expect(small.allocatedBytes).to.equal(0);
    expect(small.contentOf(k)!.toString()).to.equal('hello world');
    expect(small.allocatedBytes).to.equal(11);
  });
});
