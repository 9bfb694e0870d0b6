/** pino-compatible subset; the log only ever warns (torn tails, leftovers) or reports failures. */
export interface StorageLogger {
  warn(obj: object, msg: string): void;
  error?(obj: object, msg: string): void;
}

/**
 * Test-only fault injection. Production passes nothing and the real fs is used unchanged.
 * A hook may delay (return a slow promise) or throw (simulates EIO); both go through the same
 * deadline/failure path as a real stall or error.
 */
export interface StorageFaults {
  beforeWrite?(op: { file: string; bytes: number }): void | Promise<void>;
  beforeSync?(op: { file: string; bytes: number }): void | Promise<void>;
}

export interface DurableLogOptions {
  /** A batch (write + fdatasync) slower than this puts the log in the failed (stalled) state. Default 1000. */
  fsyncDeadlineMs?: number;
  /** Roll to a new segment once the current one reaches this size. Default 64 MiB. */
  segmentBytes?: number;
  /** Snapshots kept on disk. Default 2. */
  retainSnapshots?: number;
  logger?: StorageLogger;
  faults?: StorageFaults;
}

export const DEFAULT_FSYNC_DEADLINE_MS = 1000;
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
