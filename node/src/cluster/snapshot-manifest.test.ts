import { expect } from 'chai';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PutCommand } from './commands.js';
import { ObjectStore, readManifest, SnapshotFormatError } from './object-store.js';
import { v1Header, v2Header, type ManifestObject } from './snapshot-format.js';
import type { SnapshotMeta } from '../raft/types.js';

// readManifest reads a manifest a piece at a time and cuts its `objects` array into entries with a scanner
// of JSON structure: what it returns must be what one JSON.parse of the whole manifest gave, and whatever
// JSON.parse refused (or the store cannot use) must be refused with SnapshotFormatError.

const HEADER = { index: 7, term: 2, conf: { voters: ['n1', 'n2'], learners: [] }, members: [['n1', 'h1:7000'], ['n2', 'h2:7000']], removed: ['n9'] };

function entry(i: number, extra: Partial<ManifestObject> = {}): ManifestObject {
  return { id: `o${i}`, sha256: 'ab'.repeat(32), size: 1, contentType: 'image/png', createdAt: 1_700_000_000_000 + i, offset: i, ...extra };
}

/** A v1 file whose manifest is `manifest` verbatim, with `dataBytes` of object bytes. */
async function v1File(file: string, manifest: string, dataBytes: number): Promise<void> {
  const json = Buffer.from(manifest, 'utf8');
  await fs.writeFile(file, Buffer.concat([v1Header(json.length), json, Buffer.alloc(dataBytes, 0x61)]));
}

function put(id: string, text: string, extra: Partial<PutCommand> = {}): PutCommand {
  const bytes = Buffer.from(text);
  return { kind: 'put', id, sha256: createHash('sha256').update(bytes).digest(), createdAt: 1_700_000_000_000, contentType: 'image/png', bytes, ...extra };
}

describe('cluster/snapshot manifest reading', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stego-manifest-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 5 });
  });

  it('reads what JSON.parse reads: any key order, whitespace, entries across pieces and batches', async () => {
    const objects = Array.from({ length: 20_000 }, (_, i) => entry(i, i % 3 === 0 ? { owner: `t${i % 7}`, idempotencyKey: `k "${i}" },{ ]` } : {}));
    const texts = [
      JSON.stringify({ ...HEADER, objects }),
      JSON.stringify({ objects, ...HEADER }), // objects first, as no writer did, still a manifest
      JSON.stringify({ ...HEADER, objects }, null, 2),
      JSON.stringify({ index: 1, term: 1, conf: { voters: ['n1'], learners: [] }, members: [], objects: [] }), // no `removed` (older versions)
      ` { "index" : 1 , "term":1,"conf":{"voters":[],"learners":[]},"members":[],"x":{"objects":[1]}, "objects" :\n[ ] } `,
    ];
    for (const [k, text] of texts.entries()) {
      const file = path.join(dir, `m${k}`);
      await v1File(file, text, objects.length);
      const { manifest, version, dataStart } = await readManifest(file);
      expect(version).to.equal(1);
      expect(dataStart).to.equal(16 + Buffer.byteLength(text));
      expect(manifest, `manifest ${k}`).to.deep.equal(JSON.parse(text));
    }
  });

  it('round-trips strings holding `},{`, `]`, quotes, backslashes and non-ASCII through a snapshot and a load', async () => {
    const tricky = 'a"},{"id":"evil","size":9}],\\"\\\\ é 雪 \u2028 {[';
    const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    s.apply(put('o1', 'one', { contentType: tricky, owner: tricky, idempotencyKey: `${tricky}\\`, fingerprint: Buffer.from('ff', 'hex') }));
    s.apply(put('o2', 'two', { contentType: '}' }));
    const file = path.join(dir, 'snap');
    const m: SnapshotMeta = { index: 3, term: 1, conf: { voters: ['n1'], learners: [] } };
    await s.writeSnapshot(file, m);
    const { manifest } = await readManifest(file);
    expect(manifest.objects.map((o) => o.id)).to.deep.equal(['o1', 'o2']);
    expect(manifest.objects[0]).to.include({ contentType: tricky, owner: tricky, idempotencyKey: `${tricky}\\`, fingerprint: 'ff' });
    const again = await ObjectStore.open({ packsDir: path.join(dir, 'packs-2') });
    await again.loadFromSnapshot(file);
    expect(again.get('o1')).to.deep.equal(s.get('o1'));
    expect(again.get('o2')).to.deep.equal(s.get('o2'));
    expect(again.size).to.equal(2);
    expect((await again.read('o1'))!.toString()).to.equal('one');
    expect(again.byIdempotencyKey(tricky, `${tricky}\\`, 1_700_000_000_001)!.id).to.equal('o1');
    expect(again.bytesOwnedBy(tricky)).to.equal(3);
    await again.close();
    await s.close();
  });

  it('refuses truncated manifests', async () => {
    const text = JSON.stringify({ ...HEADER, objects: Array.from({ length: 5000 }, (_, i) => entry(i)) });
    for (const cut of [1, 2, 10, text.indexOf('"objects"') + 5, text.indexOf('[') + 1, text.length >> 1, text.length - 2, text.length - 1]) {
      const file = path.join(dir, `cut-${cut}`);
      await v1File(file, text.slice(0, -cut), 5000); // length field says the cut length: a manifest that ends early
      const err = await readManifest(file).catch((e: unknown) => e);
      expect(err, `cut ${cut}`).to.be.instanceOf(SnapshotFormatError);
    }
    // the file ends inside the manifest the header announces
    const file = path.join(dir, 'short');
    await v1File(file, text, 0);
    await fs.truncate(file, 16 + (text.length >> 1));
    expect(await readManifest(file).catch((e: unknown) => (e as Error).message)).to.match(/manifest truncated/);
  });

  it('refuses garbage inside the objects array and entries the store cannot use', async () => {
    const good = JSON.stringify(entry(0));
    const bad = [
      `[${good},garbage,${good}]`,
      `[${good},1]`,
      `[${good},"x"]`,
      `[${good},[]]`,
      `[${good}${good}]`,
      `[${good},,${good}]`,
      `[${good},]`,
      `[,${good}]`,
      `[${good.slice(0, -1)},"x":}]`, // broken inside an entry
      `[{"id":"o1"}]`,
      `[${JSON.stringify({ ...entry(0), size: -1 })}]`,
      `[${JSON.stringify({ ...entry(0), offset: '1' })}]`,
      `[${JSON.stringify({ ...entry(0), id: 5 })}]`,
      `[${JSON.stringify({ ...entry(0), pack: 0 })}]`, // a v1 file has no pack list
      `[${good}`,
      `[${good}]]`,
      `[${good}]}{"objects":[]`,
    ];
    for (const [k, objects] of bad.entries()) {
      const file = path.join(dir, `bad-${k}`);
      await v1File(file, `${JSON.stringify(HEADER).slice(0, -1)},"objects":${objects}}`, 10);
      const err = await readManifest(file).catch((e: unknown) => e);
      expect(err, objects).to.be.instanceOf(SnapshotFormatError);
    }
    for (const manifest of ['', '[]', '{}', 'null', JSON.stringify(HEADER), JSON.stringify({ ...HEADER, objects: {} }), JSON.stringify({ ...HEADER, objects: [] }) + 'x']) {
      const file = path.join(dir, 'bad');
      await v1File(file, manifest, 0);
      expect(await readManifest(file).catch((e: unknown) => e), manifest).to.be.instanceOf(SnapshotFormatError);
    }
    // v2: a pack reference must name a listed pack
    const file = path.join(dir, 'v2');
    const json = Buffer.from(`${JSON.stringify(HEADER).slice(0, -1)},"objects":[${JSON.stringify(entry(0, { pack: 1 }))}]}`);
    await fs.writeFile(file, Buffer.concat([v2Header(['00000000000000000001-00000000000000000001'], json.length), json]));
    expect(await readManifest(file).catch((e: unknown) => (e as Error).message)).to.match(/refers to pack 1/);
  });

  // One JSON.parse of this manifest held the loop ~600 ms on the 2-core dev machine. Sliced, the stalls
  // left are the test process's garbage collections and the machine's load (32–146 ms here, 257 ms once on
  // a loaded CI machine), neither of them the loader's doing. So each stall counts only the CPU time this
  // thread spent in it outside collections: what the loader itself held the loop for. The bound sits
  // far below a return to parsing in one go.
  it('loads a manifest of 200,000 objects without holding the event loop', async function () {
    this.timeout(60_000);
    const n = 200_000;
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(JSON.stringify(entry(i, { owner: `t${i % 10}`, idempotencyKey: `key-${i}` })));
    const file = path.join(dir, 'big');
    await v1File(file, `${JSON.stringify(HEADER).slice(0, -1)},"objects":[${parts.join(',')}]}`, n);
    const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
    const stalls: { from: number; to: number; cpuMs: number }[] = [];
    const cpuMs = (): number => {
      const { user, system } = process.threadCpuUsage();
      return (user + system) / 1000;
    };
    const collections: { from: number; to: number }[] = [];
    const record = (entries: PerformanceEntry[]): void => {
      for (const e of entries) collections.push({ from: e.startTime, to: e.startTime + e.duration });
    };
    const gc = new PerformanceObserver((list) => record(list.getEntries()));
    gc.observe({ entryTypes: ['gc'] });
    let last = performance.now();
    let lastCpu = cpuMs();
    const stalled = (): void => {
      const now = performance.now();
      const cpu = cpuMs();
      stalls.push({ from: last, to: now, cpuMs: cpu - lastCpu });
      last = now;
      lastCpu = cpu;
    };
    const timer = setInterval(stalled, 1);
    try {
      last = performance.now();
      lastCpu = cpuMs();
      await s.loadFromSnapshot(file);
      stalled();
    } finally {
      clearInterval(timer);
      record(gc.takeRecords()); // the entries not delivered yet
      gc.disconnect();
    }
    // each stall's CPU time less the collections inside it
    const overlap = (a: { from: number; to: number }, b: { from: number; to: number }): number => Math.max(0, Math.min(a.to, b.to) - Math.max(a.from, b.from));
    const longest = Math.max(...stalls.map((st) => st.cpuMs - collections.reduce((sum, c) => sum + overlap(st, c), 0)));
    expect(s.size).to.equal(n);
    const { offset: _offset, ...meta } = entry(199_999, { owner: 't9', idempotencyKey: 'key-199999' });
    expect(s.get('o199999')).to.deep.equal(meta);
    expect(s.bytesOwnedBy('t3')).to.equal(n / 10);
    expect((await s.read('o12345'))!.toString()).to.equal('a');
    await s.close();
    expect(longest, `longest stall ${longest.toFixed(1)} ms of CPU outside collections`).to.be.lessThan(150);
  });
});
