import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IO_SLICE_BYTES, readFileSlicedSync, readSliced, slices, writevSliced } from './sliced-io.js';

/** A FileHandle that records each call's size; writes accept at most `shortBy` fewer bytes than asked. */
function recordingHandle(file: Buffer, shortBy = 0): { fh: FileHandle; calls: number[] } {
  const calls: number[] = [];
  const fh = {
    writev(bufs: Uint8Array[], position: number) {
      let asked = 0;
      for (const b of bufs) asked += b.byteLength;
      calls.push(asked);
      let take = Math.max(1, asked - shortBy);
      let at = position;
      for (const b of bufs) {
        const n = Math.min(b.byteLength, take);
        file.set(b.subarray(0, n), at);
        at += n;
        take -= n;
        if (take === 0) break;
      }
      return Promise.resolve({ bytesWritten: at - position, buffers: bufs });
    },
    read(buf: Uint8Array, offset: number, length: number, position: number) {
      calls.push(length);
      const n = Math.max(0, Math.min(length, file.length - position));
      buf.set(file.subarray(position, position + n), offset);
      return Promise.resolve({ bytesRead: n, buffer: buf });
    },
  };
  return { fh: fh as unknown as FileHandle, calls };
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('storage: sliced file I/O (no system call moves more than IO_SLICE_BYTES)', () => {
  it('regroups buffers into slices of at most IO_SLICE_BYTES without copying, keeping every byte in order', () => {
    const bufs = [pattern(10, 1), pattern(IO_SLICE_BYTES + 5, 2), pattern(3, 3), pattern(2 * IO_SLICE_BYTES, 4)];
    const groups = [...slices(bufs)];
    for (const g of groups) expect(g.reduce((n, b) => n + b.byteLength, 0)).to.be.at.most(IO_SLICE_BYTES);
    expect(Buffer.concat(groups.flat())).to.deep.equal(Buffer.concat(bufs));
    // views into the caller's buffers, not copies
    expect(groups[0]![1]!.buffer).to.equal(bufs[1]!.buffer);
    expect(groups.length).to.equal(Math.ceil((10 + IO_SLICE_BYTES + 5 + 3 + 2 * IO_SLICE_BYTES) / IO_SLICE_BYTES));
  });

  it('writes a 16 MiB record a slice per call, at the right offset, and retries short writes', async () => {
    const data = [pattern(9, 7), pattern(16 * 1024 * 1024, 8)];
    const file = Buffer.alloc(100 + 9 + 16 * 1024 * 1024);
    const { fh, calls } = recordingHandle(file, 1000);
    const written = await writevSliced(fh, data, 100);
    expect(written).to.equal(9 + 16 * 1024 * 1024);
    expect(Math.max(...calls)).to.be.at.most(IO_SLICE_BYTES);
    expect(file.subarray(100)).to.deep.equal(Buffer.concat(data));
    expect(file.subarray(0, 100).every((b) => b === 0)).to.equal(true);
  });

  it('reads a slice per call and stops at the end of the file', async () => {
    const file = pattern(3 * IO_SLICE_BYTES + 17, 9);
    const { fh, calls } = recordingHandle(file);
    const buf = Buffer.alloc(3 * IO_SLICE_BYTES);
    expect(await readSliced(fh, buf, 17)).to.equal(3 * IO_SLICE_BYTES);
    expect(buf).to.deep.equal(file.subarray(17));
    expect(Math.max(...calls)).to.be.at.most(IO_SLICE_BYTES);
    expect(await readSliced(fh, Buffer.alloc(100), file.length - 40)).to.equal(40);
  });

  it('round-trips through a real file, sync and async', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sliced-io-'));
    try {
      const file = path.join(dir, 'f');
      const data = pattern(2 * IO_SLICE_BYTES + 123, 5);
      const fh = await fsp.open(file, 'w+');
      try {
        expect(await writevSliced(fh, [data.subarray(0, 7), data.subarray(7)], 0)).to.equal(data.length);
        const back = Buffer.alloc(data.length);
        expect(await readSliced(fh, back, 0)).to.equal(data.length);
        expect(back).to.deep.equal(data);
      } finally {
        await fh.close();
      }
      expect(readFileSync(file)).to.deep.equal(data);
      expect(readFileSlicedSync(file)).to.deep.equal(data);
      writeFileSync(file, '');
      expect(readFileSlicedSync(file).length).to.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
