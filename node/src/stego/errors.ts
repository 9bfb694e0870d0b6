// Domain errors of the stego engine. Each carries a stable machine code and the HTTP status the API
// maps it to, so the HTTP layer has one error middleware and no per-route special cases.

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

const STATUS: Record<StegoErrorCode, number> = {
  not_png: 415,
  corrupt_png: 422,
  image_too_large: 413,
  too_many_chunks: 413,
  ancillary_too_large: 413,
  invalid_utf8: 400,
  unsupported_png: 422,
  capacity_exceeded: 413,
  no_payload: 422,
  corrupt_payload: 422,
  wrong_passphrase: 401,
  passphrase_required: 401,
  invalid_request: 400,
};

export class StegoError extends Error {
  readonly code: StegoErrorCode;
  readonly status: number;
  /** Extra machine-readable facts, e.g. {neededBytes, availableBytes} for capacity_exceeded. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: StegoErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'StegoError';
    this.code = code;
    this.status = STATUS[code];
    this.details = details;
  }
}

export function isStegoError(e: unknown): e is StegoError {
  return e instanceof StegoError;
}
