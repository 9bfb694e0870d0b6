// The messages that cross the main-thread/worker boundary, and how errors survive the crossing.
// Structured clone keeps an Error's message but drops its class and own fields, so a StegoError thrown
// in a worker would arrive as a plain Error and turn into a 500. Errors are therefore flattened into
// plain data here and re-created on the main thread with the same code, message and details.
import { StegoError, isStegoErrorCode } from '../stego/errors.js';

export interface JobRequest<J> {
  id: number;
  job: J;
}

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  details?: Record<string, unknown>;
  stack?: string;
}

export type JobResponse<R> = { id: number; ok: true; result: R } | { id: number; ok: false; error: SerializedError };

/** Sent once by a worker when its modules are loaded, so job timeouts do not count start-up time. */
export interface WorkerReady {
  ready: true;
}

export const READY: WorkerReady = { ready: true };

export function serializeError(e: unknown): SerializedError {
  if (e instanceof StegoError) {
    return { name: 'StegoError', code: e.code, message: e.message, details: e.details };
  }
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

/** An error thrown by job code in a worker that is not a domain error: a bug (the HTTP layer logs it, 500). */
export class WorkerJobError extends Error {
  constructor(original: SerializedError) {
    super(`worker job failed: ${original.name}: ${original.message}`);
    this.name = 'WorkerJobError';
    if (original.stack) this.stack = `${this.stack}\n--- in worker ---\n${original.stack}`;
  }
}

export function reviveError(s: SerializedError): Error {
  if (s.name === 'StegoError' && isStegoErrorCode(s.code)) {
    return new StegoError(s.code, s.message, s.details);
  }
  return new WorkerJobError(s);
}

const ownedByJobs = new WeakSet<ArrayBuffer>();

/**
 * Declares that `ab` belongs to whoever submits a job with a view of it: the pool may transfer (and so
 * detach) the whole buffer even when the job's view covers only part of it. Used for upload arenas.
 */
export function markTransferable(ab: ArrayBuffer): void {
  ownedByJobs.add(ab);
}

/**
 * The ArrayBuffer behind `view` if it can be handed to another thread without copying: when the view
 * covers the whole buffer, or the buffer was marked transferable. A Buffer slice from Node's shared
 * 8 KiB allocation pool (or any other shared buffer) must never be transferred — that would detach
 * every other view of it — so such views are copied.
 */
export function transferableCopy(view: Uint8Array): { bytes: Uint8Array; transfer: ArrayBuffer[] } {
  const ab = view.buffer;
  const whole = view.byteOffset === 0 && view.byteLength === ab.byteLength;
  if (ab instanceof ArrayBuffer && (whole || ownedByJobs.has(ab))) return { bytes: view, transfer: [ab] };
  const copy = new Uint8Array(view.byteLength);
  copy.set(view);
  return { bytes: copy, transfer: [copy.buffer] };
}
