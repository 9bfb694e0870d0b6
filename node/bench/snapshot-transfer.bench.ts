// npm run bench:snapshot-transfer [-- --mib 256 --rounds 3]
//
// CPU time per MiB of one snapshot transfer between two real WsTransports (sender and receiver in this
// process, over loopback; the receiver checks the sha256, fsyncs and renames as in production), unpaced,
// from a file read into one reused 1 MiB buffer as the object store's source does. The baseline, measured
// in the same run on the same file: reading it once and hashing it (sha256), the least one side of a
// transfer does. Prints per round: wall time, CPU ms/MiB (user and system) of the transfer, of the
// baseline, and their ratio. CPU time is that of the whole process, the libuv thread pool included.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SnapshotMeta } from '../src/raft/types.js';
import { Harness } from '../src/transport/test-helpers.js';
import type { SnapshotSource } from '../src/transport/types.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const MiB = 1 << 20;
const SIZE = arg('mib', 256) * MiB;
const ROUNDS = arg('rounds', 3);

async function* pieces(file: string): AsyncGenerator<Buffer> {
  const fd = await fsp.open(file, 'r');
  const buf = Buffer.allocUnsafe(MiB);
  try {
    for (;;) {
      const { bytesRead } = await fd.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fd.close();
  }
}

async function measure(what: () => Promise<void>): Promise<{ ms: number; user: number; system: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await what();
  const used = process.cpuUsage(cpu);
  return { ms: performance.now() - started, user: used.user / 1000, system: used.system / 1000 };
}

const dir = await fsp.mkdtemp(join(tmpdir(), 'stego-bench-transfer-'));
const file = join(dir, 'snapshot.bin');
const h = new Harness();
try {
  const block = randomBytes(16 * MiB);
  const out = await fsp.open(file, 'w');
  for (let at = 0; at < SIZE; at += block.length) await out.write(block, 0, Math.min(block.length, SIZE - at));
  await out.close();
  const a = await h.node('a', { maxInflightBytes: 64 * MiB });
  const b = await h.node('b', { maxInflightBytes: 64 * MiB });
  h.mesh(a, b);
  await h.linked(a, b);
  const source: SnapshotSource = { size: SIZE, read: () => pieces(file) };
  const mib = SIZE / MiB;
  const perMiB = (ms: number): string => (ms / mib).toFixed(2);
  process.stdout.write(`bench:snapshot-transfer ${new Date().toISOString()} ${mib} MiB, ${ROUNDS} rounds\n`);
  process.stdout.write('| round | transfer wall ms | transfer CPU ms/MiB (user + sys) | baseline (read + sha256) CPU ms/MiB | ratio |\n|---:|---:|---|---:|---:|\n');
  for (let round = 1; round <= ROUNDS; round++) {
    const meta: SnapshotMeta = { index: 100 + round, term: 1, conf: { voters: ['a', 'b'], learners: [] } };
    const t = await measure(async () => {
      await a.sendSnapshot('b', meta, source);
    });
    const base = await measure(async () => {
      const hash = createHash('sha256');
      for await (const p of pieces(file)) hash.update(p);
      hash.digest();
    });
    const tCpu = t.user + t.system;
    const bCpu = base.user + base.system;
    process.stdout.write(
      `| ${round} | ${t.ms.toFixed(0)} | ${perMiB(tCpu)} (${perMiB(t.user)} + ${perMiB(t.system)}) | ${perMiB(bCpu)} | ${(tCpu / bCpu).toFixed(1)}× |\n`,
    );
  }
} finally {
  await h.cleanup();
  await fsp.rm(dir, { recursive: true, force: true });
}
