// The HTTP thread's handle on the consensus thread: starts consensus-worker.ts in a worker_thread and
// implements ClusterApi over the message channel. The put command (id, header, bytes) is built here,
// and its buffer is moved, not copied, to the consensus thread; object bytes come back the same way.
// The consensus thread pushes its view (leader, failure, removal), so response headers, /healthz and the
// "can this node serve" check never wait for a round trip.
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { NodeConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { NodeId } from '../raft/types.js';
import type { ClusterApi, MemberChangeResult, ObjectStream, PutClient, PutResult, Readiness, StoredObject } from './api.js';
import { encodeCommand } from './commands.js';
import {
  MessageBatcher,
  ownedBytes,
  type ConsensusOps,
  type ConsensusView,
  type ConsensusWorkerData,
  type OpName,
  type OpRequest,
  type SerializedError,
  type WorkerMessage,
} from './consensus-protocol.js';
import { ClusterError, isClusterErrorCode, type HaltCause } from './errors.js';
import type { ObjectMeta } from './object-store.js';
import { putCommand, putCommandFor, putMeta } from './service.js';
import type { ClusterStatusView } from './status-view.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class ConsensusThread implements ClusterApi {
  readonly id: NodeId;
  readonly maxObjectBytes: number;
  private view: ConsensusView = { leaderId: null, haltCause: null, removed: false, stopping: false };
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private exited: Error | undefined;
  /** Bytes of put commands handed to the consensus thread and not answered yet. */
  private pendingWriteBytes = 0;
  private readonly maxPendingWriteBytes: number;
  /** Requests of this event-loop turn, posted to the consensus thread together. */
  private readonly requests: MessageBatcher<OpRequest>;
  /** Piece reads asked of the consensus thread and not answered yet, across every download. */
  private pieceReads = 0;
  private readonly pieceReadWaiters: (() => void)[] = [];

  private constructor(
    private readonly worker: Worker,
    cfg: NodeConfig,
    private readonly logger: Logger,
    private readonly onExit: (e: Error) => void,
  ) {
    this.id = cfg.nodeId;
    this.maxObjectBytes = cfg.maxObjectBytes;
    this.maxPendingWriteBytes = cfg.maxPendingWriteBytes;
    this.requests = new MessageBatcher((batch, transfer) => this.worker.postMessage(batch, transfer));
  }

  /**
   * Starts the consensus thread and resolves once its log is open and its links listen. `onExit` is called
   * if the thread dies later: the process cannot take part any more (crash-only: exit and be restarted).
   */
  static start(cfg: NodeConfig, logger: Logger, onExit: (e: Error) => void): Promise<ConsensusThread> {
    const data: ConsensusWorkerData = { cfg };
    const worker = new Worker(new URL('./consensus-worker.js', import.meta.url), { workerData: data, name: 'consensus' });
    const thread = new ConsensusThread(worker, cfg, logger, onExit);
    return new Promise((resolve, reject) => {
      let started = false;
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'started') {
          started = true;
          resolve(thread);
        } else if (m.type === 'startFailed') {
          reject(Object.assign(new Error(m.error.message), m.error.code === undefined ? {} : { code: m.error.code }));
        } else thread.onMessage(m);
      });
      worker.on('error', (e) => (started ? thread.onWorkerGone(e) : reject(e)));
      worker.on('exit', (code) => {
        const e = new Error(`the consensus thread exited (code ${code})`);
        if (started) thread.onWorkerGone(e);
        else reject(e);
      });
    });
  }

  get leaderId(): NodeId | null {
    return this.view.leaderId;
  }

  get haltCause(): HaltCause | undefined {
    return this.view.haltCause ?? undefined;
  }

  assertServing(): void {
    if (this.exited) throw new ClusterError('unavailable', `node ${this.id}: ${this.exited.message}`);
    const halt = this.view.haltCause;
    if (halt !== null) throw new ClusterError('unavailable', `node ${this.id} halted (${halt.code}): ${halt.message}`);
    if (this.view.removed) throw new ClusterError('unavailable', `node ${this.id} was removed from the cluster`);
    if (this.view.stopping) throw new ClusterError('unavailable', `node ${this.id} is stopping`);
  }

  status(): Promise<ClusterStatusView> {
    return this.call('status', {});
  }

  readiness(): Promise<Readiness> {
    return this.call('readiness', {});
  }

  /**
   * Admission: object bytes waiting for commit are bounded (one write always passes, however large), so
   * a burst of large uploads is answered 503 busy at once instead of queueing hundreds of MB of appends
   * and fsyncs in front of everyone's writes.
   */
  private async admitWrite<T>(size: number, write: () => Promise<T>): Promise<T> {
    if (this.pendingWriteBytes > 0 && this.pendingWriteBytes + size > this.maxPendingWriteBytes) {
      throw new ClusterError('busy', `node ${this.id} has ${this.pendingWriteBytes} object bytes waiting for commit; retry shortly`);
    }
    this.pendingWriteBytes += size;
    try {
      return await write();
    } finally {
      this.pendingWriteBytes -= size;
    }
  }

  putObject(png: Buffer, sha256: string, idempotencyKey?: string): Promise<ObjectMeta> {
    const cmd = putCommand(png, sha256, this.maxObjectBytes, idempotencyKey);
    return this.admitWrite(png.byteLength, () => {
      const data = ownedBytes(encodeCommand(cmd));
      return this.call('putEncoded', { data, meta: putMeta(cmd) }, [data.buffer as ArrayBuffer]);
    });
  }

  /**
   * The command is built and encoded here and its buffer moved; the consensus thread checks the key and
   * the quota against its store, proposes, and reads the outcome of the apply (see ClusterService).
   */
  putObjectFor(png: Buffer, sha256: string, client: PutClient): Promise<PutResult> {
    const cmd = putCommandFor(png, sha256, this.maxObjectBytes, client);
    return this.admitWrite(png.byteLength, () => {
      const data = ownedBytes(encodeCommand(cmd));
      return this.call('putEncodedFor', { data, put: { id: cmd.id, size: png.byteLength }, client }, [data.buffer as ArrayBuffer]);
    });
  }

  objectMeta(id: string): Promise<ObjectMeta | undefined> {
    return this.call('objectMeta', { id });
  }

  /**
   * A stream whose pieces are read on the consensus thread one request at a time, only when the consumer
   * wants more (Readable's highWaterMark is one piece): a reader that stops reading holds one piece here,
   * at most one in flight and what the socket buffers, never the object. Each piece's buffer is moved.
   */
  async openObject(id: string, stale: boolean): Promise<ObjectStream | undefined> {
    const pieceBytes = DOWNLOAD_PIECE_BYTES;
    const opened = await this.call('openRead', { id, stale, pieceBytes });
    if (!opened) return undefined;
    const { meta, first, reader } = opened;
    let pending: Uint8Array | undefined = first;
    let received = first.byteLength;
    // the consensus thread forgets a reader once its last piece was sent
    let finished = reader === undefined || received >= meta.size;
    const call = this.call.bind(this);
    const readPiece = this.readPieceGated.bind(this);
    const stream = new Readable({
      highWaterMark: pieceBytes,
      read() {
        if (pending) {
          const piece = pending;
          pending = undefined;
          this.push(asBuffer(piece));
          if (finished) this.push(null);
          return;
        }
        if (finished) {
          this.push(null);
          return;
        }
        readPiece(reader!).then(
          (piece) => {
            if (piece === undefined) {
              finished = true;
              this.push(null);
              return;
            }
            received += piece.byteLength;
            finished = received >= meta.size;
            this.push(asBuffer(piece));
            if (finished) this.push(null);
          },
          (e: unknown) => this.destroy(e as Error),
        );
      },
      destroy(err, cb) {
        // an abandoned download (client gone, idle timeout) releases the reader on the consensus thread
        if (!finished) void call('closeRead', { reader: reader! }).catch(() => undefined);
        finished = true;
        cb(err);
      },
    });
    return { meta, stream };
  }

  /**
   * At most MAX_PIECE_READS_IN_FLIGHT piece reads wait on the consensus thread at a time, whatever the
   * number of downloads: 40 clients draining a 15 MiB object each otherwise queue hundreds of piece reads
   * (each a 128 KiB read or copy) in front of its ticks and heartbeats, and the leader was lost (bench:abuse,
   * slow downloads). Downloads share the slots; a freed slot goes straight to the next waiter.
   */
  private async readPieceGated(reader: number): Promise<Uint8Array | undefined> {
    if (this.pieceReads < MAX_PIECE_READS_IN_FLIGHT) this.pieceReads++;
    else await new Promise<void>((resolve) => this.pieceReadWaiters.push(resolve));
    try {
      return await this.call('readPiece', { reader });
    } finally {
      const next = this.pieceReadWaiters.shift();
      if (next) next();
      else this.pieceReads--;
    }
  }

  deleteObject(id: string): Promise<boolean> {
    return this.call('deleteObject', { id });
  }

  async getObject(id: string, stale: boolean): Promise<StoredObject | undefined> {
    const got = await this.call('getObject', { id, stale });
    if (!got) return undefined;
    return { meta: got.meta, bytes: Buffer.from(got.bytes.buffer, got.bytes.byteOffset, got.bytes.byteLength) };
  }

  listObjects(stale: boolean): Promise<ObjectMeta[]> {
    return this.call('listObjects', { stale });
  }

  addMember(id: string, raftAddress: string): Promise<MemberChangeResult> {
    return this.call('addMember', { id, raftAddress });
  }

  removeMember(id: string): Promise<MemberChangeResult> {
    return this.call('removeMember', { id });
  }

  transferLeadership(to?: string): Promise<MemberChangeResult> {
    return this.call('transferLeadership', to === undefined ? {} : { to });
  }

  /** The consensus thread's metrics (Prometheus text), appended to the main registry's by /metrics. */
  metricsText(): Promise<string> {
    return this.call('metrics', {});
  }

  /** Graceful stop: leadership handed over (if asked), the log closed, the links closed; then the thread ends. */
  async stop(opts: { transferLeadership: boolean }): Promise<void> {
    if (this.exited) return;
    try {
      await this.call('stop', opts);
    } finally {
      this.exited = new Error('the consensus thread was stopped');
      await this.worker.terminate();
    }
  }

  private call<K extends OpName>(op: K, args: ConsensusOps[K]['args'], transfer: ArrayBuffer[] = []): Promise<ConsensusOps[K]['result']> {
    if (this.exited) return Promise.reject(new ClusterError('unavailable', `node ${this.id}: ${this.exited.message}`));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.requests.add({ id, op, args }, transfer);
    });
  }

  private onMessage(m: WorkerMessage): void {
    if (m.type === 'view') {
      this.view = m.view;
      return;
    }
    if (m.type !== 'replies') return;
    for (const r of m.replies) {
      const p = this.pending.get(r.id);
      if (!p) continue;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(deserializeError(r.error));
    }
  }

  private onWorkerGone(e: Error): void {
    if (this.exited) return;
    this.exited = e;
    this.logger.fatal({ err: e.message }, 'the consensus thread is gone; this node cannot take part any more');
    const err = new ClusterError('unavailable', `node ${this.id}: ${e.message}`);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.onExit(e);
  }
}

/** Piece reads on the consensus thread at once, across downloads (see readPieceGated). */
const MAX_PIECE_READS_IN_FLIGHT = 2;

/** Piece size of streamed downloads: one message per piece; a stalled reader holds about two. */
const DOWNLOAD_PIECE_BYTES = 128 * 1024;

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** ClusterErrors keep their code (and so their HTTP answer) across the thread boundary. */
function deserializeError(e: SerializedError): Error {
  if (isClusterErrorCode(e.code)) return new ClusterError(e.code, e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}
