// Test helpers shared by the storage tests and the kill -9 child process.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import type { Entry } from '../../raft/types.js';

export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `stego-storage-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic content per (index, term), with sizes varying from 0 to ~3 KiB so records straddle pages. */
export function entryData(index: number, term: number): Uint8Array {
  // every 97th entry is large, so one write spans many pages and a kill can land inside it
  const size = index % 97 === 0 ? 300_000 + index : (index * 7919 + term * 131) % 3000;
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(`${index}/${term}`).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export function makeEntry(index: number, term = 1): Entry {
  return { index, term, type: index % 17 === 0 ? 'noop' : 'normal', data: entryData(index, term) };
}

export function range(lo: number, hi: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) out.push(makeEntry(i, term));
  return out;
}

export async function expectRejects(p: Promise<unknown>, type: new (...args: never[]) => Error): Promise<Error> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(type);
    return err as Error;
  }
  throw new Error(`expected rejection with ${type.name}`);
}
