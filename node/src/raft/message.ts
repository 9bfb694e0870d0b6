// The one message shape exchanged between cores. `type` says which fields matter; unused numeric fields
// are 0 so the wire codec (transport/) can encode every message the same way.
import type { Entry, NodeId, SnapshotMeta } from './types.js';

export type MessageType =
  | 'app'
  | 'appResp'
  | 'vote'
  | 'voteResp'
  | 'preVote'
  | 'preVoteResp'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'snap'
  | 'timeoutNow'
  | 'readIndex'
  | 'readIndexResp'
  | 'transferLeader';

export const MESSAGE_TYPES: readonly MessageType[] = [
  'app', 'appResp', 'vote', 'voteResp', 'preVote', 'preVoteResp', 'heartbeat', 'heartbeatResp',
  'snap', 'timeoutNow', 'readIndex', 'readIndexResp', 'transferLeader',
];

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  /** Sender's term; 0 only on a forwarded readIndex, which is treated as a local request. */
  term: number;
  /** app: term of the entry at `index`; vote/preVote: candidate's last term; rejected appResp: follower's term at `rejectHint`. */
  logTerm: number;
  /** app: index preceding `entries`; appResp: last index accepted (or the rejected one); vote: candidate's last index; readIndexResp: the read index. */
  index: number;
  entries?: Entry[];
  commit: number;
  reject: boolean;
  /** Rejected appResp: the follower's guess of the last index that could match (fast back-off). */
  rejectHint: number;
  /** heartbeat/heartbeatResp/readIndex/readIndexResp: read request id; vote/preVote: TRANSFER_CTX for a leadership transfer. */
  ctx?: Uint8Array;
  /** snap: the snapshot the follower must install (its bytes travel on the transport's snapshot stream). */
  snapshot?: SnapshotMeta;
}

/** Marks a (pre)vote caused by a leadership transfer, so followers in a leader lease still answer it. */
export const TRANSFER_CTX: Uint8Array = new TextEncoder().encode('raft-transfer');

export function isTransferCampaign(m: Message): boolean {
  return m.ctx !== undefined && bytesEqual(m.ctx, TRANSFER_CTX);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function makeMessage(fields: Pick<Message, 'type' | 'from' | 'to'> & Partial<Message>): Message {
  return { term: 0, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, ...fields };
}

const RESPONSE_TYPES = new Set<MessageType>(['appResp', 'voteResp', 'preVoteResp', 'heartbeatResp', 'readIndexResp']);

export function isResponse(t: MessageType): boolean {
  return RESPONSE_TYPES.has(t);
}
