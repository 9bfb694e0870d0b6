// File reads and writes in slices of at most IO_SLICE_BYTES per system call.
//
// Why: the kernels this runs on are often built with `preempt=none` (this machine's is), where a thread in
// a system call keeps its CPU until the call returns. One 16 MiB write() into the page cache ran 40-85 ms
// on a libuv thread at nice 0, and the nice -20 consensus thread of the same node waited that long for a
// CPU (`perf sched timehist`: scheduling delays of 40-85 ms during bench:isolation case (b)), which a
// loop-delay p99 of 45 ms and heartbeat round trips of 100+ ms showed. Between two system calls the
// thread goes back to user mode, where the scheduler can preempt it; a 1 MiB copy takes ~3 ms here.
// Every large file read or write of the node goes through these two functions.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** The most one read or write system call moves. */
export const IO_SLICE_BYTES = 1 << 20;

/**
 * Writes `bufs` back to back at `position`, at most IO_SLICE_BYTES per system call, retrying short
 * writes. Returns the number of bytes written (all of them; a failed call throws).
 */
export async function writevSliced(fh: FileHandle, bufs: readonly Uint8Array[], position: number): Promise<number> {
  let written = 0;
  for (const slice of slices(bufs)) {
    let group = slice;
    let left = byteLength(group);
    while (left > 0) {
      const { bytesWritten } = await fh.writev(group, position + written);
      written += bytesWritten;
      left -= bytesWritten;
      if (left > 0) group = dropWritten(group, bytesWritten);
    }
  }
  return written;
}

/**
 * Fills `buf` from `position`, at most IO_SLICE_BYTES per system call. Returns how many bytes it read:
 * fewer than `buf.length` only at the end of the file.
 */
export async function readSliced(fh: FileHandle, buf: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < buf.byteLength) {
    const want = Math.min(IO_SLICE_BYTES, buf.byteLength - done);
    const { bytesRead } = await fh.read(buf, done, want, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** The whole file, read synchronously at most IO_SLICE_BYTES per system call (log replay at start-up). */
export function readFileSlicedSync(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(fstatSync(fd).size);
    let done = 0;
    while (done < buf.length) {
      const n = readSync(fd, buf, done, Math.min(IO_SLICE_BYTES, buf.length - done), done);
      if (n === 0) break;
      done += n;
    }
    return done === buf.length ? buf : buf.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

/** `bufs` regrouped into runs of at most IO_SLICE_BYTES, as views (nothing is copied). */
export function* slices(bufs: readonly Uint8Array[]): Generator<Uint8Array[]> {
  let group: Uint8Array[] = [];
  let size = 0;
  for (const b of bufs) {
    for (let at = 0; at < b.byteLength; ) {
      const take = Math.min(b.byteLength - at, IO_SLICE_BYTES - size);
      group.push(at === 0 && take === b.byteLength ? b : b.subarray(at, at + take));
      size += take;
      at += take;
      if (size === IO_SLICE_BYTES) {
        yield group;
        group = [];
        size = 0;
      }
    }
  }
  if (size > 0) yield group;
}

function byteLength(bufs: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of bufs) n += b.byteLength;
  return n;
}

/** What is left of `group` after a short write of `n` bytes. */
function dropWritten(group: Uint8Array[], n: number): Uint8Array[] {
  let i = 0;
  while (n >= group[i]!.byteLength) n -= group[i++]!.byteLength;
  return [group[i]!.subarray(n), ...group.slice(i + 1)];
}
