import { expect } from 'chai';
import { transferableCopy } from '../workers/protocol.js';
import { UploadArena } from './upload-arena.js';

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
});
