// How many payload-content bytes an image carries. Every usable slot holds one bit; the frame's
// framing comes out of the same bits, so with U usable slots:
//
//   capacity = ⌊U / 8⌋ − overhead
//
// overhead = 19 bytes without passphrase (15 header + 4 CRC-32), 54 with one (16 salt + 6 header + two
// 16-byte GCM tags). Content is the UTF-8 text, or for a file 1 + filename bytes + data (see
// payloadSize). Either frame's walk can visit every usable slot, so this is exact, not an estimate.

import { StegoError } from './errors.js';
import { PLAIN_BODY_OVERHEAD, PLAIN_HEADER_BYTES } from './frame.js';
import { SEALED_OVERHEAD } from './sealed.js';

export function frameOverheadBytes(encrypted: boolean): number {
  return encrypted ? SEALED_OVERHEAD : PLAIN_HEADER_BYTES + PLAIN_BODY_OVERHEAD;
}

/** Capacity in content bytes; negative when the image cannot even hold an empty payload's frame. */
export function capacityForSlots(usableSlots: number, encrypted: boolean): number {
  return Math.floor(usableSlots / 8) - frameOverheadBytes(encrypted);
}

/** Throws capacity_exceeded stating both sides when `neededBytes` of content do not fit. */
export function assertFits(neededBytes: number, usableSlots: number, encrypted: boolean): void {
  const capacity = capacityForSlots(usableSlots, encrypted);
  if (neededBytes <= capacity) return;
  const overhead = frameOverheadBytes(encrypted);
  const available = Math.max(0, capacity);
  const what = encrypted ? 'framing and encryption' : 'framing';
  const room = Math.floor(usableSlots / 8);
  const message =
    capacity < 0
      ? `this image is too small to carry any payload: it has ${room} bytes of hiding room and ${what} alone needs ${overhead}`
      : `payload needs ${neededBytes} bytes but this image can carry at most ${available} bytes ` +
        `(${room} bytes of hiding room minus ${overhead} bytes of ${what} overhead)`;
  throw new StegoError(
    'capacity_exceeded',
    message,
    { neededBytes, availableBytes: available, overheadBytes: overhead, usableBits: usableSlots },
  );
}
