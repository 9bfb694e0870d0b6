// The surface the HTTP routes use, whether the cluster runs in this thread (tests, ClusterService) or on
// the consensus thread behind a message channel (the node process, ConsensusThread). Domain results and
// ClusterErrors only; the routes map them to HTTP.
import type { NodeId } from '../raft/types.js';
import type { ObjectMeta } from './object-store.js';
import type { ClusterStatusView } from './status-view.js';

export interface MemberChangeResult {
  /** 200: done; 202: accepted, a learner still catching up is promoted in the background. */
  status: 200 | 202;
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

export interface ClusterApi {
  readonly id: NodeId;
  readonly maxObjectBytes: number;
  /** The leader this node knows of now (null when none, or when it cannot take part). */
  readonly leaderId: NodeId | null;
  /** Set for good once the durable log failed (the node stepped down; only a restart helps). */
  readonly storageFailure: { message: string } | undefined;
  /** Throws the ClusterError that explains why this node cannot take part in a request right now. */
  assertServing(): void;
  status(): Promise<ClusterStatusView>;
  readiness(): Promise<Readiness>;
  putObject(png: Buffer, sha256: string, idempotencyKey?: string): Promise<ObjectMeta>;
  /** False when the object does not exist (as of a linearizable read). */
  deleteObject(id: string): Promise<boolean>;
  getObject(id: string, stale: boolean): Promise<StoredObject | undefined>;
  listObjects(stale: boolean): Promise<ObjectMeta[]>;
  addMember(id: string, raftAddress: string): Promise<MemberChangeResult>;
  removeMember(id: string): Promise<MemberChangeResult>;
  transferLeadership(to?: string): Promise<MemberChangeResult>;
}
