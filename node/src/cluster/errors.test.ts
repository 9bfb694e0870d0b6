import { expect } from 'chai';
import { StorageCorruptError, StorageFailedError, StorageStalledError, StorageUsageError } from '../storage/errors.js';
import { haltErrorOf } from './errors.js';

describe('cluster: what halted a node (haltErrorOf)', () => {
  it("keeps the durable log's stalls and failures, and corruption found while running, as storage causes", () => {
    expect(haltErrorOf(new StorageStalledError('fsync took 12 s')).code).to.equal('storage_stalled');
    expect(haltErrorOf(new StorageFailedError('EIO on fdatasync')).code).to.equal('storage_failed');
    expect(haltErrorOf(new StorageCorruptError('bad crc', { file: 'wal-1' })).code).to.equal('storage_failed');
  });

  it('counts a failed file-system call (an object file that could not be written) as a storage failure', () => {
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    const halt = haltErrorOf(enospc);
    expect(halt.code).to.equal('storage_failed');
    expect(halt.storage).to.equal(true);
    expect(halt.cause).to.equal(enospc);
  });

  it('does not blame the disk for anything else: a misuse of the log or an unexpected exception is an internal failure', () => {
    expect(haltErrorOf(new StorageUsageError('gap at 7')).code).to.equal('internal_failure');
    const bug = haltErrorOf(new TypeError("Cannot read properties of undefined (reading 'index')"));
    expect(bug.code).to.equal('internal_failure');
    expect(bug.storage).to.equal(false);
    expect(bug.message).to.include("reading 'index'");
    // an error with a code but no syscall is not a file-system call
    expect(haltErrorOf(Object.assign(new Error('x'), { code: 'ERR_ASSERTION' })).code).to.equal('internal_failure');
    expect(haltErrorOf('a thrown string').message).to.equal('a thrown string');
  });
});
