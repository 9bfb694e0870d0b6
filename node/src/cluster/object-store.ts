// The replicated state machine: stego PNG objects plus the members' raft addresses.
//
// Objects live one file per object under <dir>/<id>.png, written in the background after apply; until the
// write completes the object is served from memory. Object files are not fsync'd one by one: the raft log is the durable
// record, and apply is idempotent, so after a crash the driver replays the log from the latest snapshot
// and every object written since is rewritten. Objects covered by a snapshot are verified against the
// snapshot at start (size and sha256) and re-extracted from the snapshot file when damaged.
//
// Snapshot file (see docs/cluster.md):
//   "STEGOSNP" | u32 BE version (1) | u32 BE manifest length | manifest JSON | object bytes back to back
// The manifest records the applied index/term, the ConfState, the member addresses and, per object,
// its metadata and offset into the data section. The data section is the raw PNG bytes: no encoding.

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, writeFile } from 'node:fs';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ConfState, NodeId, SnapshotMeta } from '../raft/types.js';
import type { Command } from './commands.js';

/**
 * The callback flavour of writeFile: one object file is written per applied put on every node, and the
 * promise API's FileHandle bookkeeping showed up as ~10% of a busy leader's main-thread CPU.
 */
const writeFileCb = promisify(writeFile);

export interface ObjectMeta {
  id: string;
  sha256: string;
  size: number;
  contentType: string;
  createdAt: number;
}

interface ManifestObject extends ObjectMeta {
  offset: number;
}

export interface SnapshotManifest {
  index: number;
  term: number;
  conf: ConfState;
  members: [NodeId, string][];
  objects: ManifestObject[];
}

export class SnapshotFormatError extends Error {
  readonly code = 'corrupt_snapshot';
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotFormatError';
  }
}

const MAGIC = Buffer.from('STEGOSNP', 'ascii');
const VERSION = 1;
const HEADER_BYTES = MAGIC.length + 8;
export const OBJECT_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

export class ObjectStore {
  private objects = new Map<string, ObjectMeta>();
  private memberAddrs = new Map<NodeId, string>();
  /** Snapshot writers in progress: deletes wait for them so the files they stream stay readable. */
  private snapshotsInProgress = 0;
  private deferredUnlinks: string[] = [];
  /** Objects applied whose file is not written yet: served from here meanwhile. */
  private readonly unwritten = new Map<string, Uint8Array>();
  private readonly chains = new Map<string, Promise<void>>();

  private constructor(
    readonly dir: string,
    private onWriteError: (e: Error) => void,
  ) {}

  /** `onWriteError`: an object file could not be written; the replica can no longer be trusted. */
  static async open(dir: string, onWriteError: (e: Error) => void = (e) => {
    throw e;
  }): Promise<ObjectStore> {
    await fs.mkdir(dir, { recursive: true });
    await removeTempFiles(dir);
    return new ObjectStore(dir, onWriteError);
  }

  /** Replaces the write-error callback (the driver installs its step-down once it exists). */
  setWriteErrorHandler(fn: (e: Error) => void): void {
    this.onWriteError = fn;
  }

  get size(): number {
    return this.objects.size;
  }

  get(id: string): ObjectMeta | undefined {
    return this.objects.get(id);
  }

  list(): ObjectMeta[] {
    return [...this.objects.values()].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  members(): Map<NodeId, string> {
    return new Map(this.memberAddrs);
  }

  /** Seeds member addresses from configuration; replicated setMember commands override them. */
  seedMembers(members: Map<NodeId, string>): void {
    for (const [id, addr] of members) if (!this.memberAddrs.has(id)) this.memberAddrs.set(id, addr);
  }

  async read(id: string): Promise<Buffer | undefined> {
    if (!this.objects.has(id)) return undefined;
    const pending = this.unwritten.get(id);
    if (pending) return Buffer.from(pending);
    try {
      return await fs.readFile(this.objectPath(id));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * Applies a command to the in-memory state at once and writes the object file in the background, so
   * the raft loop never waits on object I/O (the log already holds the bytes durably). Until its file is
   * written an object is served from memory. Idempotent: replaying the log after a restart converges.
   */
  apply(cmd: Command): void {
    switch (cmd.kind) {
      case 'put': {
        const bytes = cmd.bytes;
        this.objects.set(cmd.id, {
          id: cmd.id,
          sha256: Buffer.from(cmd.sha256).toString('hex'),
          size: bytes.length,
          contentType: cmd.contentType,
          createdAt: cmd.createdAt,
        });
        this.unwritten.set(cmd.id, bytes);
        this.schedule(cmd.id, async () => {
          // no temp file + rename: nobody reads the file before this write completes (reads are served
          // from `unwritten`, snapshots flush first), and a write torn by a crash is redone by log replay
          await writeFileCb(this.objectPath(cmd.id), bytes);
          if (this.unwritten.get(cmd.id) === bytes) this.unwritten.delete(cmd.id);
        });
        return;
      }
      case 'delete': {
        if (!this.objects.delete(cmd.id)) return;
        this.unwritten.delete(cmd.id);
        this.schedule(cmd.id, () => this.unlinkObject(cmd.id));
        return;
      }
      case 'setMember':
        this.memberAddrs.set(cmd.id, cmd.address);
        return;
      case 'removeMember':
        this.memberAddrs.delete(cmd.id);
        return;
    }
  }

  /** Resolves once every object file scheduled so far is written (or deleted). */
  async flush(): Promise<void> {
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }

  /** Background file operations run one after another per object id, in apply order. */
  private schedule(id: string, op: () => Promise<void>): void {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.then(op).catch((e: unknown) => this.onWriteError(e as Error));
    this.chains.set(id, next);
    void next.then(() => {
      if (this.chains.get(id) === next) this.chains.delete(id);
    });
  }

  /**
   * Writes a snapshot of the state as it is *now* (the caller calls this right after applying
   * `meta.index`, before applying anything else). The object list is captured synchronously; the bytes
   * are streamed afterwards, which is safe because objects are immutable and deletes are deferred.
   * Returns the number of bytes written.
   */
  async writeSnapshot(file: string, meta: SnapshotMeta): Promise<number> {
    const list = this.list();
    const members = [...this.memberAddrs.entries()];
    this.snapshotsInProgress++;
    try {
      let offset = 0;
      const objects: ManifestObject[] = list.map((o) => {
        const m = { ...o, offset };
        offset += o.size;
        return m;
      });
      const manifest: SnapshotManifest = { index: meta.index, term: meta.term, conf: meta.conf, members, objects };
      const header = encodeHeader(manifest);
      // the list is captured; now make sure the files it names are on disk
      await this.flush();
      const paths = objects.map((o) => this.objectPath(o.id));
      async function* contents(): AsyncGenerator<Buffer> {
        yield header;
        for (let i = 0; i < paths.length; i++) {
          let n = 0;
          for await (const chunk of createReadStream(paths[i]!)) {
            n += (chunk as Buffer).length;
            yield chunk as Buffer;
          }
          if (n !== objects[i]!.size) {
            throw new SnapshotFormatError(`object ${objects[i]!.id} changed size while snapshotting (${n} != ${objects[i]!.size})`);
          }
        }
      }
      await pipeline(contents, createWriteStream(file));
      return header.length + offset;
    } finally {
      this.finishSnapshot();
    }
  }

  /** Replaces the whole state with the snapshot's (install from the leader). Returns its manifest. */
  async restore(file: string): Promise<SnapshotManifest> {
    await this.flush();
    this.unwritten.clear();
    const { manifest, dataStart } = await readManifest(file);
    for (const o of manifest.objects) await this.extractObject(file, dataStart, o);
    const keep = new Set(manifest.objects.map((o) => o.id));
    this.objects = new Map(manifest.objects.map((o) => [o.id, stripOffset(o)]));
    this.memberAddrs = new Map(manifest.members);
    await this.removeFilesExcept(keep);
    return manifest;
  }

  /**
   * Loads the state of a local snapshot at start, checking each object file against the snapshot and
   * re-extracting the damaged or missing ones (object files are not fsync'd; the snapshot file is).
   */
  async loadFromSnapshot(file: string): Promise<SnapshotManifest> {
    const { manifest, dataStart } = await readManifest(file);
    for (const o of manifest.objects) {
      if (!(await this.fileMatches(o))) await this.extractObject(file, dataStart, o);
    }
    this.objects = new Map(manifest.objects.map((o) => [o.id, stripOffset(o)]));
    this.memberAddrs = new Map(manifest.members);
    return manifest;
  }

  private objectPath(id: string): string {
    return path.join(this.dir, `${id}.png`);
  }

  private async fileMatches(o: ObjectMeta): Promise<boolean> {
    try {
      const st = await fs.stat(this.objectPath(o.id));
      if (st.size !== o.size) return false;
      const hash = createHash('sha256');
      await pipeline(createReadStream(this.objectPath(o.id)), hash);
      return hash.digest('hex') === o.sha256;
    } catch {
      return false;
    }
  }

  private async extractObject(file: string, dataStart: number, o: ManifestObject): Promise<void> {
    const target = this.objectPath(o.id);
    const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    if (o.size === 0) {
      await fs.writeFile(tmp, Buffer.alloc(0));
    } else {
      const start = dataStart + o.offset;
      await pipeline(createReadStream(file, { start, end: start + o.size - 1 }), createWriteStream(tmp));
    }
    await fs.rename(tmp, target);
  }

  private async unlinkObject(id: string): Promise<void> {
    if (this.snapshotsInProgress > 0) {
      this.deferredUnlinks.push(id);
      return;
    }
    await fs.rm(this.objectPath(id), { force: true });
  }

  private finishSnapshot(): void {
    this.snapshotsInProgress--;
    if (this.snapshotsInProgress > 0) return;
    const ids = this.deferredUnlinks.filter((id) => !this.objects.has(id));
    this.deferredUnlinks = [];
    for (const id of ids) void fs.rm(this.objectPath(id), { force: true }).catch(() => undefined);
  }

  private async removeFilesExcept(keep: Set<string>): Promise<void> {
    for (const name of await fs.readdir(this.dir)) {
      if (!name.endsWith('.png')) continue;
      const id = name.slice(0, -4);
      if (!keep.has(id)) await this.unlinkObject(id);
    }
  }
}

function stripOffset(o: ManifestObject): ObjectMeta {
  return { id: o.id, sha256: o.sha256, size: o.size, contentType: o.contentType, createdAt: o.createdAt };
}

function encodeHeader(manifest: SnapshotManifest): Buffer {
  const json = Buffer.from(JSON.stringify(manifest), 'utf8');
  const head = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(VERSION, MAGIC.length);
  head.writeUInt32BE(json.length, MAGIC.length + 4);
  return Buffer.concat([head, json]);
}

export async function readManifest(file: string): Promise<{ manifest: SnapshotManifest; dataStart: number }> {
  const fh = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fh.read(head, 0, HEADER_BYTES, 0);
    if (bytesRead < HEADER_BYTES || !head.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new SnapshotFormatError(`${file} is not a StegoCluster snapshot`);
    }
    const version = head.readUInt32BE(MAGIC.length);
    if (version !== VERSION) throw new SnapshotFormatError(`${file}: unsupported snapshot version ${version}`);
    const len = head.readUInt32BE(MAGIC.length + 4);
    const json = Buffer.alloc(len);
    const r = await fh.read(json, 0, len, HEADER_BYTES);
    if (r.bytesRead !== len) throw new SnapshotFormatError(`${file}: manifest truncated`);
    const manifest = JSON.parse(json.toString('utf8')) as SnapshotManifest;
    const dataStart = HEADER_BYTES + len;
    const dataBytes = manifest.objects.reduce((n, o) => n + o.size, 0);
    const st = await fh.stat();
    if (st.size < dataStart + dataBytes) {
      throw new SnapshotFormatError(`${file}: data truncated (${st.size} < ${dataStart + dataBytes} bytes)`);
    }
    return { manifest, dataStart };
  } finally {
    await fh.close();
  }
}

async function removeTempFiles(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    if (name.endsWith('.tmp')) await fs.rm(path.join(dir, name), { force: true });
  }
}
