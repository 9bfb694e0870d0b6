// How any thrown value becomes an HTTP answer. Domain errors (StegoError, PoolError, ClusterError) carry
// a code and nothing about HTTP: the tables below are the one place their codes become statuses and
// Retry-After. ApiError and http-errors from Koa/router carry `status` + `expose`; everything else is a
// bug and becomes a logged 500 whose message is not leaked to the client.
import { ClusterError, type ClusterErrorCode } from '../cluster/errors.js';
import { StegoError, type StegoErrorCode } from '../stego/errors.js';
import { PoolError, type PoolErrorCode } from '../workers/pool.js';

/** An HTTP-level error that is not about the image or payload (body too large, wrong content type...). */
export class ApiError extends Error {
  readonly expose = true;
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
  /** True for errors nobody anticipated: logged with their stack. */
  unexpected: boolean;
}

const CODE_FOR_STATUS: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  408: 'request_timeout',
  411: 'length_required',
  413: 'body_too_large',
  415: 'unsupported_media_type',
  422: 'unprocessable',
  429: 'too_many_requests',
  501: 'not_implemented',
  503: 'unavailable',
};

interface ErrorLike {
  status?: unknown;
  statusCode?: unknown;
  code?: unknown;
  expose?: unknown;
  message?: unknown;
  headers?: unknown;
}

function statusOf(e: ErrorLike): number | undefined {
  const s = typeof e.status === 'number' ? e.status : e.statusCode;
  return typeof s === 'number' && Number.isInteger(s) && s >= 400 && s <= 599 ? s : undefined;
}

function stringHeaders(h: unknown): Record<string, string> {
  if (h === null || typeof h !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
  return out;
}

/**
 * How a domain code is answered. `retryAfterSeconds`: the request may succeed shortly, so the answer
 * says when to retry (an error that knows better, a PoolError, says so itself). `unexpected`: logged
 * with its stack although the client gets the code and message.
 */
export interface DomainMapping {
  status: number;
  retryAfterSeconds?: number;
  unexpected?: true;
}

export const STEGO_ANSWERS: Readonly<Record<StegoErrorCode, DomainMapping>> = {
  not_png: { status: 415 },
  corrupt_png: { status: 422 },
  image_too_large: { status: 413 },
  too_many_chunks: { status: 413 },
  ancillary_too_large: { status: 413 },
  invalid_utf8: { status: 400 },
  unsupported_png: { status: 422 },
  capacity_exceeded: { status: 413 },
  no_payload: { status: 422 },
  corrupt_payload: { status: 422 },
  wrong_passphrase: { status: 401 },
  passphrase_required: { status: 401 },
  invalid_request: { status: 400 },
};

/** The worker pool could not finish the job for now: 503, never a 500 (that would claim a bug). */
export const POOL_ANSWERS: Readonly<Record<PoolErrorCode, DomainMapping>> = {
  pool_saturated: { status: 503 },
  job_timeout: { status: 503 },
  // a worker died under a job: the input may be hostile, or we have a bug; worth a stack in the log
  worker_crashed: { status: 503, unexpected: true },
  pool_closed: { status: 503 },
};

/** The cluster layer's codes: the transient ones are 503 with Retry-After. */
export const CLUSTER_ANSWERS: Readonly<Record<ClusterErrorCode, DomainMapping>> = {
  no_leader: { status: 503, retryAfterSeconds: 1 },
  unavailable: { status: 503, retryAfterSeconds: 1 },
  timeout: { status: 503, retryAfterSeconds: 1 },
  proposal_lost: { status: 503, retryAfterSeconds: 1 },
  busy: { status: 503, retryAfterSeconds: 1 },
  change_in_progress: { status: 409 },
  invalid_member: { status: 400 },
  not_found: { status: 404 },
  object_too_large: { status: 413 },
  // the token's stored bytes would pass its quota: the body is too large for what the token may still store
  quota_exceeded: { status: 413 },
  idempotency_key_reused: { status: 422 },
};

function domainAnswer(m: DomainMapping, error: ErrorBody['error'], retryAfterSeconds = m.retryAfterSeconds): ErrorAnswer {
  const headers: Record<string, string> = retryAfterSeconds === undefined ? {} : { 'Retry-After': String(retryAfterSeconds) };
  return { status: m.status, body: { error }, headers, unexpected: m.unexpected === true };
}

export function errorAnswer(e: unknown): ErrorAnswer {
  if (e instanceof ClusterError) return domainAnswer(CLUSTER_ANSWERS[e.code], { code: e.code, message: e.message });
  if (e instanceof StegoError) {
    const error: ErrorBody['error'] = { code: e.code, message: e.message };
    if (e.details) error.details = e.details;
    return domainAnswer(STEGO_ANSWERS[e.code], error);
  }
  if (e instanceof PoolError) return domainAnswer(POOL_ANSWERS[e.code], { code: e.code, message: e.message }, e.retryAfterSeconds);
  const like = (e !== null && typeof e === 'object' ? e : {}) as ErrorLike;
  const status = statusOf(like);
  // A status with a code (ApiError) or http-errors' `expose` is meant for the client; a bare 5xx from
  // somewhere deep is not.
  const meant = status !== undefined && (typeof like.code === 'string' || like.expose === true);
  // Body parser errors (koa-body through co-body: a SyntaxError for JSON that is malformed or not an object
  // or array) carry status 400 or 415 but neither a domain code nor `expose`: they are about the request.
  if ((status === 400 || status === 415) && !meant) {
    const detail = typeof like.message === 'string' && like.message !== '' ? `: ${like.message}` : '';
    return { status: 400, body: { error: { code: 'invalid_request', message: `the request body could not be parsed${detail}` } }, headers: {}, unexpected: false };
  }
  if (status !== undefined && meant) {
    const code = typeof like.code === 'string' ? like.code : (CODE_FOR_STATUS[status] ?? `http_${status}`);
    const message = typeof like.message === 'string' && like.message !== '' ? like.message : code;
    return { status, body: { error: { code, message } }, headers: stringHeaders(like.headers), unexpected: status >= 500 && status !== 503 };
  }
  return {
    status: 500,
    body: { error: { code: 'internal_error', message: 'internal server error' } },
    headers: {},
    unexpected: true,
  };
}
