// Objects for the store's tests on real files: deterministic bytes and the put commands that carry them.
import { createHash } from 'node:crypto';
import type { PutCommand } from './commands.js';

/** Deterministic bytes, different for every id. */
export function bytesFor(id: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(id).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** A put of `size` bytes of bytesFor(id), as the log carries it. */
export function put(id: string, size: number): PutCommand {
  const bytes = bytesFor(id, size);
  return { kind: 'put', id, sha256: createHash('sha256').update(bytes).digest(), createdAt: 1_700_000_000_000, contentType: 'image/png', bytes };
}
