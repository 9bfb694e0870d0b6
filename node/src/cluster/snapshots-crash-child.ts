// Child process for the crash-during-snapshot test (snapshots-crash.test.ts): the driver's write path
// without Raft. It appends commands with several saves in flight, applies each to the object store once
// its save is durable; for a put of a kept object (~4 KiB) it prints "ack <id> <sha256 hex>". A third of
// the entries put scratch objects and another third delete them SCRATCH_LIFE entries later, after
// snapshots put them in packs: packs lose half their bytes and are compacted and collected. Every
// SNAPSHOT_EVERY entries it takes an (incremental) snapshot in the background as Snapshots.take does
// (write, commit, move objects onto the new pack, compact, collect packs), printing "snap <index>" when it
// starts, "phase <written|published|switched>" as it goes and "snapped <index>" when it is done, while
// appends go on. It first recovers as a node does:
// the newest snapshot's manifest and its packs, then the log after it, then collects packs. Runs until
// killed.
// usage: node snapshots-crash-child.js <dir> <term>
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { SnapshotMeta } from '../raft/types.js';
import { DurableLog } from '../storage/durable-log.js';
import { decodeCommand, encodeCommand, type Command, type PutCommand } from './commands.js';
import { ObjectStore } from './object-store.js';

const [dir, termArg] = process.argv.slice(2);
const term = Number(termArg);
const SNAPSHOT_EVERY = 300;
const SCRATCH_LIFE = 3 * 130;
const CONCURRENCY = 8;

const fail = (what: string) => (err: unknown) => {
  process.stderr.write(`${what} failed: ${String(err)}\n`);
  process.exit(2);
};

const { log, state } = await DurableLog.open(path.join(dir!, 'raft'), { fsyncDeadlineMs: 10_000, segmentBytes: 1 << 20, logger: { warn: () => undefined } });
const store = await ObjectStore.open({ packsDir: path.join(dir!, 'raft', 'packs') });
const latest = log.latestSnapshot();
if (latest) await store.loadFromSnapshot(latest.path);
for (const e of state.entries) store.apply(decodeCommand(e.data));
await store.collectGarbage(() => log.snapshots());
let next = log.lastIndex() + 1;
let taking = false;

/** Entry `index`: a kept object, a scratch object, or the delete of the scratch object SCRATCH_LIFE earlier. */
function commandFor(index: number): Command {
  if (index % 3 === 1) return objectFor(index, `t${term}-s${index}`);
  if (index % 3 === 2) return { kind: 'delete', id: `t${term}-s${index - 1 - SCRATCH_LIFE}` };
  return objectFor(index, `t${term}-i${index}`);
}

function objectFor(index: number, id: string): PutCommand {
  const bytes = Buffer.alloc(2048 + (index % 4096));
  let block = createHash('sha256').update(id).digest();
  for (let off = 0; off < bytes.length; off += block.length) {
    block.copy(bytes, off);
    block = createHash('sha256').update(block).digest();
  }
  return { kind: 'put', id, sha256: createHash('sha256').update(bytes).digest(), createdAt: index, contentType: 'image/png', bytes };
}

function startOne(): void {
  const index = next++;
  const cmd = commandFor(index);
  log.save({ term, vote: 'n1', commit: index - 1 }, [{ index, term, type: 'normal', data: encodeCommand(cmd) }]).then(() => {
    // saves resolve in call order, so objects are applied in log order
    store.apply(cmd);
    // stdout to a pipe is synchronous on Linux: once written, the parent sees it even after SIGKILL
    if (cmd.kind === 'put' && cmd.id.includes('-i')) process.stdout.write(`ack ${cmd.id} ${Buffer.from(cmd.sha256).toString('hex')}\n`);
    if (index % SNAPSHOT_EVERY === 0) snapshot(index);
    startOne();
  }, fail(`save ${index}`));
}

/** Snapshots the state as of `index`, applied just now (the capture in writeSnapshot is synchronous). */
function snapshot(index: number): void {
  if (taking) return;
  taking = true;
  const meta: SnapshotMeta = { index, term, conf: { voters: ['n1'], learners: [] } };
  process.stdout.write(`snap ${index}\n`);
  const pending = log.createSnapshot(meta);
  const run = async () => {
    await store.writeSnapshot(pending.path, meta);
    process.stdout.write(`phase written\n`);
    const info = await pending.commit();
    process.stdout.write(`phase published\n`);
    await store.snapshotCommitted(info.path, meta);
    process.stdout.write(`phase switched\n`);
    await log.compact(index - 50);
    await store.collectGarbage(() => log.snapshots());
    process.stdout.write(`snapped ${index}\n`);
    taking = false;
  };
  run().catch(fail(`snapshot ${index}`));
}

for (let i = 0; i < CONCURRENCY; i++) startOne();
