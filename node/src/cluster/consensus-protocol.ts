// The narrow message API between the HTTP thread and the consensus thread (worker_threads). Requests
// carry an id and are answered once; the consensus thread also pushes its view (leader, failure,
// removal) whenever it changes, so the HTTP thread answers headers and probes without a round trip.
// Object bytes cross as transferred ArrayBuffers (moved, not copied).
import type { NodeConfig } from '../config.js';
import type { NodeId } from '../raft/types.js';
import type { MemberChangeResult, PutClient, PutResult, Readiness } from './api.js';
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
  storageFailure: string | null;
  removed: boolean;
  stopping: boolean;
}

export interface SerializedError {
  name: string;
  code?: string;
  message: string;
}

export type WorkerMessage =
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: SerializedError }
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
