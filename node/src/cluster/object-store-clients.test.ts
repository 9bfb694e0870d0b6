// Client-owned puts: owner, quota and Idempotency-Key decided when the entry is applied (the same on
// every replica), kept across snapshots, and streamed reads.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { decodeCommand, encodeCommand, type PutCommand } from './commands.js';
import { IDEMPOTENCY_KEY_TTL_MS, ObjectStore } from './object-store.js';

const T0 = 1_700_000_000_000;

function clientPut(id: string, text: string, extra: Partial<PutCommand> = {}): PutCommand {
  const bytes = Buffer.from(text);
  return {
    kind: 'put',
    id,
    sha256: createHash('sha256').update(bytes).digest(),
    createdAt: T0,
    contentType: 'image/png',
    bytes,
    owner: 'alice',
    quotaBytes: 0,
    fingerprint: createHash('sha256').update(`fp:${text}`).digest(),
    ...extra,
  };
}

async function drain(stream: NodeJS.ReadableStream): Promise<{ bytes: Buffer; pieces: number }> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(p as Buffer);
  return { bytes: Buffer.concat(parts), pieces: parts.length };
}

describe('cluster: client puts (owner, quota, Idempotency-Key)', () => {
  it('round-trips owner, quota, key and fingerprint through the command codec; plain puts keep their old encoding', () => {
    const cmd = clientPut('o1', 'png bytes', { idempotencyKey: 'order-42', quotaBytes: 1000 });
    const dec = decodeCommand(encodeCommand(cmd)) as PutCommand;
    expect(dec).to.include({ id: 'o1', owner: 'alice', quotaBytes: 1000, idempotencyKey: 'order-42', createdAt: T0 });
    expect(Buffer.from(dec.fingerprint!).equals(Buffer.from(cmd.fingerprint!))).to.equal(true);
    expect(Buffer.from(dec.bytes).toString()).to.equal('png bytes');
    const plain = encodeCommand({ kind: 'put', id: 'p', sha256: cmd.sha256, createdAt: T0, contentType: 'image/png', bytes: cmd.bytes });
    expect(plain[0]).to.equal(1);
  });

  it('a put under a remembered key is dropped at apply; after 24 h or a delete the key creates again; keys are per owner', async () => {
    const s = await ObjectStore.open();
    s.apply(clientPut('a', 'first', { idempotencyKey: 'k' }));
    s.apply(clientPut('b', 'second', { idempotencyKey: 'k', createdAt: T0 + 1000 }));
    expect(s.get('b')).to.equal(undefined);
    expect(s.byIdempotencyKey('alice', 'k', T0 + 1000)?.id).to.equal('a');
    s.apply(clientPut('c', 'bob', { idempotencyKey: 'k', owner: 'bob' }));
    expect(s.get('c')?.owner).to.equal('bob');
    // expired: a new object under the same key
    s.apply(clientPut('d', 'later', { idempotencyKey: 'k', createdAt: T0 + IDEMPOTENCY_KEY_TTL_MS }));
    expect(s.get('d')).to.not.equal(undefined);
    expect(s.byIdempotencyKey('alice', 'k', T0 + IDEMPOTENCY_KEY_TTL_MS)?.id).to.equal('d');
    // deleted: forgotten
    s.apply({ kind: 'delete', id: 'd' });
    expect(s.byIdempotencyKey('alice', 'k', T0 + IDEMPOTENCY_KEY_TTL_MS)).to.equal(undefined);
  });

  it('enforces the quota at apply, counting only the owner\'s objects, and frees it on delete', async () => {
    const s = await ObjectStore.open();
    s.apply(clientPut('a', 'x'.repeat(600), { quotaBytes: 1000 }));
    s.apply(clientPut('b', 'y'.repeat(600), { quotaBytes: 1000 }));
    expect(s.get('b')).to.equal(undefined);
    expect(s.bytesOwnedBy('alice')).to.equal(600);
    s.apply(clientPut('c', 'z'.repeat(600), { quotaBytes: 1000, owner: 'bob' }));
    expect(s.get('c')).to.not.equal(undefined);
    s.apply({ kind: 'delete', id: 'a' });
    expect(s.bytesOwnedBy('alice')).to.equal(0);
    s.apply(clientPut('b', 'y'.repeat(600), { quotaBytes: 1000 }));
    expect(s.get('b')).to.not.equal(undefined);
  });

  it('keeps owners, keys and fingerprints across a snapshot and streams objects piece by piece from it', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'store-clients-'));
    try {
      const s = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
      const big = 'p'.repeat(300_000);
      s.apply(clientPut('a', big, { idempotencyKey: 'k', quotaBytes: 1e6 }));
      const file = path.join(dir, 'snap');
      await s.writeSnapshot(file, { index: 1, term: 1, conf: { voters: ['n1'], learners: [] } });
      const again = await ObjectStore.open({ packsDir: path.join(dir, 'packs') });
      await again.loadFromSnapshot(file);
      expect(again.get('a')).to.include({ owner: 'alice', idempotencyKey: 'k' });
      expect(again.get('a')?.fingerprint).to.equal(s.get('a')?.fingerprint);
      expect(again.byIdempotencyKey('alice', 'k', T0)?.id).to.equal('a');
      expect(again.bytesOwnedBy('alice')).to.equal(300_000);
      const fromFile = again.openRead('a', 64 * 1024)!;
      const read = await drain(fromFile.stream);
      expect(read.bytes.toString()).to.equal(big);
      expect(read.pieces).to.equal(Math.ceil(300_000 / (64 * 1024)));
      const fromMemory = await drain(s.openRead('a', 100_000)!.stream);
      expect(fromMemory.bytes.toString()).to.equal(big);
      expect(fromMemory.pieces).to.equal(3);
      await again.close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
