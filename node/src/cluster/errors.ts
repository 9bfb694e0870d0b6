// Errors of the cluster layer: a stable code and a message, nothing about HTTP (http/errors.ts maps the
// codes to statuses, and the transient ones — "the same request may succeed shortly" — to Retry-After).
import { errorCodes } from '../error-codes.js';

export type ClusterErrorCode =
  | 'no_leader' // nobody is known to lead right now: retry shortly
  | 'unavailable' // the node cannot serve (storage failed, removed, stopping, not started)
  | 'timeout' // the cluster did not commit or confirm in time
  | 'proposal_lost' // the entry was overwritten by a new leader: it was not committed
  | 'change_in_progress' // one membership change at a time
  | 'invalid_member' // bad id/address, unknown member, removing the last voter...
  | 'not_found'
  | 'object_too_large'
  | 'busy' // this node has as many object bytes waiting for commit as it admits: retry shortly
  | 'quota_exceeded' // the token's stored-bytes quota would be exceeded
  | 'idempotency_key_reused'; // the Idempotency-Key was used for a different request

const CODES = errorCodes<ClusterErrorCode>({
  no_leader: true,
  unavailable: true,
  timeout: true,
  proposal_lost: true,
  change_in_progress: true,
  invalid_member: true,
  not_found: true,
  object_too_large: true,
  busy: true,
  quota_exceeded: true,
  idempotency_key_reused: true,
});

/** Every ClusterErrorCode, for tables that must cover them all. */
export const CLUSTER_ERROR_CODES = CODES.all;

export function isClusterErrorCode(code: unknown): code is ClusterErrorCode {
  return CODES.has(code);
}

export class ClusterError extends Error {
  constructor(
    readonly code: ClusterErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ClusterError';
  }
}

export function isClusterError(e: unknown): e is ClusterError {
  return e instanceof ClusterError;
}
