// npm run bench:storage [-- --seconds 2 --recovery-entries 100000]
//
// Measures the two storage candidates side by side in one run, on the same disk:
//   WAL  = node/src/storage DurableLog (the implementation we ship)
//   LMDB = BENCHMARK CANDIDATE ONLY: lmdb@3 with the same save shape (entry + hard state per save, one
//          transaction per event turn), durability checked by awaiting both the write promise and
//          `db.flushed`; no noSync/noMetaSync, so every acknowledged save is fsync'd.
// Prints throughput and p50/p99 latency for 1 KiB entries at 1/16/256 concurrent saves (group commit),
// 1 MiB entries at 1/16, and recovery (open + read everything) of a log of N 1 KiB entries; the ratio
// column is WAL/LMDB (>1 means the WAL is better: more ops/s, or less time).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { open as openLmdb, type RootDatabase } from 'lmdb';
import { DurableLog } from '../src/storage/durable-log.js';
import type { Entry, HardState } from '../src/raft/types.js';

interface Candidate {
  name: string;
  open(dir: string): Promise<void>;
  save(hs: HardState, entries: Entry[]): Promise<void>;
  close(): Promise<void>;
  /** Open an existing store and read every entry back, as a node does at start. Returns the entry count. */
  recover(dir: string): Promise<number>;
}

function walCandidate(): Candidate {
  let log: DurableLog | undefined;
  return {
    name: 'WAL',
    async open(dir) {
      log = (await DurableLog.open(dir, { fsyncDeadlineMs: 30_000 })).log;
    },
    save: (hs, entries) => log!.save(hs, entries),
    async close() {
      await log?.close();
    },
    async recover(dir) {
      const { log: l, state } = await DurableLog.open(dir, { fsyncDeadlineMs: 30_000 });
      await l.close();
      return state.entries.length;
    },
  };
}

/** BENCHMARK CANDIDATE ONLY (not shipped): lmdb with full durability. */
function lmdbCandidate(): Candidate {
  let db: RootDatabase<unknown, number | string> | undefined;
  const openDb = (dir: string) =>
    openLmdb<unknown, number | string>({ path: path.join(dir, 'lmdb'), encoding: 'binary', mapSize: 8 * 1024 ** 3 });
  return {
    name: 'LMDB',
    async open(dir) {
      db = openDb(dir);
    },
    async save(hs, entries) {
      const d = db!;
      const writes: Promise<boolean>[] = entries.map((e) => d.put(e.index, encodeLmdbEntry(e)));
      writes.push(d.put('hs', Buffer.from(JSON.stringify(hs))));
      await Promise.all(writes);
      await d.flushed;
    },
    async close() {
      await db?.close();
    },
    async recover(dir) {
      const d = openDb(dir);
      let n = 0;
      for (const { value } of d.getRange({ start: 0, end: Number.MAX_SAFE_INTEGER })) {
        if ((value as Buffer).length > 0) n++;
      }
      await d.close();
      return n;
    },
  };
}

function encodeLmdbEntry(e: Entry): Buffer {
  const head = Buffer.allocUnsafe(9);
  head.writeDoubleLE(e.term, 0);
  head.writeUInt8(0, 8);
  return Buffer.concat([head, e.data]);
}

interface Result {
  ops: number;
  opsPerSec: number;
  p50: number;
  p99: number;
  mbPerSec: number;
}

interface Sample {
  latencies: number[];
  seconds: number;
}

async function runLoad(c: Candidate, concurrency: number, entryBytes: number, seconds: number): Promise<Sample> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `storage-bench-${c.name}-`));
  try {
    await c.open(dir);
    const payload = randomBytes(entryBytes);
    const latencies: number[] = [];
    let next = 1;
    const start = performance.now();
    const stopAt = start + seconds * 1000;
    const worker = async () => {
      while (performance.now() < stopAt) {
        const index = next++;
        const t0 = performance.now();
        await c.save({ term: 1, vote: 'n1', commit: index - 1 }, [{ index, term: 1, type: 'normal', data: payload }]);
        latencies.push(performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = (performance.now() - start) / 1000;
    await c.close();
    return { latencies, seconds: elapsed };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function summarize(samples: Sample[], entryBytes: number): Result {
  const latencies = samples.flatMap((s) => s.latencies).sort((a, b) => a - b);
  const seconds = samples.reduce((t, s) => t + s.seconds, 0);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return {
    ops: latencies.length,
    opsPerSec: latencies.length / seconds,
    p50: pct(0.5),
    p99: pct(0.99),
    mbPerSec: (latencies.length * entryBytes) / seconds / 1024 ** 2,
  };
}

async function runRecovery(c: Candidate, entries: number): Promise<{ ms: number; entries: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `storage-bench-rec-${c.name}-`));
  try {
    await c.open(dir);
    const payload = randomBytes(1024);
    for (let lo = 1; lo <= entries; lo += 1000) {
      const batch: Entry[] = [];
      for (let i = lo; i < lo + 1000 && i <= entries; i++) batch.push({ index: i, term: 1, type: 'normal', data: payload });
      await c.save({ term: 1, vote: 'n1', commit: lo }, batch);
    }
    await c.close();
    const t0 = performance.now();
    const n = await c.recover(dir);
    return { ms: performance.now() - t0, entries: n };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const ROUNDS = 4;
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

async function main(): Promise<void> {
  const seconds = arg('seconds', 2);
  const recoveryEntries = arg('recovery-entries', 100_000);
  const wal = walCandidate();
  const lmdb = lmdbCandidate();
  console.log(`storage bench ${new Date().toISOString()} node ${process.version} tmpdir ${os.tmpdir()} ${seconds}s per load and candidate, in ${ROUNDS} alternating rounds`);
  console.log('load                     | WAL ops/s  p50 ms  p99 ms   MiB/s | LMDB ops/s  p50 ms  p99 ms   MiB/s | WAL/LMDB ops/s  p50');
  const loads: [string, number, number][] = [
    ['1 KiB x 1 concurrent', 1, 1024],
    ['1 KiB x 16 concurrent', 16, 1024],
    ['1 KiB x 256 concurrent', 256, 1024],
    ['1 MiB x 1 concurrent', 1, 1024 ** 2],
    ['1 MiB x 16 concurrent', 16, 1024 ** 2],
  ];
  const row = (r: Result) => `${fmt(r.opsPerSec).padStart(10)} ${fmt(r.p50, 2).padStart(7)} ${fmt(r.p99, 2).padStart(7)} ${fmt(r.mbPerSec, 1).padStart(7)}`;
  for (const [label, conc, bytes] of loads) {
    // alternate short rounds so background load on a shared machine hits both candidates alike
    const ws: Sample[] = [];
    const ls: Sample[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      ws.push(await runLoad(wal, conc, bytes, seconds / ROUNDS));
      ls.push(await runLoad(lmdb, conc, bytes, seconds / ROUNDS));
    }
    const w = summarize(ws, bytes);
    const l = summarize(ls, bytes);
    console.log(
      `${label.padEnd(24)} |${row(w)} |${row(l)}  | ${fmt(w.opsPerSec / l.opsPerSec, 2).padStart(8)}x ${fmt(l.p50 / w.p50, 2).padStart(6)}x`,
    );
  }
  const wrs: { ms: number; entries: number }[] = [];
  const lrs: { ms: number; entries: number }[] = [];
  for (let round = 0; round < 3; round++) {
    wrs.push(await runRecovery(wal, recoveryEntries));
    lrs.push(await runRecovery(lmdb, recoveryEntries));
  }
  const median = (xs: { ms: number; entries: number }[]) => xs.sort((a, b) => a.ms - b.ms)[1]!;
  const wr = median(wrs);
  const lr = median(lrs);
  console.log(
    `recovery ${fmt(recoveryEntries)} x 1 KiB (median of 3) | WAL ${fmt(wr.ms)} ms (${fmt(wr.entries)} entries) | LMDB ${fmt(lr.ms)} ms (${fmt(lr.entries)} entries) | LMDB/WAL time ${fmt(lr.ms / wr.ms, 2)}x`,
  );
}

await main();
