// The narrow message API between the HTTP thread and the consensus thread (worker_threads). Requests
// carry an id and are answered once; the consensus thread also pushes its view (leader, failure,
// removal) whenever it changes, so the HTTP thread answers headers and probes without a round trip.
// Object bytes cross as transferred ArrayBuffers (moved, not copied).
//
// Both directions travel in batches: what one thread queues during one turn of its event loop leaves as
// one postMessage (MessageBatcher). Each postMessage wakes the other thread; under write load a wake-up
// per request and per answer cost more than the work itself (bench:raft, 256 clients: postMessage was
// the largest single cost on the leader's HTTP thread, mostly the switch to the woken consensus thread).
import type { NodeConfig } from '../config.js';
import type { NodeId } from '../raft/types.js';
import type { MemberChangeResult, PutClient, PutResult, Readiness } from './api.js';
import type { HaltCause } from './errors.js';
import type { ObjectMeta } from './object-store.js';
import type { ClusterStatusView } from './status-view.js';

export interface ConsensusWorkerData {
  cfg: NodeConfig;
}

/** Each operation: its arguments and its answer. */
export interface ConsensusOps {
  putEncoded: { args: { data: Uint8Array; meta: ObjectMeta }; result: ObjectMeta };
  putEncodedFor: { args: { data: Uint8Array; put: { id: string; size: number }; client: PutClient }; result: PutResult };
  objectMeta: { args: { id: string }; result: ObjectMeta | undefined };
  /**
   * Opens a streamed read and answers its first piece. `reader` is absent when that piece was the last
   * (a small object costs one round trip); otherwise the rest comes through readPiece, one piece per call,
   * and closeRead releases it early.
   */
  openRead: { args: { id: string; stale: boolean; pieceBytes: number }; result: { meta: ObjectMeta; first: Uint8Array; reader?: number } | undefined };
  /** The next piece of an open read, or undefined at the end (the reader is then closed). */
  readPiece: { args: { reader: number }; result: Uint8Array | undefined };
  closeRead: { args: { reader: number }; result: void };
  deleteObject: { args: { id: string }; result: boolean };
  getObject: { args: { id: string; stale: boolean }; result: { meta: ObjectMeta; bytes: Uint8Array } | undefined };
  listObjects: { args: { stale: boolean }; result: ObjectMeta[] };
  addMember: { args: { id: string; raftAddress: string }; result: MemberChangeResult };
  removeMember: { args: { id: string }; result: MemberChangeResult };
  transferLeadership: { args: { to?: string }; result: MemberChangeResult };
  status: { args: Record<string, never>; result: ClusterStatusView };
  readiness: { args: Record<string, never>; result: Readiness };
  metrics: { args: Record<string, never>; result: string };
  stop: { args: { transferLeadership: boolean }; result: void };
}

export type OpName = keyof ConsensusOps;

export interface OpRequest<K extends OpName = OpName> {
  id: number;
  op: K;
  args: ConsensusOps[K]['args'];
}

export interface ConsensusView {
  leaderId: NodeId | null;
  haltCause: HaltCause | null;
  removed: boolean;
  stopping: boolean;
}

export interface SerializedError {
  name: string;
  code?: string;
  message: string;
}

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: SerializedError };

export type WorkerMessage =
  | { type: 'replies'; replies: Reply[] }
  | { type: 'view'; view: ConsensusView }
  | { type: 'started' }
  | { type: 'startFailed'; error: SerializedError };

export function serializeError(e: unknown): SerializedError {
  const err = e instanceof Error ? e : new Error(String(e));
  const code = (err as { code?: unknown }).code;
  return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
}

/**
 * A buffer that can be moved to the other thread: the whole of its ArrayBuffer (a pooled small Buffer
 * shares its ArrayBuffer with others and is copied instead).
 */
export function ownedBytes(b: Uint8Array): Uint8Array {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return b;
  return new Uint8Array(b);
}

/**
 * Collects messages for another thread and posts them as one array once per event-loop turn (at
 * setImmediate: after the I/O callbacks of this turn, so everything they queued goes together).
 */
export class MessageBatcher<T> {
  private items: T[] = [];
  private transfer: ArrayBuffer[] = [];
  private scheduled = false;

  constructor(private readonly post: (items: T[], transfer: ArrayBuffer[]) => void) {}

  add(item: T, transfer: ArrayBuffer[] = []): void {
    this.items.push(item);
    for (const t of transfer) this.transfer.push(t);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Posts what is queued now (also called by the timer). */
  flush(): void {
    this.scheduled = false;
    if (this.items.length === 0) return;
    const items = this.items;
    const transfer = this.transfer;
    this.items = [];
    this.transfer = [];
    this.post(items, transfer);
  }
}
