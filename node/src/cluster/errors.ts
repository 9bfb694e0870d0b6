// Errors of the cluster layer: a stable code and a message, nothing about HTTP (http/errors.ts maps the
// codes to statuses, and the transient ones — "the same request may succeed shortly" — to Retry-After).
import { errorCodes } from '../error-codes.js';
import { StorageError } from '../storage/errors.js';

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

/** Why a node halted for good (until restarted): its storage failed or stalled, or the driver met an error
 * it cannot recover from. All three stop the node the same way; the code says whether the disk is to blame. */
export type HaltCode = 'storage_failed' | 'storage_stalled' | 'internal_failure';

/** What crosses thread boundaries and the API of a halt: its code and message. */
export interface HaltCause {
  readonly code: HaltCode;
  readonly message: string;
}

export class HaltError extends Error implements HaltCause {
  constructor(
    readonly code: HaltCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HaltError';
  }

  get storage(): boolean {
    return this.code !== 'internal_failure';
  }
}

/**
 * Classifies what halted the node: the durable log's stalls and failures (and corruption found while
 * running) keep their meaning, a failed file-system call (an object or snapshot file that could not be
 * written: it carries an errno code and a syscall) is a storage failure too, and anything else — a misuse
 * of the log, an unexpected exception — is an internal failure, not blamed on the disk.
 */
export function haltErrorOf(e: unknown): HaltError {
  const message = (e as Error | undefined)?.message ?? String(e);
  if (e instanceof StorageError) {
    if (e.code === 'storage_stalled') return new HaltError('storage_stalled', message, { cause: e });
    if (e.code === 'storage_failed' || e.code === 'storage_corrupt') return new HaltError('storage_failed', message, { cause: e });
    return new HaltError('internal_failure', message, { cause: e });
  }
  const errno = e as NodeJS.ErrnoException | undefined;
  if (typeof errno?.code === 'string' && typeof errno.syscall === 'string') return new HaltError('storage_failed', message, { cause: e });
  return new HaltError('internal_failure', message, { cause: e });
}
