// Payloads on a decoded Raster. Without a passphrase the public frame's header goes into the first usable
// slots of the default order and its body continues that walk. With a passphrase the sealed frame walks an
// order keyed by the passphrase from its first step: no slot of a public position is touched. Version-1
// encrypted images (header in the default order, body in a keyed order skipping the header's slots) are
// still read. Everything here edits the raster in place: no copy of the image is made.

import { StegoError } from './errors.js';
import { assertFits, capacityForSlots } from './capacity.js';
import { assertScryptCost, DEFAULT_SCRYPT_LOG2N } from './crypto.js';
import { contentBytes, decodeFrame, encodeFrame, type FrameReader } from './frame.js';
import { Directions, embedBytes, extractBytes } from './lsb.js';
import { DEFAULT_ORDER_KEY, KeyedPermutation, SlotSpace, SlotWalk } from './order.js';
import type { Raster } from './raster.js';
import { NO_PAYLOAD_MESSAGE, openSealedFrame, sealedOrderKey, sealFrame, type SealedOptions } from './sealed.js';

export type Payload = { kind: 'text'; text: string } | { kind: 'file'; filename: string; data: Uint8Array };

export interface PayloadOptions {
  /** Encrypts the payload and keys its slot order. An empty string means "no passphrase". */
  passphrase?: string | undefined;
  /**
   * scrypt cost N = 2^log2N (default 15, accepted 10..16) of both key derivations of a sealed frame. Not
   * stored in the image (nothing may be): an image sealed with a non-default cost is extracted with the
   * same option. The API always uses the default.
   */
  scryptLog2N?: number | undefined;
}

const MAX_PASSPHRASE_BYTES = 1024;
const HEADER_SET_LIMIT = 1 << 16;

/** Bytes the payload counts against capacity: UTF-8 text, or 1 + filename bytes + data for a file. */
export function payloadSize(payload: Payload): number {
  return contentBytes(payload);
}

/**
 * Largest payloadSize that fits this raster with these options. Negative when not even an empty payload
 * fits (the frame alone is too big); the engine reports that as 0.
 */
export function rasterCapacity(raster: Raster, opts: PayloadOptions = {}): number {
  const encrypted = passphraseOf(opts) !== undefined;
  return capacityForSlots(new SlotSpace(raster).usableSlotCount(), encrypted);
}

export async function hideInRaster(raster: Raster, payload: Payload, opts: PayloadOptions = {}): Promise<void> {
  const sealing = sealedOptions(opts);
  const space = new SlotSpace(raster);
  // Checked before scrypt runs, so an oversized request costs one pass over alpha at most.
  assertFits(payloadSize(payload), space.usableSlotCount(), sealing !== undefined);
  const directions = new Directions();
  let fitted: boolean;
  if (sealing === undefined) {
    const frame = encodeFrame(payload);
    const walk = new SlotWalk(space, new KeyedPermutation(DEFAULT_ORDER_KEY, space.slotCount));
    fitted = embedBytes(space, walk, frame.header, directions) && embedBytes(space, walk, frame.body, directions);
  } else {
    const frame = await sealFrame(payload, sealing);
    fitted = embedBytes(space, new SlotWalk(space, new KeyedPermutation(frame.orderKey, space.slotCount)), frame.bytes, directions);
  }
  if (!fitted) throw new StegoError('capacity_exceeded', 'payload ran out of usable samples (capacity accounting error)');
}

/**
 * With a passphrase the sealed frame is tried first (a cover that carried an older public frame may still
 * show it; the passphrase's own payload wins), then a public frame (version 1 or 2). An image with nothing
 * in it and one sealed with another passphrase take the same path to the same no_payload.
 */
export async function revealFromRaster(raster: Raster, opts: PayloadOptions = {}): Promise<Payload> {
  const sealing = sealedOptions(opts);
  const space = new SlotSpace(raster);
  if (sealing !== undefined) {
    const sealed = await revealSealed(space, sealing).catch((e: unknown) => {
      if (e instanceof StegoError && e.code === 'no_payload') return null;
      throw e;
    });
    if (sealed !== null) return sealed;
  }
  const found = await decodeFrame(new RasterFrameReader(space), sealing?.passphrase);
  if (found === null) throw new StegoError('no_payload', NO_PAYLOAD_MESSAGE);
  return found;
}

async function revealSealed(space: SlotSpace, sealing: SealedOptions): Promise<Payload> {
  const orderKey = await sealedOrderKey(sealing);
  const walk = new SlotWalk(space, new KeyedPermutation(orderKey, space.slotCount));
  const data = space.raster.data;
  // An upper bound (all slots, usable or not), as for the public frame: a body claiming more than the
  // usable slots hold is caught when its walk runs out.
  return openSealedFrame({ read: (n) => extractBytes(walk, data, n) }, sealing, Math.floor(space.slotCount / 8));
}

function sealedOptions(opts: PayloadOptions): SealedOptions | undefined {
  const passphrase = passphraseOf(opts);
  if (passphrase === undefined) return undefined;
  const scryptLog2N = opts.scryptLog2N ?? DEFAULT_SCRYPT_LOG2N;
  assertScryptCost(scryptLog2N, 'option');
  return { passphrase, scryptLog2N };
}

function passphraseOf(opts: PayloadOptions): string | undefined {
  const passphrase = opts.passphrase;
  if (passphrase === undefined || passphrase === '') return undefined;
  if (Buffer.byteLength(passphrase, 'utf8') > MAX_PASSPHRASE_BYTES) {
    throw new StegoError('invalid_request', `passphrase is longer than ${MAX_PASSPHRASE_BYTES} bytes`);
  }
  return passphrase;
}

/** The public frame's walks: the header in the default order, and the body that follows it (or, in a version-1 encrypted frame, walks a keyed order skipping the header's slots). */
class FrameWalks {
  readonly header: SlotWalk;
  private readonly defaultOrder: KeyedPermutation;

  constructor(private readonly space: SlotSpace) {
    this.defaultOrder = new KeyedPermutation(DEFAULT_ORDER_KEY, space.slotCount);
    this.header = new SlotWalk(space, this.defaultOrder);
  }

  /** Call once the header is written or read: the header's slots are those the default walk has passed. */
  body(orderKey: Uint8Array | null): SlotWalk {
    if (orderKey === null) return this.header;
    const keyed = new KeyedPermutation(orderKey, this.space.slotCount);
    return new SlotWalk(this.space, keyed, this.headerSlots());
  }

  // The header's slots are the first `step` slots of the default order. Usually a few hundred: a Set of
  // them is the cheapest test. When transparency makes the header's walk long, the permutation's inverse
  // answers the same question in O(1) memory.
  private headerSlots(): (slot: number) => boolean {
    const headerEnd = this.header.step;
    const defaultOrder = this.defaultOrder;
    if (headerEnd > HEADER_SET_LIMIT) return (slot) => defaultOrder.inverse(slot) < headerEnd;
    const slots = new Set<number>();
    for (let i = 0; i < headerEnd; i++) slots.add(defaultOrder.forward(i));
    return (slot) => slots.has(slot);
  }
}

class RasterFrameReader implements FrameReader {
  private readonly walks: FrameWalks;
  private headerBits = 0;

  constructor(private readonly space: SlotSpace) {
    this.walks = new FrameWalks(space);
  }

  header(n: number): Uint8Array | null {
    this.headerBits += 8 * n;
    return extractBytes(this.walks.header, this.space.raster.data, n);
  }

  // An upper bound (all slots, usable or not): exact counting would read every alpha sample, and a body
  // that claims more than the usable slots hold is caught when its walk runs out.
  bodyBytesAvailable(): number {
    return Math.max(0, Math.floor((this.space.slotCount - this.headerBits) / 8));
  }

  body(n: number, orderKey: Uint8Array | null): Uint8Array {
    const bytes = extractBytes(this.walks.body(orderKey), this.space.raster.data, n);
    if (bytes === null) throw new StegoError('corrupt_payload', 'payload body runs past the last usable sample of the image');
    return bytes;
  }
}
