// Errors of the consensus core. Each carries a stable `code` so the HTTP layer can map it to a status
// without string matching, and the driver can tell "retry elsewhere" from "retry later".
import type { NodeId } from './types.js';

export type RaftErrorCode =
  | 'not_leader'
  | 'proposal_dropped'
  | 'conf_change_rejected'
  | 'log_compacted'
  | 'log_unavailable'
  | 'snapshot_out_of_date'
  | 'invalid_config'
  | 'log_invariant';

export class RaftError extends Error {
  constructor(
    readonly code: RaftErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The node cannot accept the request because it is not the leader; `leaderHint` is who it believes leads. */
export class NotLeaderError extends RaftError {
  constructor(readonly leaderHint: NodeId | null) {
    super('not_leader', leaderHint === null ? 'no leader is known' : `not the leader; the leader is ${leaderHint}`);
  }
}

/** The leader refused the proposal (leadership transfer in progress, flow control, removed from the cluster). */
export class ProposalDroppedError extends RaftError {
  constructor(readonly reason: 'transferring' | 'uncommitted_limit' | 'removed') {
    super('proposal_dropped', `proposal dropped: ${reason}`);
  }
}

/**
 * A membership change that cannot be proposed now or makes no sense. `pending`: an earlier change (at
 * `pendingIndex`) is not applied yet, so proposing again once applied ≥ `pendingIndex` may succeed;
 * `invalid`: the change itself is refused (unknown node, add a voter directly, remove the last voter).
 */
export type ConfChangeRejection = { reason: 'pending'; pendingIndex: number } | { reason: 'invalid' };

export class ConfChangeError extends RaftError {
  constructor(
    message: string,
    readonly rejection: ConfChangeRejection = { reason: 'invalid' },
  ) {
    super('conf_change_rejected', message);
  }
}

/** Requested entries lie before the first index still held: the caller needs a snapshot. */
export class CompactedError extends RaftError {
  constructor(index: number, firstIndex: number) {
    super('log_compacted', `index ${index} is compacted (first available index is ${firstIndex})`);
  }
}

/** Requested entries lie after the last index held. */
export class UnavailableError extends RaftError {
  constructor(index: number, lastIndex: number) {
    super('log_unavailable', `index ${index} is unavailable (last index is ${lastIndex})`);
  }
}

export class SnapshotOutOfDateError extends RaftError {
  constructor(index: number, current: number) {
    super('snapshot_out_of_date', `snapshot at ${index} is not newer than the current snapshot at ${current}`);
  }
}

export class RaftConfigError extends RaftError {
  constructor(message: string) {
    super('invalid_config', message);
  }
}

/** A broken internal invariant (a bug or a corrupted store), never a normal runtime condition. */
export class LogInvariantError extends RaftError {
  constructor(message: string) {
    super('log_invariant', message);
  }
}
