// How any thrown value becomes an HTTP answer. Domain errors carry their own code and status
// (StegoError, pool and cluster errors); http-errors from Koa/router carry `status` + `expose`;
// everything else is a bug and becomes a logged 500 whose message is not leaked to the client.
import { ClusterError, TRANSIENT_CODES, type ClusterErrorCode } from '../cluster/errors.js';
import { StegoError } from '../stego/errors.js';

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

/** The cluster layer's domain errors as HTTP: transient ones are 503 with Retry-After. */
const CLUSTER_STATUS: Record<ClusterErrorCode, number> = {
  no_leader: 503,
  unavailable: 503,
  timeout: 503,
  proposal_lost: 503,
  busy: 503,
  change_in_progress: 409,
  invalid_member: 400,
  not_found: 404,
  object_too_large: 413,
  // the token's stored bytes would pass its quota: the body is too large for what the token may still store
  quota_exceeded: 413,
  idempotency_key_reused: 422,
};

export function errorAnswer(e: unknown): ErrorAnswer {
  if (e instanceof ClusterError) {
    const headers: Record<string, string> = TRANSIENT_CODES.has(e.code) ? { 'Retry-After': '1' } : {};
    return { status: CLUSTER_STATUS[e.code], body: { error: { code: e.code, message: e.message } }, headers, unexpected: false };
  }
  if (e instanceof StegoError) {
    const body: ErrorBody = { error: { code: e.code, message: e.message } };
    if (e.details) body.error.details = e.details;
    return { status: e.status, body, headers: {}, unexpected: false };
  }
  const like = (e !== null && typeof e === 'object' ? e : {}) as ErrorLike;
  const status = statusOf(like);
  // A status with a domain code (our errors, the cluster layer's errors) or http-errors' `expose` is meant for
  // the client; a bare 5xx from somewhere deep is not.
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
    return { status, body: { error: { code, message } }, headers: stringHeaders(like.headers), unexpected: (status >= 500 && status !== 503) || like.code === 'worker_crashed' };
  }
  return {
    status: 500,
    body: { error: { code: 'internal_error', message: 'internal server error' } },
    headers: {},
    unexpected: true,
  };
}
