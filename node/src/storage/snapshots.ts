// Snapshot files: <dir>/<index>-<term>/{data,meta.json}. A snapshot is written into a temp directory and
// published with one directory rename, so a crash never leaves a half-written snapshot under a final name.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { SnapshotMeta } from '../raft/types.js';
import { StorageCorruptError, StorageUsageError } from './errors.js';
import { fsyncFile, syncDir, syncDirSync } from './fsutil.js';
import type { StorageLogger } from './options.js';

export interface SnapshotInfo {
  meta: SnapshotMeta;
  /** The snapshot bytes (the application state); stream it from here. */
  path: string;
  size: number;
}

export interface PendingSnapshot {
  /** Write (or rename) the snapshot bytes to this file, then call commit(). */
  path: string;
  /** fsync data + meta, publish by rename, fsync the directory, prune to the newest `retain`. */
  commit(): Promise<SnapshotInfo>;
  /** Discard the temp directory. Safe to call after a failed commit. */
  abort(): Promise<void>;
}

const TMP_PREFIX = '.tmp-';
const NAME = /^(\d{20})-(\d{20})$/;
const pad = (n: number) => n.toString().padStart(20, '0');

export class SnapshotStore {
  private infos: SnapshotInfo[];

  private constructor(
    private readonly dir: string,
    private readonly retain: number,
    infos: SnapshotInfo[],
  ) {
    this.infos = infos;
  }

  /** Startup scan (synchronous on purpose: nothing else runs yet). */
  static loadSync(dir: string, retain: number, logger: StorageLogger | undefined): SnapshotStore {
    mkdirSync(dir, { recursive: true });
    const infos: SnapshotInfo[] = [];
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      if (name.startsWith(TMP_PREFIX)) {
        // an uncommitted snapshot from before a crash: never published, so nothing depends on it
        rmSync(full, { recursive: true, force: true });
        logger?.warn({ dir: full }, 'removed uncommitted snapshot temp directory');
        continue;
      }
      const m = NAME.exec(name);
      if (!m) {
        logger?.warn({ file: full }, 'ignoring unexpected file in snapshot directory');
        continue;
      }
      infos.push(readSnapshotDir(full, Number(m[1]), Number(m[2])));
    }
    infos.sort((a, b) => a.meta.index - b.meta.index);
    syncDirSync(dir);
    return new SnapshotStore(dir, retain, infos);
  }

  list(): SnapshotInfo[] {
    return this.infos.slice();
  }

  latest(): SnapshotInfo | undefined {
    return this.infos[this.infos.length - 1];
  }

  create(meta: SnapshotMeta, onCommitted: (info: SnapshotInfo) => Promise<void>): PendingSnapshot {
    validateMeta(meta);
    const latest = this.latest();
    if (latest && meta.index < latest.meta.index) {
      throw new StorageUsageError(`snapshot at index ${meta.index} is older than the newest one (${latest.meta.index})`);
    }
    const tmpDir = mkdtempSync(path.join(this.dir, `${TMP_PREFIX}${meta.index}-`));
    const dataPath = path.join(tmpDir, 'data');
    let settled = false;
    return {
      path: dataPath,
      commit: async () => {
        if (settled) throw new StorageUsageError('snapshot already committed or aborted');
        settled = true;
        const info = await this.publish(meta, tmpDir);
        await onCommitted(info);
        return info;
      },
      abort: async () => {
        settled = true;
        await fsp.rm(tmpDir, { recursive: true, force: true });
      },
    };
  }

  private async publish(meta: SnapshotMeta, tmpDir: string): Promise<SnapshotInfo> {
    const dataPath = path.join(tmpDir, 'data');
    try {
      await fsyncFile(dataPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StorageUsageError(`snapshot data was not written to ${dataPath}`);
      throw err;
    }
    const metaFile = path.join(tmpDir, 'meta.json');
    await fsp.writeFile(metaFile, JSON.stringify(meta));
    await fsyncFile(metaFile);
    await syncDir(tmpDir);
    const finalDir = path.join(this.dir, `${pad(meta.index)}-${pad(meta.term)}`);
    const existing = this.infos.find((i) => i.meta.index === meta.index && i.meta.term === meta.term);
    if (existing) {
      // same (index, term) means the same state; keep the published copy, which may be in use
      await fsp.rm(tmpDir, { recursive: true, force: true });
      return existing;
    }
    await fsp.rename(tmpDir, finalDir);
    await syncDir(this.dir);
    const info: SnapshotInfo = { meta, path: path.join(finalDir, 'data'), size: (await fsp.stat(path.join(finalDir, 'data'))).size };
    this.infos.push(info);
    this.infos.sort((a, b) => a.meta.index - b.meta.index);
    await this.prune();
    return info;
  }

  private async prune(): Promise<void> {
    const drop = this.infos.slice(0, Math.max(0, this.infos.length - this.retain));
    if (drop.length === 0) return;
    this.infos = this.infos.slice(drop.length);
    // Unpublish each with one rename first: a crash inside a recursive delete would otherwise leave a
    // published name with its meta.json already gone, which startup must treat as corruption. A temp
    // name is removed at startup. A transport still streaming an old snapshot keeps its open fd;
    // unlinking is safe on POSIX.
    const doomed: string[] = [];
    for (const d of drop) {
      const dir = path.dirname(d.path);
      const tmp = path.join(this.dir, `${TMP_PREFIX}pruned-${path.basename(dir)}`);
      await fsp.rename(dir, tmp);
      doomed.push(tmp);
    }
    await syncDir(this.dir);
    for (const tmp of doomed) await fsp.rm(tmp, { recursive: true, force: true });
  }
}

function readSnapshotDir(full: string, index: number, term: number): SnapshotInfo {
  const metaFile = path.join(full, 'meta.json');
  const dataFile = path.join(full, 'data');
  let meta: SnapshotMeta;
  try {
    meta = JSON.parse(readFileSync(metaFile, 'utf8')) as SnapshotMeta;
    validateMeta(meta);
  } catch (err) {
    throw new StorageCorruptError('snapshot metadata unreadable', { file: metaFile }, { cause: err });
  }
  if (meta.index !== index || meta.term !== term) {
    throw new StorageCorruptError(`snapshot metadata says ${meta.index}/${meta.term}, directory name says ${index}/${term}`, { file: metaFile });
  }
  let size: number;
  try {
    size = statSync(dataFile).size;
  } catch (err) {
    throw new StorageCorruptError('snapshot data missing', { file: dataFile }, { cause: err });
  }
  return { meta, path: dataFile, size };
}

function validateMeta(meta: SnapshotMeta): void {
  const ok =
    Number.isSafeInteger(meta.index) && meta.index > 0 && Number.isSafeInteger(meta.term) && meta.term > 0 &&
    Array.isArray(meta.conf?.voters) && Array.isArray(meta.conf?.learners);
  if (!ok) throw new StorageUsageError(`invalid snapshot meta ${JSON.stringify(meta)}`);
}
