// Crash-safety of open(): a torn final record is cut off; any other damage refuses to start.
import { expect } from 'chai';
import fc from 'fast-check';
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DurableLog } from './durable-log.js';
import { StorageCorruptError } from './errors.js';
import { encodeEntry, encodeHardState, parseRecord, RecordType } from './record.js';
import { makeEntry, range, tempDir } from './testing/helpers.js';
import type { Entry } from '../raft/types.js';

interface RecordSpan {
  start: number;
  end: number;
  entryIndex?: number;
}

/** Record boundaries of a segment, read with the real parser. */
function spans(file: string): RecordSpan[] {
  const buf = readFileSync(file);
  const out: RecordSpan[] = [];
  for (let off = 0; off < buf.length; ) {
    const r = parseRecord(buf, off);
    if (!r.ok && buf.subarray(off).every((b) => b === 0)) break; // preallocated tail
    if (!r.ok) throw new Error(`fixture unreadable at ${off}`);
    out.push({ start: off, end: r.next, ...(r.record.type === RecordType.Entry ? { entryIndex: r.record.entry.index } : {}) });
    off = r.next;
  }
  return out;
}

const quiet = { warn: () => undefined };

async function openQuiet(dir: string) {
  return DurableLog.open(dir, { fsyncDeadlineMs: 5000, segmentBytes: 8192, logger: quiet });
}

async function expectCorrupt(dir: string, fileHint: RegExp): Promise<StorageCorruptError> {
  try {
    const { log } = await openQuiet(dir);
    await log.close();
  } catch (err) {
    expect(err).to.be.instanceOf(StorageCorruptError);
    expect((err as Error).message).to.match(fileHint);
    return err as StorageCorruptError;
  }
  throw new Error('expected StorageCorruptError');
}

describe('storage/recovery', function () {
  this.timeout(120_000);
  let fixture: ReturnType<typeof tempDir>;
  let work: ReturnType<typeof tempDir>;
  let segments: string[];
  const all: Entry[] = range(1, 40);

  before(async () => {
    fixture = tempDir('fixture');
    const { log } = await openQuiet(fixture.dir);
    for (let i = 1; i <= 40; i += 4) await log.save({ term: 1, vote: 'n1', commit: i }, range(i, i + 3));
    await log.close();
    segments = readdirSync(path.join(fixture.dir, 'wal')).filter((f) => f.endsWith('.wal')).sort();
    expect(segments.length).to.be.greaterThan(2);
  });
  after(() => fixture.cleanup());
  beforeEach(() => (work = tempDir('work')));
  afterEach(() => work.cleanup());

  function copyFixture(): string {
    rmSync(work.dir, { recursive: true, force: true });
    for (const sub of ['wal', 'snap']) {
      mkdirSync(path.join(work.dir, sub), { recursive: true });
      for (const f of readdirSync(path.join(fixture.dir, sub))) copyFileSync(path.join(fixture.dir, sub, f), path.join(work.dir, sub, f));
    }
    return path.join(work.dir, 'wal');
  }

  const lastSegment = () => segments[segments.length - 1]!;

  it('cuts a torn final record at many offsets of the last segment and keeps everything before it', async () => {
    const walDir = copyFixture();
    const tail = spans(path.join(walDir, lastSegment()));
    const size = tail[tail.length - 1]!.end;
    // every record boundary and its neighbours (header cut, payload cut), plus a stride through payloads
    const cuts = new Set<number>();
    for (const s of tail) for (const d of [0, 1, 4, 8, 9, 10, 26, 27]) cuts.add(s.start + d);
    for (let c = 0; c < size; c += 61) cuts.add(c);
    for (const cut of [...cuts].filter((c) => c < size).sort((a, b) => a - b)) {
      copyFixture();
      const file = path.join(walDir, lastSegment());
      truncateSync(file, cut);
      const { log, state } = await openQuiet(work.dir);
      const kept = tail.filter((s) => s.end <= cut && s.entryIndex !== undefined).map((s) => s.entryIndex!);
      const lastKept = kept.length > 0 ? kept[kept.length - 1]! : (tail[0]!.entryIndex ?? 1) - 1;
      expect(state.entries.map((e) => e.index), `cut at ${cut}`).to.deep.equal(all.slice(0, lastKept).map((e) => e.index));
      expect(readFileSync(file).length, `file truncated to a record boundary (cut ${cut})`).to.equal(
        Math.max(0, ...tail.filter((s) => s.end <= cut).map((s) => s.end)),
      );
      await log.save(undefined, [makeEntry(lastKept + 1)]); // the log is writable right after recovery
      await log.close();
    }
  });

  it('treats garbage after the last good record (zeros, random bytes) as a torn tail', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 4096 }), fc.boolean(), async (junk, zeros) => {
        const walDir = copyFixture();
        appendFileSync(path.join(walDir, lastSegment()), zeros ? Buffer.alloc(junk.length) : junk);
        const { log, state } = await openQuiet(work.dir);
        expect(state.entries.length).to.equal(40);
        await log.close();
      }),
      { numRuns: 60 },
    );
  });

  it('refuses to start when any byte of a non-final record is damaged', async () => {
    // every segment: a flipped byte anywhere except inside the very last record is real corruption
    const candidates: { seg: string; offset: number }[] = [];
    segments.forEach((seg, i) => {
      const ss = spans(path.join(fixture.dir, 'wal', seg));
      const limit = i === segments.length - 1 ? ss[ss.length - 1]!.start : ss[ss.length - 1]!.end;
      for (let off = 0; off < limit; off++) candidates.push({ seg, offset: off });
    });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...candidates), fc.integer({ min: 1, max: 255 }), async ({ seg, offset }, xor) => {
        const walDir = copyFixture();
        const file = path.join(walDir, seg);
        const buf = readFileSync(file);
        buf[offset] = buf[offset]! ^ xor;
        writeFileSync(file, buf);
        const err = await expectCorrupt(work.dir, new RegExp(seg));
        expect(err.file).to.equal(file);
        expect(err.offset).to.be.a('number');
        expect(err.offset!).to.be.at.most(offset);
      }),
      { numRuns: 300 },
    );
  });

  it('damage inside the final record of the last segment is a torn tail (never acknowledged)', async () => {
    const walDir = copyFixture();
    const tail = spans(path.join(walDir, lastSegment()));
    const last = tail[tail.length - 1]!;
    for (let off = last.start; off < last.end; off += 7) {
      copyFixture();
      const file = path.join(walDir, lastSegment());
      const buf = readFileSync(file);
      buf[off] = buf[off]! ^ 0x5a;
      writeFileSync(file, buf);
      const { log } = await openQuiet(work.dir);
      expect(readFileSync(file).length).to.equal(last.start);
      await log.close();
    }
  });

  it('a final record whose pages never reached the preallocated file (zeros) is a torn tail', async () => {
    const walDir = copyFixture();
    const file = path.join(walDir, lastSegment());
    const tail = spans(file);
    const last = tail[tail.length - 1]!;
    for (const from of [last.start, last.start + 5, last.start + 12, last.end - 1]) {
      copyFixture();
      const buf = readFileSync(file);
      buf.fill(0, from, last.end);
      writeFileSync(file, buf);
      const { log, state } = await openQuiet(work.dir);
      expect(state.entries.length).to.equal(last.entryIndex === undefined ? 40 : last.entryIndex - 1);
      await log.close();
    }
  });

  it('deletes segments left below the compaction point by an interrupted compaction', async () => {
    const { log } = await openQuiet(work.dir);
    for (let i = 1; i <= 40; i += 4) await log.save({ term: 1, vote: 'n1', commit: i }, range(i, i + 3));
    const pending = log.createSnapshot({ index: 40, term: 1, conf: { voters: ['n1'], learners: [] } });
    writeFileSync(pending.path, 's');
    await pending.commit();
    await log.compact(40);
    await log.close();
    const walDir = path.join(work.dir, 'wal');
    const firstSeq = (JSON.parse(readFileSync(path.join(walDir, 'compact.json'), 'utf8')) as { firstSeq: number }).firstSeq;
    expect(firstSeq).to.be.greaterThan(1);
    const stale = path.join(walDir, '0000000000000001.wal');
    copyFileSync(path.join(fixture.dir, 'wal', segments[0]!), stale);
    const warnings: string[] = [];
    const { log: again, state } = await DurableLog.open(work.dir, { fsyncDeadlineMs: 5000, logger: { warn: (_o, m) => void warnings.push(m) } });
    expect(readdirSync(walDir)).to.not.include('0000000000000001.wal');
    expect(warnings.join()).to.match(/interrupted compaction/);
    expect(state.snapshot.index).to.equal(40);
    expect(again.firstIndex()).to.equal(41);
    await again.close();
  });

  it('refuses to start when a segment is missing (first, middle)', async () => {
    for (const victim of [segments[0]!, segments[1]!]) {
      const walDir = copyFixture();
      rmSync(path.join(walDir, victim));
      await expectCorrupt(work.dir, new RegExp(`missing WAL segment ${victim}`));
    }
  });

  it('refuses to start on an index gap inside a segment', async () => {
    const walDir = copyFixture();
    const file = path.join(walDir, segments[0]!);
    truncateSync(file, 0);
    for (const e of [makeEntry(1), makeEntry(2), makeEntry(4)]) appendFileSync(file, Buffer.concat(encodeEntry(e)));
    await expectCorrupt(work.dir, /index gap: entry 4 follows 2/);
  });

  it('refuses to start when the hard state or the compaction record is unreadable', async () => {
    // a hard-state record damaged mid-log
    let walDir = copyFixture();
    const file = path.join(walDir, segments[0]!);
    const hsAt = readFileSync(file).length;
    appendFileSync(file, Buffer.concat(encodeHardState({ term: 9, vote: 'n3', commit: 1 })));
    const buf = readFileSync(file);
    buf[hsAt + 12] = buf[hsAt + 12]! ^ 1;
    writeFileSync(file, buf);
    await expectCorrupt(work.dir, new RegExp(segments[0]!));

    walDir = copyFixture();
    writeFileSync(path.join(walDir, 'compact.json'), '{"index": 3, "te');
    await expectCorrupt(work.dir, /compaction record unreadable.*compact\.json/);
  });

  it('refuses to start when a committed snapshot is damaged', async () => {
    copyFixture();
    const dir = path.join(work.dir, 'snap', `${'5'.padStart(20, '0')}-${'1'.padStart(20, '0')}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'data'), 'x');
    writeFileSync(path.join(dir, 'meta.json'), 'not json');
    await expectCorrupt(work.dir, /snapshot metadata unreadable.*meta\.json/);
  });
});
