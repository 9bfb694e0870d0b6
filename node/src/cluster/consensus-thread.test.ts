// The consensus thread's message API for client puts and streamed reads: a real worker_thread running a
// one-member cluster, driven through ConsensusThread as the HTTP routes drive it.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { loadConfig } from '../config.js';
import { silentLogger } from '../log.js';
import type { PutClient } from './api.js';
import { ConsensusThread } from './consensus-thread.js';
import { ClusterError } from './errors.js';
import { freePort } from '../../test/ports.js';


async function until(what: string, ok: () => boolean | Promise<boolean>, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function drain(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('cluster: ConsensusThread (client puts and streamed reads across the thread boundary)', function () {
  this.timeout(60_000);
  let dir: string;
  let thread: ConsensusThread;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stego-consensus-thread-'));
    const raftPort = await freePort();
    const cfg = loadConfig({
      NODE_ID: 'n1',
      PEERS: `n1=127.0.0.1:${raftPort}`,
      DATA_DIR: dir,
      STEGO_CLUSTER_SECRET: 'consensus-thread-test-secret',
      STEGO_LOG_LEVEL: 'silent',
      // a snapshot after every few KiB of log, so objects are read back from the snapshot file
      STEGO_SNAPSHOT_BYTES: '1024',
    });
    thread = await ConsensusThread.start(cfg, silentLogger(), () => undefined);
    await until('a leader', () => thread.leaderId === 'n1');
  });

  after(async () => {
    await thread?.stop({ transferLeadership: false });
    await rm(dir, { recursive: true, force: true });
  });

  it('runs its event loop at the configured priority (nice -20 by default) on Linux with CAP_SYS_NICE', function () {
    if (process.platform !== 'linux' || process.getuid?.() !== 0) this.skip();
    // worker_threads name their OS thread after the Worker's name ('consensus')
    const tasks = readdirSync('/proc/self/task').filter((t) => readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === 'consensus');
    expect(tasks).to.have.length(1);
    const stat = readFileSync(`/proc/self/task/${tasks[0]}/stat`, 'utf8');
    // fields after "(comm) ": state is field 3, nice field 19
    const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    expect(nice).to.equal(-20);
  });

  const client = (over: Partial<PutClient> = {}): PutClient => ({ owner: 'alice', quotaBytes: 0, fingerprint: 'aa'.repeat(16), ...over });

  it('stores a client put with its owner, replays the same key and request, refuses the key with another request', async () => {
    const bytes = randomBytes(300_000);
    const first = await thread.putObjectFor(bytes, sha(bytes), client({ idempotencyKey: 'k1' }));
    expect(first.replayed).to.equal(false);
    expect(first.meta).to.include({ size: bytes.length, owner: 'alice', sha256: sha(bytes) });
    const again = await thread.putObjectFor(bytes, sha(bytes), client({ idempotencyKey: 'k1' }));
    expect(again).to.deep.include({ replayed: true });
    expect(again.meta.id).to.equal(first.meta.id);
    const reused = await thread.putObjectFor(bytes, sha(bytes), client({ idempotencyKey: 'k1', fingerprint: 'bb'.repeat(16) })).catch((e: unknown) => e);
    expect(reused).to.be.instanceOf(ClusterError);
    expect((reused as ClusterError).code).to.equal('idempotency_key_reused');
    expect(await thread.objectMeta(first.meta.id)).to.include({ id: first.meta.id, owner: 'alice' });
    expect(await thread.objectMeta('00000000-0000-4000-8000-000000000000')).to.equal(undefined);
  });

  it('keeps the quota per owner as a domain error (quota_exceeded)', async () => {
    const bytes = randomBytes(200_000);
    await thread.putObjectFor(bytes, sha(bytes), client({ owner: 'bob', quotaBytes: 300_000 }));
    const over = await thread.putObjectFor(bytes, sha(bytes), client({ owner: 'bob', quotaBytes: 300_000 })).catch((e: unknown) => e);
    expect(over).to.be.instanceOf(ClusterError);
    expect((over as ClusterError).code).to.equal('quota_exceeded');
    // another owner is not charged for bob's bytes
    expect((await thread.putObjectFor(bytes, sha(bytes), client({ owner: 'carol', quotaBytes: 300_000 }))).replayed).to.equal(false);
  });

  it('streams large and small objects byte-identical, piece by piece', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 17);
    const small = randomBytes(1000);
    const b = await thread.putObjectFor(big, sha(big), client({ owner: 'dave' }));
    const s = await thread.putObjectFor(small, sha(small), client({ owner: 'dave' }));
    for (const stale of [false, true]) {
      const gotBig = await thread.openObject(b.meta.id, stale);
      expect(gotBig!.meta.size).to.equal(big.length);
      expect((await drain(gotBig!.stream)).equals(big)).to.equal(true);
      const gotSmall = await thread.openObject(s.meta.id, stale);
      expect((await drain(gotSmall!.stream)).equals(small)).to.equal(true);
    }
    expect(await thread.openObject('00000000-0000-4000-8000-000000000000', false)).to.equal(undefined);
  });

  it('serves many downloads at once byte-identical, sharing the piece-read slots on the consensus thread', async () => {
    const big = randomBytes(2 * 1024 * 1024 + 5);
    const put = await thread.putObjectFor(big, sha(big), client({ owner: 'frank' }));
    const streams = await Promise.all(Array.from({ length: 12 }, (_, i) => thread.openObject(put.meta.id, i % 2 === 0)));
    // one stream stalls after its first piece: it holds no slot, the others still finish
    await new Promise<void>((resolve) => streams[0]!.stream.once('readable', () => resolve()));
    const done = await Promise.all(streams.slice(1).map((s) => drain(s!.stream)));
    for (const got of done) expect(got.equals(big)).to.equal(true);
    expect((await drain(streams[0]!.stream)).equals(big)).to.equal(true);
  });

  it('a reader that stops reading holds a bounded window; an abandoned stream leaves the thread serving', async () => {
    const big = randomBytes(4 * 1024 * 1024);
    const put = await thread.putObjectFor(big, sha(big), client({ owner: 'erin' }));
    const got = (await thread.openObject(put.meta.id, false))!;
    // ask for the first piece only, then stop consuming
    await new Promise<void>((resolve) => got.stream.once('readable', () => resolve()));
    const held = got.stream.readableLength;
    // several round trips to the consensus thread: a stream that kept fetching would grow meanwhile
    for (let i = 0; i < 5; i++) await thread.status();
    expect(got.stream.readableLength).to.equal(held);
    expect(held).to.be.at.most(256 * 1024);
    got.stream.destroy();
    // the rest of a partly read stream is still served whole to the next reader
    const again = (await thread.openObject(put.meta.id, true))!;
    expect((await drain(again.stream)).equals(big)).to.equal(true);
  });
});
