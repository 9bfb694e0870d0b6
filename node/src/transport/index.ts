// Public surface of the raft transport (docs/transport.md).
export type {
  LinkStats,
  Message,
  RequestHandler,
  SnapshotSendResult,
  SnapshotSource,
  Transport,
  TransportEvents,
} from './types.js';
export { WsTransport, type TransportLogger, type TransportMetricsSink, type WsTransportOptions } from './ws-transport.js';
export { InMemoryNetwork, InMemoryTransport, type DelayFn, type DropFilter, type InMemoryTransportOptions } from './in-memory.js';
export { CodecError, RemoteError, TransportError, type TransportErrorCode } from './errors.js';
export { decodeFrame, encodeFrame, WIRE_VERSION, type Frame } from './codec.js';
