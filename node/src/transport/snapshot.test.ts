import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Message } from '../raft/message.js';
import type { NodeId, SnapshotMeta } from '../raft/types.js';
import { RemoteError, TransportError } from './errors.js';
import { Harness, heartbeat, waitFor } from './test-helpers.js';
import { Pacer } from './snapshot.js';
import type { SnapshotSource } from './types.js';
import type { WsTransport } from './ws-transport.js';

const META: SnapshotMeta = { index: 1200, term: 3, conf: { voters: ['a', 'b'], learners: [] } };
const MiB = 1 << 20;

interface Received {
  from: NodeId;
  meta: SnapshotMeta;
  path: string;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const piece of createReadStream(path)) hash.update(piece as Buffer);
  return hash.digest('hex');
}

/**
 * The file as a SnapshotSource that reads it into one buffer, reused for every piece, as the object store's
 * does: a sender that kept a piece past asking for the next would send the wrong bytes, and the receiver's
 * sha256 check would refuse them.
 */
function fileSource(path: string, size: number, onBytes?: (total: number) => void): SnapshotSource {
  return {
    size,
    async *read() {
      const fd = await fsp.open(path, 'r');
      const buf = Buffer.allocUnsafe(256 << 10);
      let total = 0;
      try {
        for (;;) {
          const { bytesRead } = await fd.read(buf, 0, buf.length, null);
          if (bytesRead === 0) return;
          total += bytesRead;
          onBytes?.(total);
          yield buf.subarray(0, bytesRead);
        }
      } finally {
        await fd.close();
      }
    },
  };
}

describe('WsTransport snapshot streaming', function () {
  this.timeout(120_000);
  const h = new Harness();
  let dir: string;
  let file: string;
  let fileSha: string;
  const size = 50 * MiB + 12_345; // not a multiple of the chunk size

  before(async () => {
    dir = await fsp.mkdtemp(join(tmpdir(), 'snapshot-test-'));
    file = join(dir, 'state.snap');
    await fsp.writeFile(file, randomBytes(size));
    fileSha = await sha256File(file);
  });
  after(() => fsp.rm(dir, { recursive: true, force: true }));
  afterEach(() => h.cleanup());

  async function pair(): Promise<{ a: WsTransport; b: WsTransport; received: Received[] }> {
    const a = await h.node('a');
    const b = await h.node('b');
    h.mesh(a, b);
    await h.linked(a, b);
    const received: Received[] = [];
    b.handleSnapshots(async (from, meta, path) => void received.push({ from, meta, path }));
    return { a, b, received };
  }

  it('streams a 50 MB snapshot intact while heartbeats on the same link keep flowing', async () => {
    const { a, b, received } = await pair();
    const sentAt = new Map<number, number>();
    const latencies: number[] = [];
    b.on('message', (m: Message) => {
      const t0 = sentAt.get(m.term);
      if (t0 !== undefined) latencies.push(performance.now() - t0);
    });
    let seq = 0;
    const beat = setInterval(() => {
      seq++;
      sentAt.set(seq, performance.now());
      a.send(heartbeat('a', 'b', seq));
    }, 10);
    const started = performance.now();
    let result;
    try {
      result = await a.sendSnapshot('b', META, fileSource(file, size));
    } finally {
      clearInterval(beat);
    }
    const ms = performance.now() - started;
    expect(result).to.deep.equal({ resumedFrom: 0, bytesSent: size });
    expect(received).to.have.length(1);
    expect(received[0]).to.deep.include({ from: 'a', meta: META });
    expect((await fsp.stat(received[0]!.path)).size).to.equal(size);
    expect(await sha256File(received[0]!.path)).to.equal(fileSha);

    latencies.sort((x, y) => x - y);
    const p50 = latencies[Math.floor(latencies.length / 2)]!;
    const max = latencies[latencies.length - 1]!;
    console.log(
      `      50 MB in ${ms.toFixed(0)} ms (${((size / MiB) / (ms / 1000)).toFixed(0)} MiB/s); ` +
        `heartbeat latency during the stream: n=${latencies.length} p50 ${p50.toFixed(1)} ms max ${max.toFixed(1)} ms`,
    );
    expect(latencies.length).to.be.greaterThan(0);
    // Generous: a heartbeat waits behind at most about one 1 MiB chunk, not behind the whole snapshot.
    expect(max).to.be.below(2000);
  });

  it('resumes an interrupted snapshot from the offset the receiver already holds', async () => {
    const { a, b, received } = await pair();
    let dropped = false;
    const interrupted = fileSource(file, size, (total) => {
      if (!dropped && total >= 20 * MiB) {
        dropped = true;
        a.dropLink('b');
      }
    });
    const err = await a.sendSnapshot('b', META, interrupted).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TransportError);
    expect(err).to.include({ code: 'link_lost' });
    expect(received).to.have.length(0);

    await h.linked(a, b);
    const result = await a.sendSnapshot('b', META, fileSource(file, size));
    console.log(`      resumed from ${(result.resumedFrom / MiB).toFixed(1)} MiB, sent ${(result.bytesSent / MiB).toFixed(1)} MiB`);
    expect(result.resumedFrom).to.be.greaterThan(0);
    expect(result.resumedFrom + result.bytesSent).to.equal(size);
    await waitFor('snapshot event', () => received.length === 1);
    expect(await sha256File(received[0]!.path)).to.equal(fileSha);
    const leftovers = (await fsp.readdir(dirname(received[0]!.path))).filter((n) => n.endsWith('.partial'));
    expect(leftovers).to.deep.equal([]);
  });

  it('refuses a resumed snapshot whose partial file was corrupted, then succeeds from zero', async () => {
    const { a, b, received } = await pair();
    const small = join(dir, 'small.snap');
    const content = randomBytes(6 * MiB);
    await fsp.writeFile(small, content);
    let dropped = false;
    const err = await a
      .sendSnapshot('b', META, fileSource(small, content.length, (total) => {
        if (!dropped && total >= 3 * MiB) {
          dropped = true;
          a.dropLink('b');
        }
      }))
      .catch((e: unknown) => e);
    expect(err).to.include({ code: 'link_lost' });
    await h.linked(a, b);
    const staging = h.stagingDirs.get(b)!;
    const partial = (await fsp.readdir(staging)).find((n) => n.endsWith('.partial'));
    expect(partial, 'a partial file is kept for the resume').to.not.equal(undefined);
    const fd = await fsp.open(join(staging, partial!), 'r+');
    await fd.write(Buffer.from('corrupted!'), 0, 10, 100);
    await fd.close();

    const refused = await a.sendSnapshot('b', META, fileSource(small, content.length)).catch((e: unknown) => e);
    expect(refused).to.be.instanceOf(RemoteError);
    expect(refused).to.include({ code: 'checksum_mismatch' });
    const result = await a.sendSnapshot('b', META, fileSource(small, content.length));
    expect(result.resumedFrom).to.equal(0);
    await waitFor('snapshot event', () => received.length === 1);
    expect((await fsp.readFile(received[0]!.path)).equals(content)).to.equal(true);
  });

  it('paces a snapshot to the configured rate: no faster than the rate after a window-sized burst', async () => {
    const a = await h.node('a', { snapshotBytesPerSecond: 16 * MiB, snapshotWindowBytes: 4 * MiB });
    const b = await h.node('b');
    h.mesh(a, b);
    await h.linked(a, b);
    const received: Received[] = [];
    b.handleSnapshots(async (from, meta, path) => void received.push({ from, meta, path }));
    const content = randomBytes(20 * MiB);
    const small = join(dirname(file), 'paced.bin');
    await fsp.writeFile(small, content);
    const started = performance.now();
    await a.sendSnapshot('b', META, fileSource(small, content.length));
    const ms = performance.now() - started;
    // 4 MiB of burst, then 16 MiB at 16 MiB/s: at least a second, however fast the machine
    expect(ms).to.be.at.least(950);
    await waitFor('snapshot event', () => received.length === 1);
    expect((await fsp.readFile(received[0]!.path)).equals(content)).to.equal(true);
  });

  it('runs one snapshot per peer at a time and reports a source shorter than announced', async () => {
    const { a } = await pair();
    const first = a.sendSnapshot('b', META, fileSource(file, size));
    const second = await a.sendSnapshot('b', META, fileSource(file, size)).catch((e: unknown) => e);
    expect(second).to.include({ code: 'busy' });
    await first;
    const short: SnapshotSource = {
      size: 1000,
      async *read() {
        yield Buffer.alloc(400);
      },
    };
    const err = await a.sendSnapshot('b', { ...META, index: 1300 }, short).catch((e: unknown) => e);
    expect(err).to.include({ code: 'source_size_mismatch' });
  });
});

describe('Pacer', () => {
  it('lets a burst through at once, then spaces bytes at the rate', () => {
    const p = new Pacer(1000, 500); // 1000 B/s, bursts of 500
    expect(p.take(500, 0)).to.equal(0);
    expect(p.take(100, 0)).to.equal(100); // 100 B owed at 1000 B/s
    expect(p.take(100, 100)).to.equal(100); // the first 100 B were paid for by the wait
    expect(p.take(100, 300)).to.equal(0); // 100 ms idle bought them
  });

  it('saves no more than one burst while idle', () => {
    const p = new Pacer(1000, 500);
    expect(p.take(500, 0)).to.equal(0);
    expect(p.take(500, 60_000)).to.equal(0); // a minute idle: one burst, not 60,000 B
    expect(p.take(200, 60_000)).to.equal(200);
  });

  it('over any span sends at most burst + rate × time', () => {
    const p = new Pacer(4096, 1024);
    let now = 0;
    let sent = 0;
    for (let i = 0; i < 1000; i++) {
      now += p.take(300, now);
      sent += 300;
      expect(sent).to.be.at.most(1024 + (4096 * now) / 1000 + 300);
    }
    expect(sent / (now / 1000)).to.be.within(4096 * 0.95, 4096 * 1.05);
  });
});
