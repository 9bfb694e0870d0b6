// Shared vocabulary of the consensus core, the storage, the transport and the cluster driver.
// The core (raft/) is a pure state machine; everything here is plain data so it can be
// persisted, sent over the wire (transport/codec) and replayed in deterministic simulation.

export type NodeId = string;

/** `normal` carries application commands; `conf` a membership change; `noop` is the entry a new leader appends. */
export type EntryType = 'normal' | 'conf' | 'noop';

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  /** Opaque to the core. Application command bytes, or an encoded ConfChange for `conf`. */
  data: Uint8Array;
}

/** What must be durable before the node votes, acknowledges or sends anything that depends on it. */
export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/**
 * A snapshot as the core sees it: metadata only. The state itself (PNG objects, possibly hundreds of
 * MB) never passes through the core; the driver stores it on disk and the transport streams it in
 * chunks. The core only decides *when* a snapshot is needed and *that* one has been installed.
 */
export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

export const EMPTY_SNAPSHOT: SnapshotMeta = Object.freeze({ index: 0, term: 0, conf: { voters: [], learners: [] } });
