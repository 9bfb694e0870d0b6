// Incremental snapshots on real files: a snapshot writes only what no pack holds yet, packs outlive the
// log's snapshot retention for as long as a retained snapshot names them, sparse packs are compacted and
// collected, a follower is sent a self-contained file rendered from the packs, and the data directories
// of the version that rewrote every object on every snapshot still load.
import { expect } from 'chai';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { SnapshotMeta } from '../raft/types.js';
import { DurableLog } from '../storage/durable-log.js';
import type { PutCommand } from './commands.js';
import { ObjectStore, readManifest } from './object-store.js';
import { manifestEntry, packName, readPackList, v1Header } from './snapshot-format.js';
import { bytesFor, put } from './test-objects.js';

const meta = (index: number): SnapshotMeta => ({ index, term: 1, conf: { voters: ['n1'], learners: [] } });


/** Every piece copied as it comes: the source reuses a piece's buffer for the next. */
async function drainTo(pieces: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of pieces) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

describe('cluster: incremental snapshots (packs)', function () {
  this.timeout(60_000);
  let dir: string;
  let log: DurableLog;
  let packsDir: string;
  /** What the store must hold: id → bytes. */
  let expected: Map<string, Buffer>;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stego-incr-'));
    packsDir = path.join(dir, 'raft', 'packs');
    log = await openLog();
    expected = new Map();
  });
  afterEach(async () => {
    await log.close().catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 5 });
  });

  async function openLog(): Promise<DurableLog> {
    return (await DurableLog.open(path.join(dir, 'raft'), { fsyncDeadlineMs: 10_000, logger: { warn: () => undefined } })).log;
  }

  /** What the driver does: write, commit (E publishes and prunes to 2), switch, collect. Returns the file's size. */
  async function take(s: ObjectStore, index: number): Promise<number> {
    const m = meta(index);
    const pending = log.createSnapshot(m);
    const size = await s.writeSnapshot(pending.path, m);
    const info = await pending.commit();
    await s.snapshotCommitted(info.path, m);
    await s.collectGarbage(() => log.snapshots());
    expect((await fs.stat(info.path)).size).to.equal(size);
    return size;
  }

  function apply(s: ObjectStore, cmd: PutCommand): void {
    s.apply(cmd);
    expected.set(cmd.id, cmd.bytes as Buffer);
  }

  function remove(s: ObjectStore, id: string): void {
    s.apply({ kind: 'delete', id });
    expected.delete(id);
  }

  async function expectAll(s: ObjectStore): Promise<void> {
    expect(s.size).to.equal(expected.size);
    for (const [id, bytes] of expected) expect((await s.read(id))?.equals(bytes), id).to.equal(true);
  }

  /** A restart: a new log and store from disk, the newest snapshot, its packs, then a collection. */
  async function restart(s: ObjectStore): Promise<ObjectStore> {
    await s.close();
    await log.close();
    log = await openLog();
    const again = await ObjectStore.open({ packsDir });
    await again.loadFromSnapshot(log.latestSnapshot()!.path);
    await again.collectGarbage(() => log.snapshots());
    return again;
  }

  it('a snapshot after a few new puts writes only their bytes and a manifest, not the store', async () => {
    const s = await ObjectStore.open({ packsDir });
    for (let i = 0; i < 40; i++) apply(s, put(`o${i}`, 64 * 1024));
    const first = await take(s, 40);
    expect(first).to.be.greaterThan(40 * 64 * 1024);
    for (let i = 40; i < 43; i++) apply(s, put(`o${i}`, 64 * 1024));
    const second = await take(s, 43);
    const { manifest, dataStart } = await readManifest(log.latestSnapshot()!.path);
    expect(second - dataStart).to.equal(3 * 64 * 1024); // the data section: the three new objects only
    expect(second).to.be.lessThan(3 * 64 * 1024 + 10_000);
    expect(manifest.objects).to.have.length(43);
    expect(await readPackList(log.latestSnapshot()!.path)).to.deep.equal([packName(40, 1)]);
    expect(s.inMemory).to.equal(0);
    await expectAll(s);
    await s.close();
  });

  it('every object reads back byte-identical across snapshots, retention, deletes and restarts', async () => {
    let s = await ObjectStore.open({ packsDir });
    let index = 0;
    for (let round = 0; round < 8; round++) {
      for (let i = 0; i < 12; i++) apply(s, put(`r${round}-${i}`, 1000 + ((round * 7919 + i * 104_729) % 90_000)));
      if (round > 0) for (let i = 0; i < 4; i++) remove(s, `r${round - 1}-${i * 2}`);
      index += 20;
      await take(s, index);
      await expectAll(s);
      if (round % 3 === 2) {
        s = await restart(s);
        await expectAll(s);
      }
    }
    expect(log.snapshots()).to.have.length(2); // retention pruned the older snapshot directories
    s = await restart(s);
    await expectAll(s);
    // every pack on disk is one a retained snapshot needs
    const needed = new Set<string>();
    for (const info of log.snapshots()) {
      needed.add(packName(info.meta.index, info.meta.term));
      for (const name of await readPackList(info.path)) needed.add(name);
    }
    const onDisk = (await fs.readdir(packsDir)).map((f) => f.replace(/\.pack$/, ''));
    expect(onDisk.every((name) => needed.has(name)), `${onDisk.join(',')} vs ${[...needed].join(',')}`).to.equal(true);
    await s.close();
  });

  it('compacts a pack that lost most of its objects and deletes it once no retained snapshot names it', async () => {
    const s = await ObjectStore.open({ packsDir });
    for (let i = 0; i < 20; i++) apply(s, put(`old${i}`, 32 * 1024));
    await take(s, 20);
    const oldPack = path.join(packsDir, `${packName(20, 1)}.pack`);
    for (let i = 0; i < 15; i++) remove(s, `old${i}`);
    apply(s, put('new', 32 * 1024));
    const size = await take(s, 30);
    // the five survivors were copied: the new snapshot names no pack
    expect(await readPackList(log.latestSnapshot()!.path)).to.deep.equal([]);
    const { dataStart } = await readManifest(log.latestSnapshot()!.path);
    expect(size - dataStart).to.equal(6 * 32 * 1024);
    expect(s.livePacks()).to.deep.equal([packName(30, 1)]);
    await fs.access(oldPack); // snapshot 20 is still retained, and its own file is that pack
    apply(s, put('newer', 1024));
    await take(s, 40); // retention drops snapshot 20: nothing names its pack any more
    expect(((await fs.access(oldPack).catch((e: unknown) => e)) as NodeJS.ErrnoException).code).to.equal('ENOENT');
    await expectAll(s);
    const again = await restart(s);
    await expectAll(again);
    await again.close();
  });

  it('a manifest never names more than 15 packs, however many snapshots added dense ones', async () => {
    let s = await ObjectStore.open({ packsDir });
    for (let n = 1; n <= 24; n++) {
      apply(s, put(`p${n}`, 8 * 1024 + n * 512)); // one object a snapshot: every pack is dense
      await take(s, n * 10);
      expect((await readPackList(log.latestSnapshot()!.path)).length).to.be.at.most(15);
    }
    expect((await fs.readdir(packsDir)).length).to.be.at.most(17);
    s = await restart(s);
    await expectAll(s);
    await s.close();
  });

  it('a follower installing the snapshot rendered from a v2 manifest and its packs gets every object', async () => {
    const s = await ObjectStore.open({ packsDir });
    for (let i = 0; i < 30; i++) apply(s, put(`a${i}`, 200_000 + i * 3001));
    await take(s, 30);
    for (let i = 0; i < 10; i++) apply(s, put(`b${i}`, 5000 + i));
    remove(s, 'a3');
    await take(s, 41);
    expect(await readPackList(log.latestSnapshot()!.path)).to.deep.equal([packName(30, 1)]);
    apply(s, put('after', 777)); // applied after the snapshot: not in what is sent

    const source = (await s.snapshotSource())!;
    expect(source.meta.index).to.equal(41);
    const full = await drainTo(source.read());
    expect(full.length).to.equal(source.size);
    // each read yields the same bytes
    expect((await drainTo(source.read())).equals(full)).to.equal(true);
    // a newer snapshot that compacts the packs, and their collection, do not disturb a stream under way
    const pieces = source.read()[Symbol.asyncIterator]();
    const parts = [Buffer.from((await pieces.next()).value as Buffer)];
    for (let i = 0; i < 29; i++) if (i !== 3) remove(s, `a${i}`);
    await take(s, 50);
    await take(s, 60);
    await fs.access(path.join(packsDir, `${packName(30, 1)}.pack`)).then(
      () => expect.fail('pack 30 should have been collected'),
      () => undefined,
    );
    for (let r = await pieces.next(); !r.done; r = await pieces.next()) parts.push(Buffer.from(r.value as Buffer));
    source.close();
    expect(Buffer.concat(parts).equals(full)).to.equal(true);
    const streamed = path.join(dir, 'streamed');
    await fs.writeFile(streamed, full);

    const installed = await readManifest(streamed);
    expect(installed.version).to.equal(1);
    expect(installed.packs).to.deep.equal([]);
    const follower = await ObjectStore.open({ packsDir: path.join(dir, 'follower-packs') });
    await follower.restore(streamed);
    expect(follower.size).to.equal(39);
    for (let i = 0; i < 30; i++) if (i !== 3) expect((await follower.read(`a${i}`))?.equals(bytesFor(`a${i}`, 200_000 + i * 3001))).to.equal(true);
    for (let i = 0; i < 10; i++) expect((await follower.read(`b${i}`))?.equals(bytesFor(`b${i}`, 5000 + i))).to.equal(true);
    expect(await follower.read('after')).to.equal(undefined);
    await follower.close();
    await s.close();
  });

  it('loads a data directory of the version that wrote self-contained (v1) snapshots, and builds on it', async () => {
    // the old writer's layout: header, manifest with offsets back to back, object bytes
    const cmds = [put('v1a', 3000), put('v1b', 70_000), put('v1c', 10)];
    let offset = 0;
    const entries = cmds.map((c) => {
      const objectMeta = { id: c.id, sha256: Buffer.from(c.sha256).toString('hex'), size: c.bytes.length, contentType: c.contentType, createdAt: c.createdAt };
      const entry = `${manifestEntry(objectMeta).toString()}${offset}}`;
      offset += c.bytes.length;
      return entry;
    });
    const m = meta(7);
    const manifest = Buffer.from(`{"index":7,"term":1,"conf":${JSON.stringify(m.conf)},"members":[["n1","h:1"]],"objects":[${entries.join(',')}]}`);
    const pending = log.createSnapshot(m);
    await fs.writeFile(pending.path, Buffer.concat([v1Header(manifest.length), manifest, ...cmds.map((c) => c.bytes as Buffer)]));
    await pending.commit();
    await log.close();
    log = await openLog();

    let s = await ObjectStore.open({ packsDir });
    await s.loadFromSnapshot(log.latestSnapshot()!.path);
    for (const c of cmds) expected.set(c.id, c.bytes as Buffer);
    await expectAll(s);
    expect(s.members().get('n1')).to.equal('h:1');
    apply(s, put('v2a', 80_000));
    await take(s, 9); // names the v1 file, linked as a pack when it was loaded
    expect(await readPackList(log.latestSnapshot()!.path)).to.deep.equal([packName(7, 1)]);
    s = await restart(s);
    await expectAll(s);
    await s.close();
  });

  it('a start removes packs no retained snapshot names (left by a crash before their collection)', async () => {
    const s = await ObjectStore.open({ packsDir });
    for (let i = 0; i < 5; i++) apply(s, put(`o${i}`, 50_000));
    await take(s, 5);
    const stray = path.join(packsDir, `${packName(3, 1)}.pack`);
    await fs.writeFile(stray, 'a pack whose snapshot was pruned before the crash');
    const again = await restart(s);
    expect(((await fs.access(stray).catch((e: unknown) => e)) as NodeJS.ErrnoException).code).to.equal('ENOENT');
    expect(await fs.readdir(packsDir)).to.deep.equal([`${packName(5, 1)}.pack`]);
    await expectAll(again);
    await again.close();
  });

  it('refuses to load a snapshot whose pack is missing, instead of dropping its objects', async () => {
    const s = await ObjectStore.open({ packsDir });
    for (let i = 0; i < 5; i++) apply(s, put(`o${i}`, 50_000));
    await take(s, 5);
    apply(s, put('o5', 50_000));
    await take(s, 6);
    await s.close();
    await fs.rm(path.join(packsDir, `${packName(5, 1)}.pack`));
    const again = await ObjectStore.open({ packsDir });
    const err = await again.loadFromSnapshot(log.latestSnapshot()!.path).catch((e: unknown) => e);
    expect((err as Error).message).to.match(/missing/);
    expect((err as { code?: string }).code).to.equal('corrupt_snapshot');
    await again.close();
  });
});
