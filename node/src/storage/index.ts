export { DurableLog, type RecoveredState, type SaveOptions, type LogStats } from './durable-log.js';
export type { DurableLogOptions, StorageFaults, StorageLogger } from './options.js';
export type { SnapshotInfo, PendingSnapshot } from './snapshots.js';
export {
  StorageError,
  StorageCorruptError,
  StorageStalledError,
  StorageFailedError,
  StorageClosedError,
  StorageUsageError,
  type StorageErrorCode,
} from './errors.js';
