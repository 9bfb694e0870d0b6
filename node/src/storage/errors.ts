// Typed storage failures. The cluster driver tells them apart by class or by `code`:
// corrupt → refuse to start; stalled/failed → step down and refuse writes; usage → caller bug.

export type StorageErrorCode =
  | 'storage_corrupt'
  | 'storage_stalled'
  | 'storage_failed'
  | 'storage_closed'
  | 'storage_usage';

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** On-disk state is damaged in a way that may have lost acknowledged data: the node must not start. */
export class StorageCorruptError extends StorageError {
  readonly file: string | undefined;
  readonly offset: number | undefined;
  constructor(message: string, where: { file?: string; offset?: number } = {}, options?: { cause?: unknown }) {
    const at = where.file === undefined ? '' : ` (${where.file}${where.offset === undefined ? '' : ` @ offset ${where.offset}`})`;
    super('storage_corrupt', `${message}${at}`, options);
    this.file = where.file;
    this.offset = where.offset;
  }
}

/** A write or fsync did not finish within the deadline; the log refuses all further writes. */
export class StorageStalledError extends StorageError {
  constructor(message: string) {
    super('storage_stalled', message);
  }
}

/** A write or fsync failed (e.g. EIO); after a failed fsync the page cache cannot be trusted, so the log stays failed. */
export class StorageFailedError extends StorageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('storage_failed', message, options);
  }
}

export class StorageClosedError extends StorageError {
  constructor() {
    super('storage_closed', 'the durable log is closed');
  }
}

/** The caller asked for something the log cannot do (index gap, compaction beyond the snapshot, ...). */
export class StorageUsageError extends StorageError {
  constructor(message: string) {
    super('storage_usage', message);
  }
}
