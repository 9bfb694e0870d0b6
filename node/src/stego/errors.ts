// Domain errors of the stego engine. Each carries a stable machine code (and, for some, details);
// nothing about HTTP: http/errors.ts maps every code to its status in one table.
import { errorCodes } from '../error-codes.js';

export type StegoErrorCode =
  | 'not_png' // signature missing or not a PNG at all
  | 'corrupt_png' // truncated, bad CRC, bad zlib stream, bad IHDR
  | 'image_too_large' // over the configured pixel limit (checked from IHDR before decoding)
  | 'too_many_chunks' // more PNG chunks than the configured limit
  | 'ancillary_too_large' // ancillary chunks (text, ICC, Exif...) over the configured byte limit
  | 'invalid_utf8' // a text field (message, passphrase) is not valid UTF-8
  | 'unsupported_png' // a valid PNG we refuse, with the reason
  | 'capacity_exceeded' // payload does not fit; message states needed and available bytes
  | 'no_payload' // the image carries no StegoCluster frame
  | 'corrupt_payload' // a frame is present but its integrity check fails
  | 'wrong_passphrase' // encrypted payload and the passphrase does not open it
  | 'passphrase_required' // encrypted payload and no passphrase given
  | 'invalid_request'; // missing or malformed field

const CODES = errorCodes<StegoErrorCode>({
  not_png: true,
  corrupt_png: true,
  image_too_large: true,
  too_many_chunks: true,
  ancillary_too_large: true,
  invalid_utf8: true,
  unsupported_png: true,
  capacity_exceeded: true,
  no_payload: true,
  corrupt_payload: true,
  wrong_passphrase: true,
  passphrase_required: true,
  invalid_request: true,
});

/** Every StegoErrorCode, for tables that must cover them all. */
export const STEGO_ERROR_CODES = CODES.all;

export function isStegoErrorCode(code: unknown): code is StegoErrorCode {
  return CODES.has(code);
}

export class StegoError extends Error {
  readonly code: StegoErrorCode;
  /** Extra machine-readable facts, e.g. {neededBytes, availableBytes} for capacity_exceeded. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: StegoErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'StegoError';
    this.code = code;
    this.details = details;
  }
}

export function isStegoError(e: unknown): e is StegoError {
  return e instanceof StegoError;
}
