// Chunked, back-pressured, resumable snapshot streaming over one link (protocol in docs/transport.md).
//
// sender                                   receiver
//   snapOffer {sid, meta, size}       →      opens/creates the partial file for (from, term, index, size)
//                                     ←      snapAccept {sid, offset}   (bytes it already holds)
//   snapChunk {sid, offset, data}     →      appends at offset (in order), then
//                                     ←      snapAck {sid, offset}      (bytes durable in the page cache)
//   ... at most `windowBytes` unacknowledged, and each chunk waits for the previous one to reach the kernel
//   snapEnd {sid, sha256 of all bytes} →     checks size + sha256, fsyncs, renames, fsyncs the dir, hands
//                                            the file to the receiver's handler and waits for it
//                                     ←      snapDone {sid, ok, code?, message?}
import { createHash, type Hash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeId, SnapshotMeta } from '../raft/types.js';
import { newNonce } from './auth.js';
import type { Frame, FrameOf } from './codec.js';
import { RemoteError, TransportError } from './errors.js';
import type { SnapshotSendResult, SnapshotSource } from './types.js';

export interface SnapshotTuning {
  chunkBytes: number;
  windowBytes: number;
  /** Sending rate cap (0: none); the window is also the largest burst. */
  bytesPerSecond: number;
  /** No acknowledgement for this long aborts the transfer. */
  stallMs: number;
}

/** Writes a frame on one link; resolves once the bytes reached the kernel, rejects if the link closed. */
export type FrameWriter = (f: Frame) => Promise<void>;

type SenderFrame = FrameOf<'snapAccept'> | FrameOf<'snapAck'> | FrameOf<'snapDone'>;

export class SnapshotSender {
  readonly sid = newNonce();
  private accepted: number | undefined;
  private acked = 0;
  private done: FrameOf<'snapDone'> | undefined;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly write: FrameWriter,
    private readonly peer: NodeId,
    private readonly tuning: SnapshotTuning,
  ) {}

  onFrame(f: SenderFrame): void {
    if (f.t === 'snapAccept') {
      this.accepted = f.offset;
      this.acked = f.offset; // the bytes the receiver already holds count as acknowledged
    }
    else if (f.t === 'snapAck') this.acked = Math.max(this.acked, f.offset);
    else this.done = f;
    this.notify();
  }

  fail(err: Error): void {
    this.error ??= err;
    this.notify();
  }

  async run(meta: SnapshotMeta, source: SnapshotSource): Promise<SnapshotSendResult> {
    await this.write({ t: 'snapOffer', sid: this.sid, meta, size: source.size });
    await this.until(() => this.accepted !== undefined || this.done !== undefined);
    this.throwIfRefused();
    const resumedFrom = Math.min(this.accepted!, source.size);
    const hash = createHash('sha256');
    const end = await this.stream(source, resumedFrom, hash);
    if (end !== source.size) {
      throw new TransportError('source_size_mismatch', `snapshot source yielded ${end} bytes, announced ${source.size}`);
    }
    await this.write({ t: 'snapEnd', sid: this.sid, sha256: hash.digest('hex') });
    await this.until(() => this.done !== undefined);
    this.throwIfRefused();
    return { resumedFrom, bytesSent: end - resumedFrom };
  }

  /**
   * Reads the source once from its first byte: every byte is hashed, the ones from `from` on are sent in
   * chunks of at most `chunkBytes` (views of the source's pieces, never copied here). Returns the bytes read.
   */
  private async stream(source: SnapshotSource, from: number, hash: Hash): Promise<number> {
    const pacer = this.tuning.bytesPerSecond > 0 ? new Pacer(this.tuning.bytesPerSecond, this.tuning.windowBytes) : undefined;
    let read = 0;
    for await (const piece of source.read()) {
      // paced as read, not as sent: hashing the prefix of a resumed transfer is the same CPU work
      const wait = pacer?.take(piece.length, Date.now()) ?? 0;
      if (wait > 0) await sleep(wait);
      hash.update(piece);
      // the receiver already holds the first `from` bytes: hashed above, not sent
      for (let at = Math.max(0, from - read); at < piece.length; ) {
        const n = Math.min(this.tuning.chunkBytes, piece.length - at);
        await this.sendChunk(piece.subarray(at, at + n), read + at);
        at += n;
      }
      read += piece.length;
    }
    if (read < from) throw new TransportError('source_size_mismatch', `snapshot source ended at ${read} bytes, before the resume offset ${from}`);
    return read;
  }

  private async sendChunk(chunk: Uint8Array, offset: number): Promise<void> {
    await this.until(() => offset + chunk.length - this.acked <= this.tuning.windowBytes);
    // Awaiting the write keeps at most one chunk queued in user space, so a heartbeat sent on the
    // same link waits behind at most one chunk (plus what the kernel already holds). It also ends this
    // module's use of the chunk's bytes, which the source may then reuse.
    await this.write({ t: 'snapChunk', sid: this.sid, offset, data: chunk });
  }

  private throwIfRefused(): void {
    if (this.done && !this.done.ok) {
      throw new RemoteError(this.done.code ?? 'snapshot_refused', this.done.message ?? 'receiver refused the snapshot', this.peer);
    }
  }

  private async until(ready: () => boolean): Promise<void> {
    for (;;) {
      if (this.error) throw this.error;
      this.throwIfRefused();
      if (ready()) return;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new TransportError('stalled', `snapshot receiver ${this.peer} silent for ${this.tuning.stallMs} ms`)),
          this.tuning.stallMs,
        );
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/**
 * Paces a transfer to a byte rate, for links a snapshot shares with client traffic. (Pacing to spare the
 * consensus threads' CPU was measured and did not help: a slower transfer is more often outlived by the
 * log and repeated; docs/transport.md.) A token bucket: `burstBytes` may go at once after a pause,
 * beyond that bytes go at `bytesPerSecond`. Pure: the caller passes the clock.
 */
export class Pacer {
  private tokens: number;
  private at: number | undefined;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly burstBytes: number,
  ) {
    this.tokens = burstBytes;
  }

  /** Takes `bytes` at time `nowMs`; returns how many ms to wait before sending them (0: at once). */
  take(bytes: number, nowMs: number): number {
    if (this.at !== undefined) this.tokens = Math.min(this.burstBytes, this.tokens + ((nowMs - this.at) * this.bytesPerSecond) / 1000);
    this.at = nowMs;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.bytesPerSecond);
  }
}

/** One snapshot being received from one peer. */
interface Incoming {
  sid: string;
  from: NodeId;
  meta: SnapshotMeta;
  size: number;
  partialPath: string;
  fd: fsp.FileHandle;
  offset: number;
  hash: Hash;
  /** Chunks are written strictly in order: each write chains on the previous one. */
  queue: Promise<void>;
  aborted: boolean;
  reply: (f: Frame) => void;
}

/** Takes over a verified, fsync'd file; the sender is answered once it settles (see SnapshotHandler). */
export type SnapshotCompleted = (from: NodeId, meta: SnapshotMeta, path: string) => Promise<void>;

/**
 * The receiving side for all peers: at most one transfer per sending peer. Partial files survive link
 * loss (and restarts) and are named by (sender, term, index, size), so the next offer for the same
 * snapshot resumes where the last one stopped.
 */
export class SnapshotInbox {
  private readonly active = new Map<NodeId, Incoming>();
  /** Offers are handled one at a time so a retried offer never races the one it replaces. */
  private offers: Promise<void> = Promise.resolve();

  constructor(
    private readonly stagingDir: string,
    private readonly completed: SnapshotCompleted,
  ) {}

  async init(): Promise<void> {
    await fsp.mkdir(this.stagingDir, { recursive: true });
  }

  onOffer(from: NodeId, f: FrameOf<'snapOffer'>, reply: (f: Frame) => void): Promise<void> {
    return this.serial(() => this.accept(from, f, reply));
  }

  private async accept(from: NodeId, f: FrameOf<'snapOffer'>, reply: (f: Frame) => void): Promise<void> {
    await this.abortNow(from);
    const partialPath = join(this.stagingDir, `${snapshotBaseName(from, f.meta)}-${f.size}.partial`);
    try {
      const held = await existingBytes(partialPath, f.size);
      const fd = await fsp.open(partialPath, held > 0 ? 'r+' : 'w');
      await fd.truncate(held);
      const hash = createHash('sha256');
      await hashFile(fd, held, hash);
      const incoming: Incoming = {
        sid: f.sid, from, meta: f.meta, size: f.size, partialPath, fd, offset: held, hash,
        queue: Promise.resolve(), aborted: false, reply,
      };
      this.active.set(from, incoming);
      await this.dropStalePartials(f.meta.index, partialPath);
      reply({ t: 'snapAccept', sid: f.sid, offset: held });
    } catch (err) {
      reply({ t: 'snapDone', sid: f.sid, ok: false, code: 'io_error', message: (err as Error).message });
    }
  }

  onChunk(from: NodeId, f: FrameOf<'snapChunk'>): void {
    const inc = this.active.get(from);
    if (!inc || inc.sid !== f.sid) return; // a frame of a transfer we already dropped
    inc.queue = inc.queue.then(() => this.writeChunk(inc, f)).catch((err: Error) => this.refuse(inc, 'io_error', err.message, false));
  }

  onEnd(from: NodeId, f: FrameOf<'snapEnd'>): void {
    const inc = this.active.get(from);
    if (!inc || inc.sid !== f.sid) return;
    inc.queue = inc.queue.then(() => this.finish(inc, f.sha256)).catch((err: Error) => this.refuse(inc, 'io_error', err.message, false));
  }

  /**
   * The link to `from` closed: stop writing, keep the partial file for a resume. Runs on the offer chain
   * so a quick re-offer only measures the partial file once the last queued write has landed.
   */
  abort(from: NodeId): Promise<void> {
    return this.serial(() => this.abortNow(from));
  }

  private serial(step: () => Promise<void>): Promise<void> {
    this.offers = this.offers.catch(() => undefined).then(step);
    return this.offers;
  }

  private async abortNow(from: NodeId): Promise<void> {
    const inc = this.active.get(from);
    if (!inc) return;
    this.active.delete(from);
    inc.aborted = true;
    await inc.queue;
    await inc.fd.close().catch(() => undefined);
  }

  async abortAll(): Promise<void> {
    await Promise.all([...this.active.keys()].map((from) => this.abort(from)));
    await this.offers;
  }

  private async writeChunk(inc: Incoming, f: FrameOf<'snapChunk'>): Promise<void> {
    if (inc.aborted) return;
    if (f.offset !== inc.offset || inc.offset + f.data.byteLength > inc.size) {
      return this.refuse(inc, 'bad_chunk', `chunk at ${f.offset}+${f.data.byteLength}, expected offset ${inc.offset} of ${inc.size}`, false);
    }
    try {
      await inc.fd.write(f.data, 0, f.data.byteLength, inc.offset);
    } catch (err) {
      return this.refuse(inc, 'io_error', (err as Error).message, false);
    }
    inc.hash.update(f.data);
    inc.offset += f.data.byteLength;
    inc.reply({ t: 'snapAck', sid: inc.sid, offset: inc.offset });
  }

  private async finish(inc: Incoming, sha256: string): Promise<void> {
    if (inc.aborted) return;
    if (inc.offset !== inc.size) return this.refuse(inc, 'size_mismatch', `received ${inc.offset} of ${inc.size} bytes`, true);
    const digest = inc.hash.digest('hex');
    if (digest !== sha256) return this.refuse(inc, 'checksum_mismatch', `sha256 ${digest} differs from the sender's ${sha256}`, true);
    const finalPath = join(this.stagingDir, `${snapshotBaseName(inc.from, inc.meta)}.snap`);
    try {
      await inc.fd.sync();
      await inc.fd.close();
      await fsp.rename(inc.partialPath, finalPath);
      await fsyncDir(this.stagingDir);
    } catch (err) {
      return this.refuse(inc, 'io_error', (err as Error).message, false);
    }
    this.active.delete(inc.from);
    inc.aborted = true;
    try {
      await this.completed(inc.from, inc.meta, finalPath);
    } catch (err) {
      // the handler refused the file (a delta it cannot complete, say): the sender hears why
      await fsp.rm(finalPath, { force: true });
      const e = err as { code?: unknown; message?: unknown };
      inc.reply({ t: 'snapDone', sid: inc.sid, ok: false, code: typeof e.code === 'string' ? e.code : 'snapshot_refused', message: String(e.message ?? err) });
      return;
    }
    inc.reply({ t: 'snapDone', sid: inc.sid, ok: true });
  }

  /** Fails the transfer; a corrupt partial is deleted so the next offer starts from zero. */
  private async refuse(inc: Incoming, code: string, message: string, discard: boolean): Promise<void> {
    this.active.delete(inc.from);
    inc.aborted = true;
    await inc.fd.close().catch(() => undefined);
    if (discard) await fsp.rm(inc.partialPath, { force: true });
    inc.reply({ t: 'snapDone', sid: inc.sid, ok: false, code, message });
  }

  /** Partial files of older snapshots will never be resumed: the core only ever asks for newer ones. */
  private async dropStalePartials(index: number, keep: string): Promise<void> {
    const inUse = new Set([...this.active.values()].map((i) => i.partialPath));
    for (const name of await fsp.readdir(this.stagingDir)) {
      const m = /^snap-.*-\d+-(\d+)-\d+\.partial$/.exec(name);
      const path = join(this.stagingDir, name);
      if (m && Number(m[1]) < index && path !== keep && !inUse.has(path)) await fsp.rm(path, { force: true });
    }
  }
}

export function snapshotBaseName(from: NodeId, meta: SnapshotMeta): string {
  return `snap-${encodeURIComponent(from)}-${meta.term}-${meta.index}`;
}

async function existingBytes(path: string, size: number): Promise<number> {
  try {
    const held = (await fsp.stat(path)).size;
    return held <= size ? held : 0;
  } catch {
    return 0;
  }
}

async function hashFile(fd: fsp.FileHandle, length: number, hash: Hash): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(length, 1 << 20));
  for (let at = 0; at < length; ) {
    const { bytesRead } = await fd.read(buf, 0, Math.min(buf.length, length - at), at);
    if (bytesRead === 0) throw new Error(`partial snapshot shorter than ${length} bytes`);
    hash.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fd = await fsp.open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}
