// Log writes have a deadline: a stalled or failing fsync fails the log instead of freezing the node.
import { expect } from 'chai';
import { DurableLog } from './durable-log.js';
import { StorageClosedError, StorageFailedError, StorageStalledError } from './errors.js';
import { expectRejects, makeEntry, range, tempDir } from './testing/helpers.js';

describe('storage/deadline and failures', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir('faults')));
  afterEach(() => t.cleanup());

  it('a process paused past the deadline while a healthy fsync is in flight does not fail the log (B2)', async () => {
    // Atomics.wait blocks this thread like SIGSTOP would: no timer or I/O callback runs for 400 ms, so the
    // 100 ms deadline timer is overdue when the process runs again, queued before the fsync's completion.
    let pause = false;
    const { log } = await DurableLog.open(t.dir, {
      fsyncDeadlineMs: 100,
      logger: { warn: () => undefined },
      faults: {
        beforeSync: () => {
          if (pause) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
          return undefined;
        },
      },
    });
    await log.save({ term: 1, vote: 'n1', commit: 0 }, range(1, 3));
    pause = true;
    await log.save(undefined, [makeEntry(4)]);
    pause = false;
    expect(log.failed()).to.equal(undefined);
    await log.save(undefined, [makeEntry(5)]);
    await log.close();
    const { log: again, state } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 1000 });
    expect(state.entries.map((e) => e.index)).to.deep.equal([1, 2, 3, 4, 5]);
    await again.close();
  });

  it('a stalled fsync rejects the pending and every later save with StorageStalledError', async () => {
    let stall = false;
    let release: () => void = () => undefined;
    const stalled = new Promise<void>((r) => (release = r));
    const { log } = await DurableLog.open(t.dir, {
      fsyncDeadlineMs: 100,
      logger: { warn: () => undefined },
      faults: { beforeSync: () => (stall ? stalled : undefined) },
    });
    await log.save({ term: 1, vote: 'n1', commit: 0 }, range(1, 3));
    stall = true;
    const pending = log.save(undefined, [makeEntry(4)]);
    const queued = log.save(undefined, [makeEntry(5)]);
    const started = Date.now();
    const err = await expectRejects(pending, StorageStalledError);
    expect(Date.now() - started).to.be.lessThan(2000);
    expect((err as StorageStalledError).code).to.equal('storage_stalled');
    await expectRejects(queued, StorageStalledError);
    await expectRejects(log.save(undefined, [makeEntry(4)]), StorageStalledError);
    await expectRejects(log.compact(1), StorageStalledError);
    expect(() => log.createSnapshot({ index: 1, term: 1, conf: { voters: [], learners: [] } })).to.throw(StorageStalledError);
    expect(log.failed()).to.equal(err);
    release();
    await log.close();
    // what was acknowledged before the stall is intact
    const { log: again, state } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 1000 });
    expect(state.entries.map((e) => e.index).slice(0, 3)).to.deep.equal([1, 2, 3]);
    await again.close();
  });

  it('a failing fsync (EIO) rejects with StorageFailedError carrying the cause, and the log stays failed', async () => {
    let broken = false;
    const { log } = await DurableLog.open(t.dir, {
      fsyncDeadlineMs: 1000,
      logger: { warn: () => undefined },
      faults: {
        beforeSync: () => {
          if (broken) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
        },
      },
    });
    await log.save(undefined, range(1, 2));
    broken = true;
    const err = await expectRejects(log.save({ term: 2, vote: 'n2', commit: 0 }, []), StorageFailedError);
    expect((err.cause as NodeJS.ErrnoException).code).to.equal('EIO');
    broken = false; // even if the disk "recovers", a failed fsync means the page cache cannot be trusted
    await expectRejects(log.save(undefined, [makeEntry(3)]), StorageFailedError);
    await log.close();
    await expectRejects(log.save(undefined, []), StorageFailedError);
  });

  it('a failing write is a failure too', async () => {
    const { log } = await DurableLog.open(t.dir, {
      fsyncDeadlineMs: 1000,
      logger: { warn: () => undefined },
      faults: { beforeWrite: () => Promise.reject(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' })) },
    });
    await expectRejects(log.save(undefined, [makeEntry(1)]), StorageFailedError);
    await log.close();
  });

  it('rejects with StorageClosedError after close', async () => {
    const { log } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 1000 });
    await log.close();
    await expectRejects(log.save(undefined, [makeEntry(1)]), StorageClosedError);
  });
});
