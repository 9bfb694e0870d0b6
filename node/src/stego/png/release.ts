// Returning a large, finished buffer's memory at once instead of at the next GC. V8 collects
// ArrayBuffers only when its external-memory heuristics say so (tens of MB later), and an embed makes
// several image-sized or megabyte-sized temporaries in a row (joined IDAT data, zlib outputs): left to
// the GC they were all resident together at peak. Detaching an ArrayBuffer (transfer to length 0)
// frees its backing store immediately.


/**
 * Frees `buf`'s memory now. Only for buffers the caller alone holds, with nothing else viewing the same
 * ArrayBuffer (e.g. zlib's output once its stream has ended). Small buffers are left to the GC.
 */
export function releaseBuffer(buf: Uint8Array): void {
  // ArrayBuffer.prototype.transfer (ES2024) is in Node >= 22 but not yet in TypeScript's ES2023 lib.
  const backing = buf.buffer as ArrayBuffer & { transfer?(length: number): ArrayBuffer };
  // Up to Buffer.poolSize a Buffer may be a view into Node's shared pool, which must never be detached.
  if (backing.byteLength <= Math.max(Buffer.poolSize, 64 * 1024) || typeof backing.transfer !== 'function') return;
  try {
    backing.transfer(0);
  } catch {
    // Node marks some of its own allocations untransferable: those stay with the GC.
  }
}
