// Typed errors of the transport. Every failure a caller can act on carries a stable code.

export type TransportErrorCode =
  | 'link_down' // no authenticated link to the peer right now
  | 'link_lost' // the link closed while the operation was in flight
  | 'timeout'
  | 'backpressure' // the peer's in-flight cap is reached
  | 'busy' // a snapshot to this peer is already streaming
  | 'stopped' // the transport was stopped
  | 'source_size_mismatch' // the snapshot source yielded a different number of bytes than announced
  | 'stalled'; // the receiver stopped acknowledging snapshot chunks

export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly code: TransportErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** An error raised by the remote side (an RPC handler or the snapshot receiver), carried back over the link. */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
  constructor(
    readonly code: string,
    message: string,
    readonly peer: string,
  ) {
    super(message);
  }
}

/** A frame that is not a well-formed frame of a version we speak. The link that sent it is closed. */
export class CodecError extends Error {
  override readonly name = 'CodecError';
  readonly code = 'bad_frame';
  constructor(message: string) {
    super(message);
  }
}
