// A follower that already holds part of the store is sent a delta: the leader leaves out the objects of
// every pack at or below the index the follower has applied through, and the follower completes the file
// against its own packs and memory before installing it. Real files, two stores with their own logs.
import { expect } from 'chai';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { SnapshotMeta } from '../raft/types.js';
import { DurableLog } from '../storage/durable-log.js';
import type { PutCommand } from './commands.js';
import { ObjectStore, readManifest } from './object-store.js';
import { packName, readPackList } from './snapshot-format.js';
import { put } from './test-objects.js';

const meta = (index: number): SnapshotMeta => ({ index, term: 1, conf: { voters: ['n1'], learners: [] } });


async function drainTo(pieces: AsyncIterable<Uint8Array>, file: string): Promise<number> {
  const parts: Buffer[] = [];
  for await (const p of pieces) parts.push(Buffer.from(p));
  const all = Buffer.concat(parts);
  await fs.writeFile(file, all);
  return all.length;
}

/** One member: its log, its packs, its store. */
interface Member {
  dir: string;
  log: DurableLog;
  store: ObjectStore;
}

describe('cluster: delta snapshots (a follower is sent only the packs it lacks)', function () {
  this.timeout(60_000);
  let root: string;
  const members: Member[] = [];

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'stego-delta-'));
  });
  afterEach(async () => {
    for (const m of members.splice(0)) {
      await m.store.close().catch(() => undefined);
      await m.log.close().catch(() => undefined);
    }
    await fs.rm(root, { recursive: true, force: true, maxRetries: 5 });
  });

  async function member(name: string): Promise<Member> {
    const dir = path.join(root, name);
    const log = (await DurableLog.open(path.join(dir, 'raft'), { fsyncDeadlineMs: 10_000, logger: { warn: () => undefined } })).log;
    const store = await ObjectStore.open({ packsDir: path.join(dir, 'raft', 'packs') });
    const m = { dir, log, store };
    members.push(m);
    return m;
  }

  /** What the driver does to take a snapshot: write, commit, switch, collect. */
  async function take(m: Member, index: number): Promise<void> {
    const pending = m.log.createSnapshot(meta(index));
    await m.store.writeSnapshot(pending.path, meta(index));
    const info = await pending.commit();
    await m.store.snapshotCommitted(info.path, meta(index));
    await m.store.collectGarbage(() => m.log.snapshots());
  }

  /** What the driver does with a received file: ready it, then install it (Snapshots.stage, install). */
  async function receive(m: Member, file: string, index: number): Promise<void> {
    const prepared = await m.store.prepareInstall(file);
    const pending = m.log.createSnapshot(meta(index));
    await fs.rename(prepared.path, pending.path);
    const info = await pending.commit();
    try {
      await m.store.restore(info.path);
    } finally {
      prepared.release();
    }
    await m.store.collectGarbage(() => m.log.snapshots());
  }

  async function expectHolds(s: ObjectStore, want: Map<string, Buffer>): Promise<void> {
    expect(s.size).to.equal(want.size);
    for (const [id, bytes] of want) expect((await s.read(id))?.equals(bytes), id).to.equal(true);
  }

  it('sends only what the follower lacks, which it completes from its packs and memory, and restarts from', async () => {
    const leader = await member('leader');
    const follower = await member('follower');
    const want = new Map<string, Buffer>();
    const both = (cmd: PutCommand): void => {
      leader.store.apply(cmd);
      follower.store.apply(cmd);
      want.set(cmd.id, cmd.bytes as Buffer);
    };
    // both apply entries 1..30; each snapshots on its own grid (the follower at 25, the leader at 30)
    for (let i = 0; i < 25; i++) both(put(`a${i}`, 200_000 + i * 3001));
    await take(follower, 25);
    for (let i = 25; i < 30; i++) both(put(`a${i}`, 200_000 + i * 3001));
    await take(leader, 30);
    // the follower stops at 30 (a25..a29 are in its memory only); the leader goes on and snapshots at 41
    for (let i = 0; i < 10; i++) {
      const cmd = put(`b${i}`, 5000 + i);
      leader.store.apply(cmd);
      want.set(cmd.id, cmd.bytes as Buffer);
    }
    leader.store.apply({ kind: 'delete', id: 'a3' });
    want.delete('a3');
    await take(leader, 41);
    expect(await readPackList(leader.log.latestSnapshot()!.path)).to.deep.equal([packName(30, 1)]);

    const whole = (await leader.store.snapshotSource(29))!; // below every pack: the self-contained file
    expect(whole.delta).to.equal(false);
    whole.close();
    const source = (await leader.store.snapshotSource(30))!;
    expect(source.delta).to.equal(true);
    expect(source.meta.index).to.equal(41);
    // ten small objects and a manifest, against 6 MB for the whole file
    expect(source.size).to.be.lessThan(100_000);
    expect(whole.size).to.be.greaterThan(6_000_000);
    const staging = path.join(follower.dir, 'staging');
    await fs.mkdir(staging);
    const file = path.join(staging, 'snap-leader-1-41.snap');
    expect(await drainTo(source.read(), file)).to.equal(source.size);
    source.close();
    expect((await readManifest(file)).version).to.equal(3);
    // a delta is never installed as it is
    const raw = await ObjectStore.open({ packsDir: path.join(root, 'raw-packs') });
    expect(((await raw.restore(file).catch((e: unknown) => e)) as Error).message).to.match(/delta/);
    await raw.close();

    await receive(follower, file, 41);
    expect(await fs.readdir(staging)).to.deep.equal([]); // the delta and its completed file are gone
    const installed = await readManifest(follower.log.latestSnapshot()!.path);
    expect(installed.version).to.equal(2);
    expect(installed.packs).to.deep.equal([packName(25, 1)]); // the follower's own pack, not the leader's
    await expectHolds(follower.store, want);

    // and it restarts from that snapshot: its pack list, its packs
    await follower.store.close();
    await follower.log.close();
    follower.log = (await DurableLog.open(path.join(follower.dir, 'raft'), { fsyncDeadlineMs: 10_000, logger: { warn: () => undefined } })).log;
    follower.store = await ObjectStore.open({ packsDir: path.join(follower.dir, 'raft', 'packs') });
    await follower.store.loadFromSnapshot(follower.log.latestSnapshot()!.path);
    await follower.store.collectGarbage(() => follower.log.snapshots());
    await expectHolds(follower.store, want);
  });

  it('refuses a delta naming an object the member does not hold, or holds with other bytes, and leaves nothing behind', async () => {
    const leader = await member('leader');
    for (let i = 0; i < 5; i++) leader.store.apply(put(`a${i}`, 50_000));
    await take(leader, 5);
    leader.store.apply(put('b', 1000));
    await take(leader, 6);
    const staging = path.join(root, 'staging');
    await fs.mkdir(staging);

    const empty = await member('empty');
    const file = path.join(staging, 'snap-leader-1-6.snap');
    const source = (await leader.store.snapshotSource(5))!;
    await drainTo(source.read(), file);
    source.close();
    const err = await empty.store.prepareInstall(file).catch((e: unknown) => e);
    expect((err as Error).message).to.match(/a0 is marked held, but this member does not hold it/);
    expect((err as { code?: string }).code).to.equal('corrupt_snapshot');
    expect(await fs.readdir(staging)).to.deep.equal(['snap-leader-1-6.snap']); // no completed file left

    const other = await member('other');
    for (let i = 0; i < 5; i++) other.store.apply(i === 2 ? { ...put('a2', 50_000), sha256: Buffer.alloc(32), bytes: Buffer.alloc(50_000) } : put(`a${i}`, 50_000));
    expect(((await other.store.prepareInstall(file).catch((e: unknown) => e)) as Error).message).to.match(/a2 is marked held/);
  });
});
