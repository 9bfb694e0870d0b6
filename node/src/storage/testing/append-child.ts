// Child process for the kill -9 test: appends entries with `concurrency` saves in flight and prints
// each acknowledged (fsync'd) save as "<first> <last>" on stdout; snapshots + compacts now and then.
// Runs until killed.
// usage: node append-child.js <dir> <term> <concurrency>
import { writeFileSync } from 'node:fs';
import { DurableLog } from '../durable-log.js';
import { makeEntry } from './helpers.js';

const [dir, termArg, concArg] = process.argv.slice(2);
const term = Number(termArg);
const concurrency = Number(concArg ?? 8);
const SNAPSHOT_EVERY = 250;

const { log } = await DurableLog.open(dir!, { fsyncDeadlineMs: 10_000, segmentBytes: 256 * 1024, logger: { warn: () => undefined } });
let next = log.lastIndex() + 1;
let snapshotting = false;

function startOne(): void {
  const index = next++;
  log.save({ term, vote: 'n1', commit: index - 1 }, [makeEntry(index, term)]).then(
    () => {
      // stdout to a pipe is synchronous on Linux: once written, the parent will see it even after SIGKILL
      process.stdout.write(`${index} ${index}\n`);
      if (index % SNAPSHOT_EVERY === 0) void snapshot(index - 50);
      startOne();
    },
    (err: unknown) => {
      process.stderr.write(`save ${index} failed: ${String(err)}\n`);
      process.exit(2);
    },
  );
}

async function snapshot(at: number): Promise<void> {
  if (snapshotting || at < log.firstIndex()) return;
  snapshotting = true;
  const pending = log.createSnapshot({ index: at, term: log.termAt(at)!, conf: { voters: ['n1'], learners: [] } });
  writeFileSync(pending.path, `snapshot@${at}`);
  await pending.commit();
  await log.compact(at);
  snapshotting = false;
}

// A new term first overwrites the last few entries, as a follower does when a new leader's log conflicts
// with its uncommitted tail: a kill may land in the middle of that truncation too.
const overwriteFrom = log.lastIndex() - 2;
if (overwriteFrom > log.firstIndex() && overwriteFrom > (log.latestSnapshot()?.meta.index ?? 0)) {
  next = overwriteFrom + 3;
  const entries = [0, 1, 2].map((k) => makeEntry(overwriteFrom + k, term));
  await log.save({ term, vote: 'n1', commit: overwriteFrom - 1 }, entries);
  process.stdout.write(`${overwriteFrom} ${overwriteFrom + 2}\n`);
}
for (let i = 0; i < concurrency; i++) startOne();
