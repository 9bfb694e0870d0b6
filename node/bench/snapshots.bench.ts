// npm run bench:snapshots [-- --objects 2000 --object-kib 256 --new 100 --rounds 5]
//
// Bytes written per snapshot by the object store on a store of `objects` × `object-kib` KiB objects,
// with `new` new puts between snapshots, as the driver takes them (write, commit through the durable log
// with its retention of two, switch, collect packs). Prints, per measured round, the snapshot file's
// size, the wall time from write to collection, the longest event-loop stall meanwhile, the number of
// packs on disk, and what a self-contained file of the same state weighs (what every snapshot wrote
// before snapshots were incremental: the v1 file a follower is sent, rendered by snapshotSource).
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SnapshotMeta } from '../src/raft/types.js';
import { DurableLog } from '../src/storage/durable-log.js';
import type { PutCommand } from '../src/cluster/commands.js';
import { ObjectStore } from '../src/cluster/object-store.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const OBJECTS = arg('objects', 2000);
const OBJECT_BYTES = arg('object-kib', 256) * 1024;
const NEW = arg('new', 100);
const ROUNDS = arg('rounds', 5);
/** The store is built in batches of this many puts, a snapshot after each, so memory stays bounded. */
const BUILD_BATCH = 200;

function put(id: string): PutCommand {
  const bytes = randomBytes(OBJECT_BYTES);
  return { kind: 'put', id, sha256: createHash('sha256').update(bytes).digest(), createdAt: Date.now(), contentType: 'image/png', bytes };
}

/** The longest gap between 1 ms timer ticks while `work` runs: how long the event loop was held. */
async function withStallProbe<T>(work: () => Promise<T>): Promise<{ result: T; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 1);
  try {
    return { result: await work(), stallMs };
  } finally {
    clearInterval(timer);
  }
}

const mib = (n: number) => (n / (1 << 20)).toFixed(1);

const dir = mkdtempSync(path.join(os.tmpdir(), 'stego-snapbench-'));
try {
  const { log } = await DurableLog.open(path.join(dir, 'raft'), { fsyncDeadlineMs: 60_000 });
  const packsDir = path.join(dir, 'raft', 'packs');
  const store = await ObjectStore.open({ packsDir });
  let index = 0;

  const take = async (): Promise<number> => {
    const meta: SnapshotMeta = { index, term: 1, conf: { voters: ['n1'], learners: [] } };
    const pending = log.createSnapshot(meta);
    const size = await store.writeSnapshot(pending.path, meta);
    const info = await pending.commit();
    await store.snapshotCommitted(info.path, meta);
    await store.collectGarbage(() => log.snapshots());
    return size;
  };

  for (let built = 0; built < OBJECTS; ) {
    for (let i = 0; i < BUILD_BATCH && built < OBJECTS; i++, built++) store.apply(put(`base-${built}`));
    index += BUILD_BATCH;
    await take();
  }
  console.log(`store: ${OBJECTS} objects × ${OBJECT_BYTES / 1024} KiB (${mib(OBJECTS * OBJECT_BYTES)} MiB), ${NEW} new puts between snapshots`);
  console.log('round  written MiB  ms      max stall ms  packs  self-contained MiB');
  for (let round = 1; round <= ROUNDS; round++) {
    for (let i = 0; i < NEW; i++) store.apply(put(`r${round}-${i}`));
    index += NEW;
    const started = performance.now();
    const { result: size, stallMs } = await withStallProbe(take);
    const ms = performance.now() - started;
    const source = (await store.snapshotSource())!;
    source.close();
    const packs = readdirSync(packsDir).length;
    console.log(
      `${String(round).padEnd(7)}${mib(size).padEnd(13)}${ms.toFixed(0).padEnd(8)}${stallMs.toFixed(1).padEnd(14)}${String(packs).padEnd(7)}${mib(source.size)}`,
    );
  }
  await store.close();
  await log.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
