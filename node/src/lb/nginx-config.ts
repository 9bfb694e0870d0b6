// Renders the nginx configuration that fronts a StegoCluster. A pure function of the cluster's shape and
// current leader, so the local supervisor (scripts/local-cluster.ts) and the Kubernetes operator render the
// same thing and tests can assert on it without running nginx.
//
// Routing: every request is balanced round-robin over all nodes (the design guide's behaviour). Writes to
// the replicated store (non-GET on /api/objects and /admin) go to an upstream whose primary is the current
// leader and whose other members are `backup`: when the leader is gone nginx falls through to a follower,
// which forwards to whichever node won the election, so a stale config costs one hop, never a failed write.
//
// Request bodies: nginx buffers a body (`proxy_request_buffering on`: the whole body into memory or a temp
// file before it contacts a node) wherever a failover retry must be able to resend it, and streams it
// (`proxy_request_buffering off`: bytes go to a node as they arrive) where buffering would only cost:
//   - object writes and /admin (matched without regard to case, as the nodes' router matches them): always
//     buffered. If the leader dies or steps down while a write is in flight, nginx resends the same body,
//     with the same Idempotency-Key, to the next member, which forwards it to the new leader.
//   - everything else (the stateless uploads /api/embed, /api/extract, /api/capacity, and the reads): a body
//     under STREAM_BODY_FROM_BYTES, or none, is buffered as before, so it keeps every retry (a node killed
//     mid-request, a node's 503 pool_saturated or memory_budget); a body declared that large or larger, or
//     chunked (size unknown), is streamed through the internal location STREAM_LOCATION. A node that
//     refuses such an upload from its first bytes (a scan refusal, memory_budget, a missing token: answer,
//     `Connection: close`, the rest unread) then stops it at nginx too, instead of nginx first taking,
//     writing to a temp file and re-sending every byte of a 40 MB hostile body. The same split as the
//     node's own (DEFAULT_LINGER.maxBytes, 1 MiB): a smaller rest it reads and discards, a larger one it
//     never reads.
// The trade-off for a streamed upload (nginx's ngx_http_upstream_next: no retry once `request_sent` while
// the body is streamed): nginx passes it to the next node when the first one failed before nginx started
// sending it the request (connection refused by a killed node or an empty Service, connect timeout), but not
// once any of it has gone to a node. A node dying mid-upload is then the client's 502, and a node's own 503
// reaches the client with its Retry-After instead of being retried on another node. These routes are pure
// functions of their input, so the client's retry is the retry.
// Once a node's early answer is relayed, nginx ends the client's connection instead of keeping it alive
// (the body is unread): FIN, then a lingering close that reads and discards what the client still sends, so
// the client can read the answer before the close resets the connection. Clients that read while they send
// (curl, fetch, Node's http) stop at the answer; for one that does not, `lingering_time` bounds the
// discarding to the node's own 2 s (DEFAULT_LINGER.closeAfterMs) instead of nginx's default 30 s.
//
// Writes per client: a buffered write costs nginx the whole body (memory, then a temp file) before any
// node can refuse it, so nginx bounds what one client address may send to the write routes (non-GET/HEAD
// on /api/objects and /admin/) before reading a byte of a body: a request rate with a burst (limit_req,
// nodelay: within the burst nothing waits) and a number of writes in flight at once (limit_conn). Over
// either, nginx answers 429 rate_limited with Retry-After itself, and the node never sees the request. The
// nodes' per-token rate (429 rate_limited, STEGO token `rate`) stays the precise limit; this one is a
// ceiling per address above any single well-behaved client, so a flood (or one client rotating tokens, or
// sending none) is refused at the door. Reads and small stateless requests are not limited. Large stateless
// uploads (the streamed ones, STREAM_LOCATION) have their own rate per client address: each costs the node
// that refuses or processes it a scan of its first bytes and nginx a copy of what the socket buffers hold,
// so one client looping on multi-MB hostile files (bench:abuse: 30-100 per second from one cheap client) is
// held to a rate the cluster absorbs; over it, the same 429, before a byte of the body is read.
// The key is the address nginx sees: behind another proxy that is the proxy's, and every client shares it.
//
// Errors: every answer nginx makes itself (a body over the limit, no node reachable, a node timing out,
// a malformed or slow request) is the API's JSON error shape via `error_page` and named locations;
// answers from the nodes pass through untouched (no proxy_intercept_errors). The body limit is the
// node's STEGO_BODY_LIMIT_BYTES in bytes, so nginx and the nodes refuse at the same size.
import { DEFAULT_BODY_LIMIT_BYTES } from '../http/http-config.js';
import { DEFAULT_LINGER } from '../http/middleware/linger.js';

export interface UpstreamNode {
  id: string;
  /** host:port of the node's HTTP listener. */
  address: string;
}

export interface NginxSiteOptions {
  /** Port (or address:port) nginx listens on. */
  listen: string | number;
  nodes: UpstreamNode[];
  /** Current Raft leader, or null when none is known (writes are then balanced like reads). */
  leaderId: string | null;
  /**
   * An endpoint that always reaches the leader (in Kubernetes, the Service selecting `stego.io/role=leader`).
   * When set it is the write upstream's only primary and every node is a backup, so a leader change needs
   * no new config (the file then names the write primary, not the leader, so it stays the same).
   */
  writePrimary?: UpstreamNode;
  /** client_max_body_size in bytes: the nodes' STEGO_BODY_LIMIT_BYTES (default 50 MiB). */
  maxBodyBytes?: number;
  /** Longest pause between two reads of a client's body or header, and between two writes to it. */
  clientTimeoutSeconds?: number;
  /** Proxy send/read timeout; the design guide's 60 s for large uploads. */
  proxyTimeoutSeconds?: number;
  /**
   * Longest nginx reads and discards a client's unread body after answering it early (its own 413, or a
   * node's early refusal relayed on a streamed route) before it closes the connection.
   */
  lingeringTimeSeconds?: number;
  /** TCP connect timeout to a node. Short, so a dead host fails over quickly instead of holding the request. */
  proxyConnectTimeoutSeconds?: number;
  keepaliveConnections?: number;
  maxFails?: number;
  failTimeoutSeconds?: number;
  nextUpstreamTries?: number;
  /** Writes per second one client address may send (limit_req rate); 0 = no limit. */
  clientWritesPerSecond?: number;
  /** Writes a client address may send at once above that rate before it gets 429 (limit_req burst). */
  clientWriteBurst?: number;
  /** Writes one client address may have in flight at once, each body buffered whole (limit_conn); 0 = no limit. */
  clientWritesInFlight?: number;
  /** Large (streamed: STREAM_BODY_FROM_BYTES or more, or chunked) stateless uploads per second from one client address; 0 = no limit. */
  clientLargeUploadsPerSecond?: number;
  /** Large uploads a client address may send at once above that rate before it gets 429. */
  clientLargeUploadBurst?: number;
}

export interface NginxMainOptions extends NginxSiteOptions {
  /** Directory for pid, logs and temp files (nginx -p). */
  prefix: string;
  /** Worker user; set to 'root' when the master runs as root so temp files in `prefix` stay writable. */
  user?: string;
  workerProcesses?: number | 'auto';
  accessLog?: boolean;
}

const DEFAULTS = {
  maxBodyBytes: DEFAULT_BODY_LIMIT_BYTES,
  clientTimeoutSeconds: 15,
  proxyTimeoutSeconds: 60,
  lingeringTimeSeconds: Math.ceil(DEFAULT_LINGER.closeAfterMs / 1000),
  proxyConnectTimeoutSeconds: 2,
  keepaliveConnections: 32,
  maxFails: 2,
  failTimeoutSeconds: 5,
  nextUpstreamTries: 3,
  // Far above one client writing back to back (bench:abuse's well-behaved client stores ~100 small objects
  // per second on a quiet 2-core machine); a flood is refused at the door.
  clientWritesPerSecond: 200,
  clientWriteBurst: 400,
  clientWritesInFlight: 64,
  // A client embedding into multi-MB photos back to back sends a few per second (each is decoded and
  // encoded by a worker, ~50-100 ms of a core for a 1080p photo). Every one that is refused still costs
  // nginx what the client already pushed into the sockets (MBs on a fast link: bench:abuse's profile of
  // nginx was 80 % recv), so the ceiling is low: at 20/s one client looping on 4.8 MB hostile files held
  // nginx at 62 % of a core and the well-behaved client's p99 at 3.3x its baseline; at 5/s, 1.55x.
  clientLargeUploadsPerSecond: 5,
  clientLargeUploadBurst: 10,
};

export const ALL_UPSTREAM = 'stego_all';
export const WRITE_UPSTREAM = 'stego_write';
/** Outside the write routes, a body declared this large or larger (or chunked) is streamed to the node. */
export const STREAM_BODY_FROM_BYTES = 1_000_000;
/** The internal location streamed bodies are rewritten to; unreachable from outside (nginx's JSON 404). */
export const STREAM_LOCATION = '/_stego_streamed_upload';

function serverLine(node: UpstreamNode, o: typeof DEFAULTS, backup: boolean, maxFails = o.maxFails): string {
  return `    server ${node.address} max_fails=${maxFails} fail_timeout=${o.failTimeoutSeconds}s${backup ? ' backup' : ''}; # ${node.id}`;
}

function upstream(name: string, lines: string[], keepalive: number): string {
  return [`  upstream ${name} {`, ...lines, `    keepalive ${keepalive};`, '  }'].join('\n');
}

/** Orders nodes so the leader is the write upstream's only primary; unknown leader → all primaries. */
export function writeUpstreamLines(nodes: UpstreamNode[], leaderId: string | null, o = DEFAULTS, writePrimary?: UpstreamNode): string[] {
  // Behind a write primary the members are the fallback while the leader endpoint follows a new leader. A
  // follower answers 503 no_leader during the election, which proxy_next_upstream (http_503) counts as a
  // failure: with max_fails every live member was marked down within a few writes and nginx answered 502
  // "no live upstreams" (e2e: deleting the leader pod). Members behind a primary are never marked down;
  // one that is gone refuses the connection at once.
  if (writePrimary) return [serverLine(writePrimary, o, false), ...nodes.map((n) => serverLine(n, o, true, 0))];
  const leader = nodes.find((n) => n.id === leaderId);
  if (!leader) return nodes.map((n) => serverLine(n, o, false));
  return [serverLine(leader, o, false), ...nodes.filter((n) => n !== leader).map((n) => serverLine(n, o, true))];
}

interface NginxError {
  status: number;
  code: string;
  message: string;
  retryAfter?: boolean;
}

/** The errors nginx itself may answer, in the API's shape. */
export function nginxErrors(maxBodyBytes: number): NginxError[] {
  return [
    { status: 400, code: 'invalid_request', message: 'the load balancer could not parse the request' },
    { status: 408, code: 'request_timeout', message: 'the request was not received in time' },
    { status: 413, code: 'body_too_large', message: `request body exceeds the limit of ${maxBodyBytes} bytes` },
    { status: 404, code: 'not_found', message: 'no such route' },
    { status: 414, code: 'uri_too_long', message: 'the request URI is too long' },
    { status: 429, code: 'rate_limited', message: 'too many requests from this client address; retry shortly', retryAfter: true },
    { status: 500, code: 'internal_error', message: 'the load balancer failed' },
    { status: 502, code: 'bad_gateway', message: 'no StegoCluster node answered; retry shortly', retryAfter: true },
    { status: 503, code: 'unavailable', message: 'no StegoCluster node is available; retry shortly', retryAfter: true },
    { status: 504, code: 'gateway_timeout', message: 'the StegoCluster node did not answer in time; retry shortly', retryAfter: true },
  ];
}

function errorPages(maxBodyBytes: number): string[] {
  const errors = nginxErrors(maxBodyBytes);
  const lines = errors.map((e) => `    error_page ${e.status} = @stego_error_${e.status};`);
  for (const e of errors) {
    const body = JSON.stringify({ error: { code: e.code, message: e.message } });
    lines.push(
      `    location @stego_error_${e.status} {`,
      '      default_type application/json;',
      ...(e.retryAfter ? ['      add_header Retry-After 1 always;'] : []),
      `      return ${e.status} '${body}';`,
      '    }',
    );
  }
  return lines;
}

function assertValid(opts: NginxSiteOptions): void {
  if (opts.nodes.length === 0) throw new Error('nginx config needs at least one node');
  for (const n of opts.writePrimary ? [...opts.nodes, opts.writePrimary] : opts.nodes) {
    // Refuse anything that could break out of a `server` directive.
    if (!/^[A-Za-z0-9.\-:[\]]+$/.test(n.address)) throw new Error(`invalid node address: ${JSON.stringify(n.address)}`);
    if (!/^[A-Za-z0-9._-]+$/.test(n.id)) throw new Error(`invalid node id: ${JSON.stringify(n.id)}`);
  }
}

/** The zones, and the directives a write location applies, for the per-client-address write limits. */
function clientWriteLimits(o: typeof DEFAULTS): { zones: string[]; limitReq: string[]; limitConn: string[] } {
  const zones: string[] = [];
  const limitReq: string[] = [];
  const limitConn: string[] = [];
  if (o.clientWritesPerSecond > 0 || o.clientWritesInFlight > 0) {
    // an empty key is not counted: reads pass unlimited
    zones.push('  map $request_method $stego_write_client {', '    default $binary_remote_addr;', '    GET "";', '    HEAD "";', '  }');
  }
  if (o.clientWritesPerSecond > 0) {
    zones.push(`  limit_req_zone $stego_write_client zone=stego_client_writes:10m rate=${o.clientWritesPerSecond}r/s;`);
    limitReq.push(`      limit_req zone=stego_client_writes burst=${o.clientWriteBurst} nodelay;`);
  }
  if (o.clientWritesInFlight > 0) {
    zones.push('  limit_conn_zone $stego_write_client zone=stego_client_writes_in_flight:10m;');
    limitConn.push(`      limit_conn stego_client_writes_in_flight ${o.clientWritesInFlight};`, '      limit_conn_status 429;', '      limit_conn_log_level info;');
  }
  return { zones, limitReq, limitConn };
}

/**
 * The zone, and the limit_req directive, for large uploads per client address: the streamed-upload
 * location applies it, and so does the write location, since object writes declared as large (or chunked)
 * count against the same rate (nginx buffers each of them whole before a node can refuse it).
 */
function clientUploadLimits(o: typeof DEFAULTS): { zones: string[]; limitReq: string[] } {
  if (o.clientLargeUploadsPerSecond <= 0) return { zones: [], limitReq: [] };
  return {
    zones: [
      // the key is empty (not counted) for a request without a large body: reads, small writes
      '  map $stego_stream_body $stego_large_upload_client {',
      '    default $binary_remote_addr;',
      '    0 "";',
      '  }',
      `  limit_req_zone $stego_large_upload_client zone=stego_client_large_uploads:10m rate=${o.clientLargeUploadsPerSecond}r/s;`,
    ],
    limitReq: [`      limit_req zone=stego_client_large_uploads burst=${o.clientLargeUploadBurst} nodelay;`],
  };
}

/** A location's limit_req directives, then its status and log level, once (nginx refuses a duplicate). */
function withLimitReqStatus(limitReq: string[]): string[] {
  return limitReq.length === 0 ? [] : [...limitReq, '      limit_req_status 429;', '      limit_req_log_level info;'];
}

/** The `http { ... }` body: upstreams, the method→upstream map and the server block. */
export function renderNginxSite(opts: NginxSiteOptions): string {
  assertValid(opts);
  const o = { ...DEFAULTS, ...stripUndefined(opts) };
  const limits = clientWriteLimits(o);
  const uploadLimits = clientUploadLimits(o);
  const all = upstream(ALL_UPSTREAM, opts.nodes.map((n) => serverLine(n, o, false)), o.keepaliveConnections);
  const write = upstream(WRITE_UPSTREAM, writeUpstreamLines(opts.nodes, opts.leaderId, o, opts.writePrimary), o.keepaliveConnections);
  const proxyCommon = [
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '      proxy_set_header Host $host;',
    '      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    '      proxy_set_header X-Request-Id $request_id;',
    // Same key on every retry of one client request (proxy_next_upstream ... non_idempotent): the node
    // derives the object id from it, so a write retried after a node died mid-request is not stored twice.
    '      proxy_set_header Idempotency-Key $stego_idempotency_key;',
    `      proxy_connect_timeout ${o.proxyConnectTimeoutSeconds}s;`,
    `      proxy_send_timeout ${o.proxyTimeoutSeconds}s;`,
    `      proxy_read_timeout ${o.proxyTimeoutSeconds}s;`,
    `      proxy_next_upstream error timeout http_500 http_502 http_503 non_idempotent;`,
    // behind a write primary, every member may be needed after the primary failed
    `      proxy_next_upstream_tries ${opts.writePrimary ? Math.max(o.nextUpstreamTries, opts.nodes.length + 1) : o.nextUpstreamTries};`,
    '      add_header X-Stego-Upstream $upstream_addr always;',
  ];
  return [
    opts.writePrimary ? `  # writes: ${opts.writePrimary.id} first` : `  # leader: ${opts.leaderId ?? 'unknown'}`,
    all,
    write,
    '  map $http_idempotency_key $stego_idempotency_key {',
    '    "" $request_id;',
    '    default $http_idempotency_key;',
    '  }',
    // "Content-Length|Transfer-Encoding": no body, or one declared under STREAM_BODY_FROM_BYTES (six
    // digits), is buffered (0); a larger declared body or a chunked one is streamed (1)
    '  map "$http_content_length|$http_transfer_encoding" $stego_stream_body {',
    '    default 1;',
    '    "|" 0;',
    `    "~^[0-9]{1,${String(STREAM_BODY_FROM_BYTES - 1).length}}[|]$" 0;`,
    '  }',
    ...limits.zones,
    ...uploadLimits.zones,
    '  map $request_method $stego_object_upstream {',
    `    default ${WRITE_UPSTREAM};`,
    `    GET ${ALL_UPSTREAM};`,
    `    HEAD ${ALL_UPSTREAM};`,
    '  }',
    '  server {',
    `    listen ${o.listen};`,
    `    client_max_body_size ${o.maxBodyBytes};`,
    `    client_header_timeout ${o.clientTimeoutSeconds}s;`,
    `    client_body_timeout ${o.clientTimeoutSeconds}s;`,
    `    send_timeout ${o.clientTimeoutSeconds}s;`,
    `    lingering_time ${o.lingeringTimeSeconds}s;`,
    ...errorPages(o.maxBodyBytes),
    '    location = /nginx_status {',
    '      stub_status;',
    '    }',
    // Case-insensitive, as the nodes' router is: /API/Objects is a write too, and keeps its buffered retry.
    '    location ~* ^/api/objects {',
    '      proxy_pass http://$stego_object_upstream;',
    ...proxyCommon,
    ...withLimitReqStatus([...limits.limitReq, ...uploadLimits.limitReq]),
    ...limits.limitConn,
    '      proxy_request_buffering on;',
    '    }',
    '    location ~* ^/admin/ {',
    `      proxy_pass http://${WRITE_UPSTREAM};`,
    ...proxyCommon,
    ...withLimitReqStatus(limits.limitReq),
    ...limits.limitConn,
    '      proxy_request_buffering on;',
    '    }',
    // The stateless uploads and the reads: buffered while small (every retry kept), streamed when large.
    '    location / {',
    `      if ($stego_stream_body) { rewrite ^ ${STREAM_LOCATION} last; }`,
    `      proxy_pass http://${ALL_UPSTREAM};`,
    ...proxyCommon,
    '      proxy_request_buffering on;',
    '    }',
    // A node's early refusal stops a large upload here too. Retried on the next node only while nothing of
    // it was sent (see the header). The rewrite changed the URI: the node gets the client's own.
    `    location = ${STREAM_LOCATION} {`,
    '      internal;',
    `      proxy_pass http://${ALL_UPSTREAM}$request_uri;`,
    ...proxyCommon,
    ...withLimitReqStatus(uploadLimits.limitReq),
    '      proxy_request_buffering off;',
    '    }',
    '  }',
  ].join('\n');
}

/** A complete nginx.conf for `nginx -p prefix -c file`: everything nginx writes stays under `prefix`. */
export function renderNginxConf(opts: NginxMainOptions): string {
  const p = opts.prefix.replace(/\/+$/, '');
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `  ${k}_temp_path ${p}/tmp/${k};`)
    .join('\n');
  return [
    '# Generated by StegoCluster (node/src/lb/nginx-config.ts). Do not edit: it is rewritten on leader change.',
    opts.user ? `user ${opts.user};` : '',
    `worker_processes ${opts.workerProcesses ?? 1};`,
    `pid ${p}/nginx.pid;`,
    `error_log ${p}/error.log warn;`,
    'events {',
    '  worker_connections 1024;',
    '}',
    'http {',
    opts.accessLog ? `  access_log ${p}/access.log;` : '  access_log off;',
    temp,
    renderNginxSite(opts),
    '}',
    '',
  ]
    .filter((l) => l !== '')
    .join('\n');
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
