import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { decodeCommand, encodeCommand, type PutCommand } from './commands.js';
import { ObjectStore, readManifest, SnapshotFormatError } from './object-store.js';

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

  it('applies puts and deletes idempotently (log replay after a crash)', async () => {
    const s = await ObjectStore.open(path.join(dir, 'objects'));
    for (let round = 0; round < 2; round++) {
      await s.apply(put('a', 'alpha'));
      await s.apply(put('b', 'beta'));
      await s.apply({ kind: 'delete', id: 'a' });
    }
    expect(s.list().map((o) => o.id)).to.deep.equal(['b']);
    expect((await s.read('b'))!.toString()).to.equal('beta');
    expect(await s.read('a')).to.equal(undefined);
    await s.flush();
    expect(await fs.readdir(path.join(dir, 'objects'))).to.deep.equal(['b.png']);
  });

  it('snapshots to one file (manifest + raw bytes) and restores a replica from it exactly', async () => {
    const a = await ObjectStore.open(path.join(dir, 'a'));
    await a.apply(put('o1', 'one'));
    await a.apply(put('o2', 'two two'));
    await a.apply({ kind: 'setMember', id: 'n4', address: 'h:4' });
    const file = path.join(dir, 'snap');
    const meta = { index: 7, term: 2, conf: { voters: ['n1'], learners: ['n4'] } };
    const size = await a.writeSnapshot(file, meta);
    expect((await fs.stat(file)).size).to.equal(size);
    const { manifest } = await readManifest(file);
    expect(manifest.index).to.equal(7);
    expect(manifest.objects.map((o) => [o.id, o.offset, o.size])).to.deep.equal([['o1', 0, 3], ['o2', 3, 7]]);

    const b = await ObjectStore.open(path.join(dir, 'b'));
    await b.apply(put('stale', 'gone after restore'));
    await b.restore(file);
    expect(b.list().map((o) => o.id)).to.deep.equal(['o1', 'o2']);
    expect((await b.read('o2'))!.toString()).to.equal('two two');
    expect(b.members().get('n4')).to.equal('h:4');
    expect(await fs.readdir(path.join(dir, 'b'))).to.have.members(['o1.png', 'o2.png']);
  });

  it('deletes applied while a snapshot streams do not tear it (unlink deferred)', async () => {
    const s = await ObjectStore.open(path.join(dir, 'objects'));
    for (let i = 0; i < 20; i++) await s.apply(put(`o${i}`, `object ${i} `.repeat(5000)));
    const file = path.join(dir, 'snap');
    const writing = s.writeSnapshot(file, { index: 20, term: 1, conf: { voters: ['n1'], learners: [] } });
    for (let i = 0; i < 20; i++) await s.apply({ kind: 'delete', id: `o${i}` });
    await writing;
    const r = await ObjectStore.open(path.join(dir, 'restored'));
    await r.restore(file);
    expect(r.size).to.equal(20);
    expect((await r.read('o19'))!.toString()).to.equal('object 19 '.repeat(5000));
  });

  it('at start, repairs damaged or missing object files from the local snapshot', async () => {
    const objects = path.join(dir, 'objects');
    const s = await ObjectStore.open(objects);
    await s.apply(put('o1', 'one'));
    await s.apply(put('o2', 'two'));
    const file = path.join(dir, 'snap');
    await s.writeSnapshot(file, { index: 3, term: 1, conf: { voters: ['n1'], learners: [] } });
    await fs.writeFile(path.join(objects, 'o1.png'), 'XXX'); // same size, wrong bytes (torn write)
    await fs.rm(path.join(objects, 'o2.png'));
    const again = await ObjectStore.open(objects);
    await again.loadFromSnapshot(file);
    expect((await again.read('o1'))!.toString()).to.equal('one');
    expect((await again.read('o2'))!.toString()).to.equal('two');
  });

  it('refuses a file that is not a snapshot, or a truncated one', async () => {
    const bogus = path.join(dir, 'bogus');
    await fs.writeFile(bogus, 'not a snapshot at all');
    const err = await readManifest(bogus).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(SnapshotFormatError);
    const s = await ObjectStore.open(path.join(dir, 'o'));
    await s.apply(put('o1', 'one'.repeat(100)));
    const file = path.join(dir, 'snap');
    const size = await s.writeSnapshot(file, { index: 2, term: 1, conf: { voters: ['n1'], learners: [] } });
    await fs.truncate(file, size - 10);
    expect(await readManifest(file).catch((e: unknown) => (e as Error).message)).to.match(/truncated/);
  });
});
