// Where uploaded file parts land in memory. Collecting socket chunks and joining them at the end
// costs one memcpy of the whole upload in a single main-thread task (≈10–15 ms for a 20 MB photo on a
// busy machine), which shows up directly as event-loop delay. Instead, when the request declares its
// Content-Length, one buffer of that size is allocated up front and each chunk is copied into it as it
// arrives (many ~64 KiB copies, interleaved with other work). The file parts are views into that one
// buffer, which the worker pool may transfer to a worker without copying (markTransferable): a job
// consumes the request's uploads. Without a Content-Length, or past it, chunks are kept and joined.
// The arena is allocated only once DEFER_BYTES of parts have arrived (until then the chunks are kept as
// they came and copied in then, one copy of at most DEFER_BYTES): an upload refused early — a hostile
// PNG stops at its header or its 20,001st chunk — never allocates its declared length, which would cost
// an mmap and, worse, external memory that makes V8 run a full garbage collection every few requests.
import { Writable } from 'node:stream';
import { markTransferable } from '../workers/protocol.js';

/** Part bytes kept as received before the arena is allocated. */
export const DEFER_BYTES = 1024 * 1024;

interface Region {
  start: number;
  length: number;
  /** Chunks that did not fit the arena (undeclared or understated Content-Length). */
  spill: Buffer[];
}

export class UploadArena {
  private bytes: Buffer | undefined;
  private used = 0;
  /** Chunks at arena offsets [0, used) while the arena is not allocated yet. */
  private pending: Buffer[] = [];
  private readonly regions = new WeakMap<object, Region>();

  /** `capacity` is the declared body length (0 when unknown: every chunk spills). */
  constructor(private readonly capacity: number) {}

  /**
   * A Writable that stores one file part; `key` identifies the part for contentOf(). `inspect` sees each
   * piece first (a PNG's chunk limits): when it throws, the write fails and so does the parse.
   */
  stream(key: object, inspect?: { push(bytes: Uint8Array): void }): Writable {
    const region: Region = { start: this.used, length: 0, spill: [] };
    this.regions.set(key, region);
    return new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        try {
          inspect?.push(chunk);
        } catch (e) {
          done(e as Error);
          return;
        }
        this.append(region, chunk);
        done();
      },
    });
  }

  /** Bytes of the arena buffer allocated so far (0 until DEFER_BYTES of parts arrived or a part is read). */
  get allocatedBytes(): number {
    return this.bytes?.length ?? 0;
  }

  /** The stored bytes of a part, or undefined if `key` never streamed here. */
  contentOf(key: object): Buffer | undefined {
    const region = this.regions.get(key);
    if (!region) return undefined;
    if (!this.bytes && this.used > 0) this.arena();
    const head = this.bytes ? this.bytes.subarray(region.start, region.start + region.length) : Buffer.alloc(0);
    return region.spill.length === 0 ? head : Buffer.concat([head, ...region.spill]);
  }

  private append(region: Region, chunk: Buffer): void {
    const contiguous = region.spill.length === 0 && region.start + region.length === this.used;
    if (contiguous && this.used + chunk.length <= this.capacity) {
      if (!this.bytes && this.used + chunk.length <= DEFER_BYTES) {
        this.pending.push(chunk);
      } else {
        this.arena().set(chunk, this.used);
      }
      this.used += chunk.length;
      region.length += chunk.length;
    } else {
      region.spill.push(chunk);
    }
  }

  private arena(): Buffer {
    if (!this.bytes) {
      // allocUnsafeSlow: never from Node's shared pool (which must never move), and not zero-filled —
      // no view ever covers bytes that were not written.
      this.bytes = Buffer.allocUnsafeSlow(this.capacity);
      markTransferable(this.bytes.buffer as ArrayBuffer);
      let at = 0;
      for (const chunk of this.pending) {
        this.bytes.set(chunk, at);
        at += chunk.length;
      }
      this.pending = [];
    }
    return this.bytes;
  }
}
