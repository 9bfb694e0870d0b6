// The transport's public vocabulary: the interface both WsTransport and InMemoryTransport implement.
import type { EventEmitter } from 'node:events';
import type { Message } from '../raft/message.js';
import type { NodeId, SnapshotMeta } from '../raft/types.js';

// The transport relies only on `type`, `from`, `to` and `entries[].data`: the codec carries every other
// field generically (JSON header + binary blobs for every Uint8Array), so fields the core adds later
// need no codec change.
export type { Message } from '../raft/message.js';

export interface SnapshotSource {
  /** Total number of bytes `read()` yields. */
  size: number;
  /**
   * The snapshot's bytes from the first, a piece at a time, each fetched only when the consumer asks for
   * it. A piece may be a view of a buffer the source reuses: it is valid until the consumer asks for the
   * next one, and a consumer that keeps it copies it. There is no read from an offset: a resumed transfer
   * still hashes the bytes the receiver holds (its checksum covers the whole file), so it reads them once
   * and sends only the rest.
   */
  read(): AsyncIterable<Uint8Array>;
}

export type RequestHandler = (from: NodeId, body: Uint8Array) => Promise<Uint8Array>;

/**
 * Takes over a snapshot file that was fully received, size- and sha256-verified and fsync'd: `path` is
 * the handler's from then on. The sender's `sendSnapshot` resolves only once this does, and rejects with
 * the error's `code` if this rejects: a receiver readies the file for install before the sender moves on.
 */
export type SnapshotHandler = (from: NodeId, meta: SnapshotMeta, path: string) => Promise<void>;

export interface SnapshotSendResult {
  /** The offset the receiver already held (0 for a fresh transfer). */
  resumedFrom: number;
  bytesSent: number;
}

export interface LinkStats {
  connected: boolean;
  /** Bytes handed to the link that have not reached the kernel yet (our own accounting + ws bufferedAmount). */
  inflightBytes: number;
  sentMsgs: number;
  droppedMsgs: number;
  /** How many times the link came back after having been up before. */
  reconnects: number;
  /** Connections claiming to be (or dialled as) this peer that failed authentication. */
  authFailures: number;
  /** Milliseconds since anything (frame or pong) was last received from the peer; undefined if never. */
  lastContactMs?: number;
}

export interface TransportEvents {
  message: [m: Message];
  linkUp: [peer: NodeId];
  linkDown: [peer: NodeId];
}

export interface Transport extends EventEmitter<TransportEvents> {
  readonly id: NodeId;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The peers to keep links with (dial targets). Links to peers no longer listed are closed. */
  setPeers(peers: Map<NodeId, string>): void;
  /** Fire-and-forget; silently dropped (and counted) when the link is down or the in-flight cap is reached. */
  send(m: Message): void;
  /** Resolves once the receiver has the whole snapshot fsync'd and verified, and its handler took it over. */
  sendSnapshot(to: NodeId, meta: SnapshotMeta, source: SnapshotSource): Promise<SnapshotSendResult>;
  request(to: NodeId, kind: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  handle(kind: string, fn: RequestHandler): void;
  /** Where received snapshots go (without a handler a received file stays in the staging directory). */
  handleSnapshots(fn: SnapshotHandler): void;
  linkStats(): Map<NodeId, LinkStats>;
  isConnected(peer: NodeId): boolean;
}
