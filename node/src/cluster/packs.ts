// Packs: the data files of committed snapshots, hard-linked into one directory under a name derived from
// the snapshot's (index, term), `<packs dir>/<index>-<term>.pack`. An incremental snapshot refers to
// objects in earlier snapshots' files by pack name, and the log's snapshot retention deletes snapshot
// directories, not packs: the link keeps the bytes while any retained snapshot or any object needs them.
// Only ObjectStore.collectGarbage deletes a pack (see there for when).
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { syncDir } from '../storage/fsutil.js';
import { readSliced } from '../storage/sliced-io.js';
import { isPackName, SnapshotFormatError } from './snapshot-format.js';

const SUFFIX = '.pack';

export function packPath(dir: string, name: string): string {
  return path.join(dir, `${name}${SUFFIX}`);
}

/**
 * One open read handle on a pack, with the bytes of current objects it holds (for compaction). Readers
 * take a reference for the duration of a read, so a pack collected meanwhile (unlinked) stays readable
 * through its open descriptor until the last pending read finishes; only then is the handle closed.
 */
export class Pack {
  private refs = 0;
  private superseded = false;
  /** Current objects whose bytes are in this pack, and their bytes. */
  liveObjects = 0;
  liveBytes = 0;

  private constructor(
    readonly name: string,
    readonly path: string,
    private readonly handle: FileHandle,
    /** The file's size: everything in it that is not a live object's bytes is garbage. */
    readonly size: number,
    readonly ino: number,
  ) {}

  /** Opens an existing pack; a missing one is corruption (a snapshot refers to it). */
  static async open(dir: string, name: string): Promise<Pack> {
    return Pack.openFile(packPath(dir, name), name);
  }

  /** Opens a snapshot file that is not (yet) a pack, to read objects from it: a delta being completed. */
  static async openFile(file: string, name: string): Promise<Pack> {
    let handle: FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new SnapshotFormatError(`pack ${file} is missing`);
      throw e;
    }
    try {
      const st = await handle.stat();
      return new Pack(name, file, handle, st.size, st.ino);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  acquire(): void {
    this.refs++;
  }

  release(): void {
    this.refs--;
    this.closeIfUnused();
  }

  /** No longer in the store's pack table: closed once the last reference is released. */
  supersede(): void {
    this.superseded = true;
    this.closeIfUnused();
  }

  /** Reads exactly `length` bytes at `position` (call between acquire and release). */
  async readExactly(position: number, length: number): Promise<Buffer> {
    return this.readInto(Buffer.allocUnsafe(length), position);
  }

  /** Fills `buf` from `position` (call between acquire and release); returns it. */
  async readInto(buf: Buffer, position: number): Promise<Buffer> {
    const done = await readSliced(this.handle, buf, position);
    if (done < buf.length) throw new SnapshotFormatError(`${this.path}: unexpected end of file at ${position + done}`);
    return buf;
  }

  private closeIfUnused(): void {
    if (this.superseded && this.refs === 0) void this.handle.close().catch(() => undefined);
  }
}

export async function ensurePacksDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await syncDir(path.dirname(path.resolve(dir)));
}

/**
 * Makes `dataFile` (a committed snapshot's data) pack `name`, durably: a hard link, then a directory
 * fsync. Idempotent: an existing link to the same inode is fine (a crash after the link, or a load of a
 * snapshot already linked); one to another file is corruption, never overwritten, as later snapshots
 * may refer to its bytes.
 */
export async function linkPack(dir: string, name: string, dataFile: string): Promise<void> {
  const file = packPath(dir, name);
  try {
    await fs.link(dataFile, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const [a, b] = await Promise.all([fs.stat(dataFile), fs.stat(file)]);
    if (a.ino !== b.ino || a.dev !== b.dev) throw new SnapshotFormatError(`pack ${file} exists but is not ${dataFile}`);
    return;
  }
  await syncDir(dir);
}

/** The names of the packs in `dir`. */
export async function listPacks(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const f of await fs.readdir(dir)) {
    if (f.endsWith(SUFFIX) && isPackName(f.slice(0, -SUFFIX.length))) names.push(f.slice(0, -SUFFIX.length));
  }
  return names;
}
