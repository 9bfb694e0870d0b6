// The surface the HTTP routes use, whether the cluster runs in this thread (tests, ClusterService) or on
// the consensus thread behind a message channel (the node process, ConsensusThread). Domain results and
// ClusterErrors only; the routes map them to HTTP.
import type { Readable } from 'node:stream';
import type { NodeId } from '../raft/types.js';
import type { HaltCause } from './errors.js';
import type { ObjectMeta } from './object-store.js';
import type { ClusterStatusView } from './status-view.js';

export interface MemberChangeResult {
  /** False when only accepted: a learner still catching up is promoted in the background. */
  done: boolean;
  body: Record<string, unknown>;
}

export interface Readiness {
  ready: boolean;
  reason: string;
  leader_id: NodeId | null;
  applied_index: number;
}

export interface StoredObject {
  meta: ObjectMeta;
  bytes: Buffer;
}

/** An object's bytes as a stream that reads the next piece only when the consumer wants it. */
export interface ObjectStream {
  meta: ObjectMeta;
  stream: Readable;
}

/** Who stores an object: the API token that owns it, its quota, and the request's idempotency data. */
export interface PutClient {
  owner: string;
  /** Bytes the owner may store in all (0: no limit). */
  quotaBytes: number;
  idempotencyKey?: string;
  /** Hex digest of the request (keyed), so a reused key with a different request is told apart. */
  fingerprint: string;
}

export interface PutResult {
  meta: ObjectMeta;
  /** True when an earlier request with the same key and fingerprint already stored it. */
  replayed: boolean;
}

export interface ClusterApi {
  readonly id: NodeId;
  readonly maxObjectBytes: number;
  /** The leader this node knows of now (null when none, or when it cannot take part). */
  readonly leaderId: NodeId | null;
  /** Set for good once the node halted: its storage failed or stalled, or an internal failure (only a restart helps). */
  readonly haltCause: HaltCause | undefined;
  /** Throws the ClusterError that explains why this node cannot take part in a request right now. */
  assertServing(): void;
  status(): Promise<ClusterStatusView>;
  readiness(): Promise<Readiness>;
  putObject(png: Buffer, sha256: string, idempotencyKey?: string): Promise<ObjectMeta>;
  /** A client's put: owner, quota and idempotency key are decided when the entry is applied. */
  putObjectFor(png: Buffer, sha256: string, client: PutClient): Promise<PutResult>;
  /** The object's metadata as of a linearizable read (ownership checks). */
  objectMeta(id: string): Promise<ObjectMeta | undefined>;
  /** The object's bytes streamed piece by piece from where they live (a slow reader holds a bounded window). */
  openObject(id: string, stale: boolean): Promise<ObjectStream | undefined>;
  /** False when the object does not exist (as of a linearizable read). */
  deleteObject(id: string): Promise<boolean>;
  getObject(id: string, stale: boolean): Promise<StoredObject | undefined>;
  listObjects(stale: boolean): Promise<ObjectMeta[]>;
  addMember(id: string, raftAddress: string): Promise<MemberChangeResult>;
  removeMember(id: string): Promise<MemberChangeResult>;
  transferLeadership(to?: string): Promise<MemberChangeResult>;
}
