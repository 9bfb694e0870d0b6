import { expect } from 'chai';
import { existsSync, promises as fsp, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DurableLog } from './durable-log.js';
import { StorageUsageError } from './errors.js';
import { expectRejects, makeEntry, range, tempDir } from './testing/helpers.js';
import type { Entry, SnapshotMeta } from '../raft/types.js';

const conf = { voters: ['n1', 'n2', 'n3'], learners: [] };
const snapMeta = (index: number, term: number): SnapshotMeta => ({ index, term, conf });

function expectEntries(actual: Entry[], expected: Entry[]): void {
  expect(actual.map((e) => [e.index, e.term, e.type])).to.deep.equal(expected.map((e) => [e.index, e.term, e.type]));
  actual.forEach((e, i) => expect(Buffer.from(e.data).equals(Buffer.from(expected[i]!.data)), `data of ${e.index}`).to.equal(true));
}

async function writeSnapshot(log: DurableLog, meta: SnapshotMeta, bytes = `state@${meta.index}`) {
  const pending = log.createSnapshot(meta);
  writeFileSync(pending.path, bytes);
  return pending.commit();
}

describe('storage/DurableLog', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir('log')));
  afterEach(() => t.cleanup());

  const reopen = async (log: DurableLog, opts = {}) => {
    await log.close();
    return DurableLog.open(t.dir, { fsyncDeadlineMs: 5000, ...opts });
  };

  it('opens an empty directory with a zero hard state and no entries', async () => {
    const { log, state } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 1000 });
    expect(state.hardState).to.deep.equal({ term: 0, vote: null, commit: 0 });
    expect(state.snapshot.index).to.equal(0);
    expect(state.entries).to.deep.equal([]);
    expect([log.firstIndex(), log.lastIndex()]).to.deep.equal([1, 0]);
    await log.close();
  });

  it('persists entries and the hard state (vote) across reopen', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000 });
    await log.save({ term: 3, vote: 'n2', commit: 0 }, []);
    await log.save({ term: 3, vote: 'n2', commit: 5 }, range(1, 10, 3));
    const { log: again, state } = await reopen(log);
    expect(state.hardState).to.deep.equal({ term: 3, vote: 'n2', commit: 5 });
    expectEntries(state.entries, range(1, 10, 3));
    await again.close();
  });

  it('replayed entries do not keep the preallocated tail of their segment in memory', async () => {
    const segmentBytes = 8 * 1024 * 1024;
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000, segmentBytes });
    await log.save({ term: 1, vote: 'n1', commit: 0 }, range(1, 40, 1));
    const { log: again, state } = await reopen(log, { segmentBytes });
    expectEntries(state.entries, range(1, 40, 1));
    for (const e of state.entries) expect(e.data.buffer.byteLength, `memory behind entry ${e.index}`).to.be.below(64 * 1024);
    await again.close();
  });

  it('overwrites a conflicting suffix, also across segments', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000, segmentBytes: 4096 });
    await log.save(undefined, range(1, 30, 1));
    await log.save({ term: 2, vote: null, commit: 3 }, range(12, 20, 2));
    expect(log.lastIndex()).to.equal(20);
    await log.save(undefined, range(21, 25, 2));
    const { log: again, state } = await reopen(log, { segmentBytes: 4096 });
    expect(readdirSync(path.join(t.dir, 'wal')).filter((f) => f.endsWith('.wal')).length).to.be.greaterThan(2);
    expectEntries(state.entries, [...range(1, 11, 1), ...range(12, 25, 2)]);
    expect(again.termAt(11)).to.equal(1);
    expect(again.termAt(12)).to.equal(2);
    await again.close();
  });

  it('applies concurrent saves in call order and group-commits them into few fsyncs', async () => {
    let syncs = 0;
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000, faults: { beforeSync: () => void syncs++ } });
    const saves: Promise<void>[] = [];
    for (let i = 1; i <= 256; i++) saves.push(log.save({ term: 1, vote: 'n1', commit: i - 1 }, [makeEntry(i)]));
    await Promise.all(saves);
    expect(syncs).to.be.lessThan(20);
    expect(log.stats()).to.include({ saves: 256, fsyncs: syncs, lastIndex: 256, segments: 1 });
    const { log: again, state } = await reopen(log);
    expectEntries(state.entries, range(1, 256));
    expect(state.hardState.commit).to.equal(255);
    await again.close();
  });

  it('sync: false skips the fdatasync only when every save in the batch opts out', async () => {
    let syncs = 0;
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000, segmentBytes: 4096, faults: { beforeSync: () => void syncs++ } });
    await log.save({ term: 1, vote: 'n1', commit: 0 }, range(1, 3));
    const before = syncs;
    await log.save({ term: 1, vote: 'n1', commit: 2 }, [], { sync: false });
    expect(syncs).to.equal(before);
    await Promise.all([log.save({ term: 1, vote: 'n1', commit: 3 }, [], { sync: false }), log.save(undefined, [makeEntry(4)])]);
    expect(syncs).to.equal(before + 1);
    await log.save({ term: 2, vote: 'n2', commit: 3 }, [], { sync: false }); // a vote is synced regardless
    expect(syncs).to.equal(before + 2);
    await log.save(undefined, [makeEntry(5)], { sync: false }); // so are entries
    expect(syncs).to.equal(before + 3);
    await log.save({ term: 2, vote: 'n2', commit: 4 }, [], { sync: false });
    for (let i = 6; i <= 12; i++) await log.save(undefined, [makeEntry(i)]); // rolls segments: the unsynced bytes get flushed first
    const { log: again, state } = await reopen(log, { segmentBytes: 4096 });
    expect(state.hardState).to.deep.equal({ term: 2, vote: 'n2', commit: 4 });
    expectEntries(state.entries, range(1, 12));
    await again.close();
  });

  it('refuses a hard state that takes the term or the vote back, and keeps the newer one across reopen', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000 });
    await log.save({ term: 3, vote: 'n1', commit: 2 }, range(1, 4, 3));
    // queued together, as a Ready's save and a stale whole hard state from outside the Ready loop were
    const newer = log.save({ term: 4, vote: 'n2', commit: 2 }, []);
    const stale = log.save({ term: 3, vote: 'n1', commit: 4 }, []);
    const otherVote = log.save({ term: 4, vote: 'n3', commit: 4 }, []);
    await Promise.all([newer, expectRejects(stale, StorageUsageError), expectRejects(otherVote, StorageUsageError)]);
    expect(log.failed()).to.equal(undefined);
    const { log: again, state } = await reopen(log);
    expect(state.hardState).to.deep.equal({ term: 4, vote: 'n2', commit: 2 });
    await again.close();
  });

  it('saveCommit raises only the commit index, on the term and vote of the saves queued before it', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000 });
    await log.save({ term: 3, vote: 'n1', commit: 1 }, range(1, 6, 3));
    const ready = log.save({ term: 4, vote: 'n2', commit: 1 }, []);
    const commit = log.saveCommit(5);
    const lower = log.saveCommit(2);
    await Promise.all([ready, commit, lower]);
    const { log: again, state } = await reopen(log);
    expect(state.hardState).to.deep.equal({ term: 4, vote: 'n2', commit: 5 });
    await again.close();
  });

  it('rejects a save that would leave a gap, without failing the log', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000 });
    await log.save(undefined, range(1, 3));
    const bad = log.save(undefined, [makeEntry(5)]);
    const notContiguous = log.save(undefined, [makeEntry(4), makeEntry(6)]);
    const good = log.save(undefined, [makeEntry(4)]);
    await expectRejects(bad, StorageUsageError);
    await expectRejects(notContiguous, StorageUsageError);
    await good;
    expect(log.failed()).to.equal(undefined);
    expect(log.lastIndex()).to.equal(4);
    await log.close();
  });

  it('commits snapshots atomically, keeps the newest two, and compacts behind them', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000, segmentBytes: 2048 });
    for (let i = 1; i <= 60; i += 5) await log.save({ term: 1, vote: 'n1', commit: 60 }, range(i, i + 4));
    const s1 = await writeSnapshot(log, snapMeta(20, 1));
    await writeSnapshot(log, snapMeta(40, 1));
    await writeSnapshot(log, snapMeta(50, 1));
    expect(log.snapshots().map((s) => s.meta.index)).to.deep.equal([40, 50]);
    expect(existsSync(s1.path)).to.equal(false);
    await log.compact(45);
    expect(log.firstIndex()).to.equal(46);
    await expectRejects(log.compact(55), StorageUsageError);
    const segs = readdirSync(path.join(t.dir, 'wal')).filter((f) => f.endsWith('.wal'));
    expect(segs[0]).to.not.equal('0000000000000001.wal');
    const { log: again, state } = await reopen(log, { segmentBytes: 2048 });
    expect(state.snapshot).to.deep.equal(snapMeta(50, 1));
    expect(state.hardState).to.deep.equal({ term: 1, vote: 'n1', commit: 60 });
    expectEntries(state.entries, range(51, 60));
    expect(again.firstIndex()).to.equal(46);
    expect(again.latestSnapshot()!.size).to.equal('state@50'.length);
    await again.save(undefined, range(61, 62));
    await again.close();
  });

  it('compacts without a new segment, and keeps the hard state when the segment holding it is dropped', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000, segmentBytes: 2048 });
    // the only hard-state record goes into the first segment; entries alone fill the next ones
    await log.save({ term: 4, vote: 'n3', commit: 2 }, range(1, 2, 4));
    for (let i = 3; i <= 60; i += 5) await log.save(undefined, range(i, i + 4, 4));
    const walFiles = () => readdirSync(path.join(t.dir, 'wal')).filter((f) => f.endsWith('.wal')).sort();
    const before = walFiles();
    expect(before.length).to.be.greaterThan(2);
    await writeSnapshot(log, snapMeta(55, 4));
    await log.compact(55);
    const after = walFiles();
    // no segment was created for the compaction, and the first segment (the hard state's) is gone
    expect(after[after.length - 1]).to.equal(before[before.length - 1]);
    expect(after).to.not.include(before[0]);
    expect(log.firstIndex()).to.equal(56);
    const { log: again, state } = await reopen(log, { segmentBytes: 2048 });
    expect(state.hardState).to.deep.equal({ term: 4, vote: 'n3', commit: 2 });
    expect(again.firstIndex()).to.equal(56);
    expectEntries(state.entries, range(56, 62, 4));
    await again.close();
  });

  it('a suffix truncated before a compaction stays truncated after replay', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000, segmentBytes: 2048 });
    for (let i = 1; i <= 30; i += 5) await log.save(undefined, range(i, i + 4, 1));
    await log.save({ term: 2, vote: 'n2', commit: 18 }, range(15, 18, 2)); // overwrite: the log now ends at 18
    await writeSnapshot(log, snapMeta(18, 2));
    await log.compact(18); // the segments holding the stale 21..30 (term 1) are kept: maxIndex > 18
    const { log: again, state } = await reopen(log, { segmentBytes: 2048 });
    expect(again.lastIndex()).to.equal(18);
    expect(state.entries).to.deep.equal([]);
    await again.save(undefined, range(19, 19, 2));
    await again.close();
  });

  it('resets the log when a snapshot it does not contain is installed (follower catch-up)', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000 });
    await log.save({ term: 2, vote: 'n1', commit: 5 }, range(1, 8, 2));
    await writeSnapshot(log, snapMeta(100, 4));
    expect([log.firstIndex(), log.lastIndex()]).to.deep.equal([101, 100]);
    await log.save({ term: 4, vote: null, commit: 101 }, range(101, 103, 4));
    const { log: again, state } = await reopen(log);
    expect(state.snapshot.index).to.equal(100);
    expectEntries(state.entries, range(101, 103, 4));
    await again.close();
  });

  it('drops a suffix that conflicts with an installed snapshot at the same index', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000 });
    await log.save(undefined, range(1, 20, 2));
    await writeSnapshot(log, snapMeta(10, 3));
    expect(log.lastIndex()).to.equal(10);
    const { log: again, state } = await reopen(log);
    expect(state.entries).to.deep.equal([]);
    expect(again.termAt(10)).to.equal(3);
    await again.close();
  });

  it('finishes a snapshot reset interrupted by a crash (snapshot published, log untouched)', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000 });
    await log.save(undefined, range(1, 5, 1));
    await log.close();
    // publish a snapshot dir by hand, as if the process died right after the rename
    const { log: l2 } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000 });
    const pending = l2.createSnapshot(snapMeta(30, 2));
    writeFileSync(pending.path, 'x');
    await l2.close();
    await pending.commit().catch(() => undefined); // log closed: the snapshot is published, the reset is not
    const { log: l3, state } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000 });
    expect(state.snapshot.index).to.equal(30);
    expect([l3.firstIndex(), l3.lastIndex()]).to.deep.equal([31, 30]);
    await l3.save(undefined, range(31, 32, 2));
    await l3.close();
  });

  it('a crash while pruning an old snapshot never leaves a published snapshot without its metadata', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000, segmentBytes: 2048 });
    for (let i = 1; i <= 60; i += 5) await log.save({ term: 1, vote: 'n1', commit: 60 }, range(i, i + 4));
    await writeSnapshot(log, snapMeta(20, 1));
    await writeSnapshot(log, snapMeta(40, 1));
    // The process "dies" inside the recursive delete of the pruned snapshot, after meta.json is gone.
    const realRm = fsp.rm;
    fsp.rm = async (target) => {
      rmSync(path.join(String(target), 'meta.json'), { force: true });
      throw new Error('killed mid-delete');
    };
    try {
      await writeSnapshot(log, snapMeta(50, 1)).catch(() => undefined);
    } finally {
      fsp.rm = realRm;
    }
    await log.close().catch(() => undefined);
    const { log: again, state } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000, segmentBytes: 2048, logger: { warn: () => undefined } });
    expect(state.snapshot).to.deep.equal(snapMeta(50, 1));
    expect(again.snapshots().map((x) => x.meta.index)).to.deep.equal([40, 50]);
    expect(readdirSync(path.join(t.dir, 'snap')).filter((n) => n.startsWith('.'))).to.deep.equal([]);
    await again.close();
  });

  it('aborting a pending snapshot leaves nothing behind', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000 });
    const pending = log.createSnapshot(snapMeta(1, 1));
    writeFileSync(pending.path, 'partial');
    await pending.abort();
    expect(readdirSync(path.join(t.dir, 'snap'))).to.deep.equal([]);
    expect(log.snapshots()).to.deep.equal([]);
    await log.close();
  });
});
