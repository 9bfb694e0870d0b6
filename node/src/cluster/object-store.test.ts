import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { decodeCommand, encodeCommand, type PutCommand } from './commands.js';
import { ObjectStore, readManifest, SnapshotFormatError } from './object-store.js';
import { packName } from './snapshot-format.js';
import type { SnapshotMeta } from '../raft/types.js';

function put(id: string, text: string): PutCommand {
  const bytes = Buffer.from(text);
  return { kind: 'put', id, sha256: createHash('sha256').update(bytes).digest(), createdAt: 1_700_000_000_000, contentType: 'image/png', bytes };
}

describe('cluster/commands codec', () => {
  it('round-trips every command kind, carrying PNG bytes raw after a small header', () => {
    const p = put('a1', 'x'.repeat(1000));
    const enc = encodeCommand(p);
    expect(enc.length).to.be.lessThan(1000 + 100);
    const dec = decodeCommand(enc) as PutCommand;
    expect(dec.kind).to.equal('put');
    expect(dec.id).to.equal('a1');
    expect(Buffer.from(dec.bytes).equals(p.bytes as Buffer)).to.equal(true);
    expect(Buffer.from(dec.sha256).equals(p.sha256 as Buffer)).to.equal(true);
    expect(dec.createdAt).to.equal(p.createdAt);
    expect(decodeCommand(encodeCommand({ kind: 'delete', id: 'a1' }))).to.deep.equal({ kind: 'delete', id: 'a1' });
    expect(decodeCommand(encodeCommand({ kind: 'setMember', id: 'n4', address: '10.0.0.4:7000' }))).to.deep.equal({
      kind: 'setMember', id: 'n4', address: '10.0.0.4:7000',
    });
    expect(decodeCommand(encodeCommand({ kind: 'removeMember', id: 'n4' }))).to.deep.equal({ kind: 'removeMember', id: 'n4' });
  });

  it('refuses truncated and unknown commands with a typed error', () => {
    const enc = encodeCommand(put('a1', 'hello'));
    expect(() => decodeCommand(enc.subarray(0, 20))).to.throw(/truncated/);
    expect(() => decodeCommand(Uint8Array.from([9, 1, 65]))).to.throw(/unknown command kind 9/);
  });
});

describe('cluster/ObjectStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stego-store-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 5 });
  });

  const meta = (index: number): SnapshotMeta => ({ index, term: 1, conf: { voters: ['n1'], learners: [] } });

  /** What the driver does: write into a temp path, publish it elsewhere (E renames), then switch. */
  async function snapshot(s: ObjectStore, m: SnapshotMeta): Promise<string> {
    const tmp = path.join(dir, `tmp-${m.index}`);
    await s.writeSnapshot(tmp, m);
    const final = path.join(dir, `snap-${m.index}`);
    await fs.rename(tmp, final);
    await s.snapshotCommitted(final, m);
    return final;
  }

  it('applies puts and deletes idempotently (log replay after a crash), without writing any file', async () => {
    const legacy = path.join(dir, 'objects');
    await fs.mkdir(legacy);
    await fs.writeFile(path.join(legacy, 'old.png'), 'from a previous version');
    const s = await ObjectStore.open({ legacyObjectsDir: legacy });
    for (let round = 0; round < 2; round++) {
      s.apply(put('a', 'alpha'));
      s.apply(put('b', 'beta'));
      s.apply({ kind: 'delete', id: 'a' });
    }
    expect(s.list().map((o) => o.id)).to.deep.equal(['b']);
    expect((await s.read('b'))!.toString()).to.equal('beta');
    expect(await s.read('a')).to.equal(undefined);
    expect(await fs.readdir(dir)).to.deep.equal([]); // the legacy directory is gone and nothing was written
  });

  it('serves objects from memory before a snapshot and from the snapshot file after it, byte-identical', async () => {
    const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    const bodies = new Map<string, Buffer>();
    for (let i = 0; i < 50; i++) {
      const cmd = put(`o${i}`, `object ${i} `.repeat(1 + i * 37));
      bodies.set(cmd.id, cmd.bytes as Buffer);
      s.apply(cmd);
    }
    const before = new Map<string, Buffer>();
    for (const id of bodies.keys()) before.set(id, (await s.read(id))!);
    expect(s.inMemory).to.equal(50);
    expect(s.livePacks()).to.deep.equal([]);

    await snapshot(s, meta(50));
    expect(s.livePacks()).to.deep.equal([packName(50, 1)]);
    expect(s.inMemory).to.equal(0);
    // the in-memory references are gone: what comes back now can only come from the file
    for (const [id, bytes] of bodies) {
      const after = (await s.read(id))!;
      expect(after.equals(bytes)).to.equal(true, id);
      expect(after.equals(before.get(id)!)).to.equal(true, id);
    }
    await s.close();
  });

  it('keeps objects applied after the snapshot index in memory and moves them with the next snapshot', async () => {
    const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    s.apply(put('o1', 'one'));
    const tmp = path.join(dir, 'tmp');
    await s.writeSnapshot(tmp, meta(1)); // captured at index 1
    s.apply(put('o2', 'two')); // applied while the snapshot was being committed
    s.apply(put('o1', 'ONE')); // a re-put of an existing id is a retry: the first write wins, nothing changes
    const first = path.join(dir, 'snap-1');
    await fs.rename(tmp, first);
    await s.snapshotCommitted(first, meta(1));
    expect(s.inMemory).to.equal(1); // o2 only; o1 moved onto the snapshot file

    await snapshot(s, meta(3));
    expect(s.inMemory).to.equal(0);
    await fs.rm(first); // retention deletes the older snapshot file: its pack link keeps the bytes
    expect((await s.read('o1'))!.toString()).to.equal('one');
    expect((await s.read('o2'))!.toString()).to.equal('two');
    // snapshot 1's file is mostly its manifest (3 live bytes): compacted, o1 was copied into snapshot 3
    expect(s.livePacks()).to.deep.equal([packName(3, 1)]);
    await s.close();
  });

  it('snapshots to one file (manifest + raw bytes) and restores a replica from it exactly', async () => {
    const a = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    a.apply(put('o1', 'one'));
    a.apply(put('o2', 'two two'));
    a.apply({ kind: 'setMember', id: 'n4', address: 'h:4' });
    const file = path.join(dir, 'snap');
    const m = { index: 7, term: 2, conf: { voters: ['n1'], learners: ['n4'] } };
    const size = await a.writeSnapshot(file, m);
    expect((await fs.stat(file)).size).to.equal(size);
    const { manifest } = await readManifest(file);
    expect(manifest.index).to.equal(7);
    expect(manifest.objects.map((o) => [o.id, o.offset, o.size])).to.deep.equal([['o1', 0, 3], ['o2', 3, 7]]);

    const b = await ObjectStore.open({ packsDir: path.join(dir, 'packs-b') });
    b.apply(put('stale', 'gone after restore'));
    await b.restore(file);
    expect(b.list().map((o) => o.id)).to.deep.equal(['o1', 'o2']);
    expect((await b.read('o2'))!.toString()).to.equal('two two');
    expect(await b.read('stale')).to.equal(undefined);
    expect(b.members().get('n4')).to.equal('h:4');
    expect(b.livePacks()).to.deep.equal([packName(7, 2)]);
    await a.close();
    await b.close();
  });

  it('restarts from a snapshot manifest plus replayed puts', async () => {
    const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    const log: PutCommand[] = [];
    for (let i = 0; i < 10; i++) log.push(put(`o${i}`, `payload ${i} `.repeat(100)));
    for (const cmd of log.slice(0, 6)) s.apply(cmd);
    const file = await snapshot(s, meta(6));
    for (const cmd of log.slice(6)) s.apply(cmd);
    await s.close(); // "crash": only the snapshot file and the log survive

    const again = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    const manifest = await again.loadFromSnapshot(file);
    expect(manifest.objects).to.have.length(6);
    expect(again.inMemory).to.equal(0);
    // the driver replays the log from the snapshot (entries around it may come again: apply is idempotent)
    for (const cmd of log.slice(4)) again.apply(cmd);
    expect(again.size).to.equal(10);
    for (const cmd of log) expect((await again.read(cmd.id))!.equals(cmd.bytes as Buffer)).to.equal(true, cmd.id);
    expect(again.list().map((o) => o.id)).to.deep.equal(s.list().map((o) => o.id));
    await again.close();
  });

  it('a delete drops the object; the next snapshot no longer holds it', async () => {
    const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    s.apply(put('keep', 'kept'));
    s.apply(put('gone', 'deleted bytes'));
    await snapshot(s, meta(2));
    s.apply({ kind: 'delete', id: 'gone' });
    expect(await s.read('gone')).to.equal(undefined);
    const file = await snapshot(s, meta(3));
    const { manifest, dataStart } = await readManifest(file);
    expect(manifest.objects.map((o) => o.id)).to.deep.equal(['keep']);
    expect((await fs.stat(file)).size).to.equal(dataStart + 'kept'.length);
    expect((await fs.readFile(file)).includes(Buffer.from('deleted bytes'))).to.equal(false);
    await s.close();
  });

  it('a read racing a snapshot switch returns the right bytes, even when the old file is deleted', async () => {
    const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    const big = put('big', 'B'.repeat(3 << 20));
    s.apply(big);
    s.apply(put('small', 'small one'));
    const first = await snapshot(s, meta(2));
    s.apply(put('fresh', 'fresh bytes'));
    // reads of file-resident and memory-resident objects in flight while the store switches files
    const reads = [s.read('big'), s.read('small'), s.read('fresh')];
    const switched = snapshot(s, meta(3));
    const more = [s.read('big'), s.read('fresh')];
    await switched;
    await fs.rm(first); // what retention does to the superseded file
    const [b1, small, f1] = await Promise.all(reads);
    const [b2, f2] = await Promise.all(more);
    expect(b1!.equals(big.bytes as Buffer)).to.equal(true);
    expect(b2!.equals(big.bytes as Buffer)).to.equal(true);
    expect(small!.toString()).to.equal('small one');
    expect(f1!.toString()).to.equal('fresh bytes');
    expect(f2!.toString()).to.equal('fresh bytes');
    expect((await s.read('big'))!.equals(big.bytes as Buffer)).to.equal(true);
    await s.close();
  });

  it('a snapshot copying from a pack that an install supersedes (and collection deletes) stays whole', async () => {
    const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    const big = put('big', 'B'.repeat(8 << 20));
    s.apply(big);
    s.apply(put('junk', 'J'.repeat(9 << 20)));
    await snapshot(s, meta(2));
    s.apply({ kind: 'delete', id: 'junk' }); // the pack is now less than half live: the next snapshot copies 'big'
    const other = await ObjectStore.open({ packsDir: path.join(dir, 'packs-other') });
    other.apply(put('x', 'from the leader'));
    const installed = path.join(dir, 'installed');
    await other.writeSnapshot(installed, meta(9));

    const out = path.join(dir, 'streamed');
    const writing = s.writeSnapshot(out, meta(3)); // reads 'big' from pack 2 in several chunks
    await s.restore(installed);
    expect(await s.collectGarbage(() => [])).to.include(packName(2, 1));
    await writing;
    const { manifest } = await readManifest(out);
    expect(manifest.objects.map((o) => o.pack)).to.deep.equal([undefined]); // self-contained: copied
    const r = await ObjectStore.open({ packsDir: path.join(dir, 'packs-r') });
    await r.restore(out);
    expect((await r.read('big'))!.equals(big.bytes as Buffer)).to.equal(true);
    for (const st of [s, other, r]) await st.close();
  });

  it('deletes applied while a snapshot streams do not tear it', async () => {
    const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    for (let i = 0; i < 20; i++) s.apply(put(`o${i}`, `object ${i} `.repeat(5000)));
    await snapshot(s, meta(20)); // half of them come from the file in the next snapshot
    for (let i = 20; i < 40; i++) s.apply(put(`o${i}`, `object ${i} `.repeat(5000)));
    const file = path.join(dir, 'snap');
    const writing = s.writeSnapshot(file, meta(40));
    for (let i = 0; i < 40; i++) s.apply({ kind: 'delete', id: `o${i}` });
    await writing;
    const r = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    await r.restore(file);
    expect(r.size).to.equal(40);
    expect((await r.read('o7'))!.toString()).to.equal('object 7 '.repeat(5000));
    expect((await r.read('o39'))!.toString()).to.equal('object 39 '.repeat(5000));
    await s.close();
    await r.close();
  });

  it('a switch after a restore (install from the leader) does not move objects onto a stale snapshot', async () => {
    const leader = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    leader.apply(put('l1', 'leader object'));
    const installed = path.join(dir, 'installed');
    await leader.writeSnapshot(installed, meta(10));

    const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    s.apply(put('mine', 'local object'));
    const tmp = path.join(dir, 'tmp');
    await s.writeSnapshot(tmp, meta(5));
    await s.restore(installed);
    await s.snapshotCommitted(tmp, meta(5));
    expect(s.livePacks()).to.deep.equal([packName(10, 1)]);
    expect(s.list().map((o) => o.id)).to.deep.equal(['l1']);
    expect((await s.read('l1'))!.toString()).to.equal('leader object');
    await s.close();
    await leader.close();
  });

  it('when the log commits another copy (another inode) of the same (index, term), objects stay put and that copy is what followers get', async () => {
    const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    s.apply(put('o1', 'one'));
    const tmp = path.join(dir, 'tmp');
    await s.writeSnapshot(tmp, meta(1));
    const published = path.join(dir, 'published');
    await fs.copyFile(tmp, published); // the same state in another file (inode)
    await s.snapshotCommitted(published, meta(1));
    expect(s.inMemory).to.equal(1);
    const source = (await s.snapshotSource())!;
    expect(source.meta.index).to.equal(1);
    const sent = path.join(dir, 'sent');
    const fd = await fs.open(sent, 'w');
    for await (const piece of source.read()) await fd.write(piece);
    await fd.close();
    source.close();
    const r = await ObjectStore.open({ packsDir: path.join(dir, 'packs-r') });
    await r.restore(sent);
    expect((await r.read('o1'))!.toString()).to.equal('one');
    await r.close();
    await s.close();
  });

  it('refuses a file that is not a snapshot, or a truncated one', async () => {
    const bogus = path.join(dir, 'bogus');
    await fs.writeFile(bogus, 'not a snapshot at all');
    const err = await readManifest(bogus).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(SnapshotFormatError);
    const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    s.apply(put('o1', 'one'.repeat(100)));
    const file = path.join(dir, 'snap');
    const size = await s.writeSnapshot(file, meta(2));
    await fs.truncate(file, size - 10);
    expect(await readManifest(file).catch((e: unknown) => (e as Error).message)).to.match(/truncated/);
  });
});
