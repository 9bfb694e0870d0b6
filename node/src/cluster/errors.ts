// Errors of the cluster layer. Each carries a stable code and the HTTP status it maps to (the HTTP error
// middleware reads `status`, `code` and `headers`), so routes never translate errors themselves.

export type ClusterErrorCode =
  | 'no_leader' // nobody is known to lead right now: retry shortly
  | 'unavailable' // the node cannot serve (storage failed, removed, stopping, not started)
  | 'timeout' // the cluster did not commit or confirm in time
  | 'proposal_lost' // the entry was overwritten by a new leader: it was not committed
  | 'change_in_progress' // one membership change at a time
  | 'invalid_member' // bad id/address, unknown member, removing the last voter...
  | 'not_found'
  | 'object_too_large'
  | 'busy'; // this node has as many object bytes waiting for commit as it admits: retry shortly

const STATUS: Record<ClusterErrorCode, number> = {
  no_leader: 503,
  unavailable: 503,
  timeout: 503,
  proposal_lost: 503,
  change_in_progress: 409,
  invalid_member: 400,
  not_found: 404,
  object_too_large: 413,
  busy: 503,
};

export function isClusterErrorCode(code: unknown): code is ClusterErrorCode {
  return typeof code === 'string' && Object.hasOwn(STATUS, code);
}

const RETRYABLE = new Set<ClusterErrorCode>(['no_leader', 'unavailable', 'timeout', 'proposal_lost', 'busy']);

export class ClusterError extends Error {
  readonly status: number;
  readonly expose = true;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ClusterErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ClusterError';
    this.status = STATUS[code];
    this.headers = RETRYABLE.has(code) ? { 'Retry-After': '1' } : {};
  }
}

export function isClusterError(e: unknown): e is ClusterError {
  return e instanceof ClusterError;
}
