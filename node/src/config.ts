// Node configuration from the environment. Every variable is declared once in VARS, so parsing,
// validation and `--help` can never disagree about names or defaults.

import path from 'node:path';
import type { NodeId } from './raft/types.js';

export interface NodeConfig {
  nodeId: NodeId;
  /** Every known member's raft address (host:port), including this node. */
  peers: Map<NodeId, string>;
  httpHost: string;
  httpPort: number;
  raftHost: string;
  raftPort: number;
  dataDir: string;
  clusterSecret: string;
  /** Empty string disables the admin API (every admin call answers 401). */
  adminToken: string;
  /** Start with an empty configuration and wait to be added by the leader instead of bootstrapping. */
  join: boolean;
  tickMs: number;
  heartbeatTicks: number;
  electionTicks: number;
  snapshotEntries: number;
  snapshotBytes: number;
  /** A snapshot is also due this long after the last one when entries were applied since (0: never). */
  snapshotIntervalMs: number;
  linkLostRankMs: number;
  /** Entries kept behind a snapshot so a slightly lagging follower catches up from the log. */
  snapshotTrailingEntries: number;
  /** Rate cap of a snapshot streamed to a lagging follower, bytes per second (0: none). */
  snapshotSendBytesPerSecond: number;
  maxObjectBytes: number;
  bodyLimitBytes: number;
  logLevel: string;
  fsyncDeadlineMs: number;
  /** How long an HTTP write or linearizable read waits for the cluster before answering 503. */
  requestTimeoutMs: number;
  maxInflightBytes: number;
  /** Object bytes this node may have proposed (or forwarded) and not yet seen committed. */
  maxPendingWriteBytes: number;
  /** Worker threads for PNG work (0 = one per core). */
  workers: number;
  /** Uploads allowed to wait for a worker (undefined: the pool's default, 2 × workers). */
  poolQueue: number | undefined;
  maxPixels: number;
  /** Bytes of request/response bodies in flight on this node (undefined: derived from the memory limit). */
  inflightBodyBytes: number | undefined;
  bodyIdleTimeoutMs: number;
  bodyTimeoutMs: number;
  headersTimeoutMs: number;
  /** Time budget of one worker job (decode/embed/encode/validate). */
  jobTimeoutMs: number;
  maxPngChunks: number;
  maxAncillaryBytes: number;
  /** 'open' (default): embed/extract/capacity need no token; 'token': they need one too. */
  statelessAuth: 'open' | 'token';
  /** Nice value of the consensus thread (-20 highest; 0 leaves it alone). */
  consensusNice: number;
}

export class ConfigError extends Error {
  readonly code = 'invalid_config';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}\nRun with --help to list every variable.`);
    this.name = 'ConfigError';
  }
}

interface VarSpec {
  name: string;
  default: string;
  help: string;
}

const MiB = 1024 * 1024;
/**
 * Snapshot sends are not paced by default. Pacing was measured (docs/benchmarks.md, eighth session): at
 * 64 MiB/s a follower catching up 3 GB while 256 clients wrote was sent the whole store three times, each
 * transfer outlived by the log entries it had to be followed with, and took 100 s instead of 25 s, with no
 * fewer leader changes (none either way) and no lower loop delay. The cap is there for links shared with
 * client traffic, where a transfer's bandwidth matters more than its CPU.
 */
const SNAPSHOT_SEND_BYTES_PER_S = 0;

export const VARS: readonly VarSpec[] = [
  { name: 'NODE_ID', default: '(required)', help: 'this member\'s id, e.g. n1 ([A-Za-z0-9_.-]{1,64})' },
  { name: 'PEERS', default: 'NODE_ID=RAFT_HOST:RAFT_PORT', help: 'comma list id=host:raftPort of the initial members, including this node' },
  { name: 'HTTP_HOST', default: '127.0.0.1', help: 'HTTP listen address (0.0.0.0 in Kubernetes)' },
  { name: 'HTTP_PORT', default: '8080', help: 'HTTP listen port (0 picks a free port)' },
  { name: 'RAFT_HOST', default: '127.0.0.1', help: 'raft link listen address' },
  { name: 'RAFT_PORT', default: '(port of NODE_ID in PEERS, else 7080)', help: 'raft link listen port' },
  { name: 'DATA_DIR', default: './data/$NODE_ID', help: 'raft log, snapshots and objects live here' },
  { name: 'STEGO_CLUSTER_SECRET', default: '(required)', help: 'shared secret authenticating raft links (same on every member)' },
  { name: 'STEGO_ADMIN_TOKEN', default: '(unset: admin API refuses every call)', help: 'bearer token for /admin/*' },
  { name: 'STEGO_JOIN', default: '0', help: '1: start as a new member that waits to be added instead of bootstrapping from PEERS' },
  { name: 'STEGO_TICK_MS', default: '5', help: 'raft tick period in ms' },
  { name: 'STEGO_HEARTBEAT_MS', default: '50', help: 'leader heartbeat interval in ms' },
  { name: 'STEGO_ELECTION_MS', default: '150', help: 'base election timeout in ms (randomized up to 2x)' },
  { name: 'STEGO_LINK_LOST_RANK_MS', default: '20', help: 'when the link to the leader closes, followers campaign this far apart in id order' },
  { name: 'STEGO_SNAPSHOT_ENTRIES', default: '10000', help: 'take a snapshot after this many applied entries' },
  { name: 'STEGO_SNAPSHOT_BYTES', default: String(256 * MiB), help: 'or after this many bytes of log' },
  { name: 'STEGO_SNAPSHOT_INTERVAL_MS', default: String(60 * 60 * 1000), help: 'or this long after the last snapshot when entries were applied since (0: off)' },
  { name: 'STEGO_SNAPSHOT_TRAILING_ENTRIES', default: 'min(5000, STEGO_SNAPSHOT_ENTRIES/2)', help: 'log entries kept behind a snapshot for slow followers' },
  { name: 'STEGO_SNAPSHOT_SEND_BYTES_PER_S', default: String(SNAPSHOT_SEND_BYTES_PER_S), help: 'rate cap of a snapshot streamed to a lagging follower (0: none)' },
  { name: 'STEGO_MAX_OBJECT_BYTES', default: String(16 * MiB), help: 'largest stego object accepted by POST /api/objects' },
  { name: 'STEGO_BODY_LIMIT_BYTES', default: String(50 * MiB), help: 'largest HTTP request body (nginx client_max_body_size is rendered from the same number)' },
  { name: 'STEGO_API_TOKENS_FILE', default: '(unset)', help: 'API tokens file, JSON or lines (docs/http-api.md); object routes need a token' },
  { name: 'STEGO_API_TOKENS', default: '(unset)', help: 'API tokens inline, same format (entries also separated by ;); the file wins' },
  { name: 'STEGO_STATELESS_AUTH', default: 'open', help: "open: embed/extract/capacity need no token; token: every API call needs one" },
  { name: 'STEGO_INFLIGHT_BODY_BYTES', default: 'max(body limit, min(memory limit / 4, 1 GiB))', help: 'bytes of request/response bodies in flight before 503 memory_budget (memory limit: cgroup v1/v2, else RAM)' },
  { name: 'STEGO_BODY_IDLE_TIMEOUT_MS', default: '15000', help: 'longest pause between body bytes (upload or download) before the connection is cut' },
  { name: 'STEGO_BODY_TIMEOUT_MS', default: '120000', help: 'longest a request body may take to arrive' },
  { name: 'STEGO_HEADERS_TIMEOUT_MS', default: '10000', help: 'longest the request line and headers may take' },
  { name: 'STEGO_JOB_TIMEOUT_MS', default: '30000', help: 'time budget of one PNG job; past it the worker is replaced and the request answered 503' },
  { name: 'STEGO_MAX_PNG_CHUNKS', default: '20000', help: 'most chunks in an uploaded PNG (413 too_many_chunks)' },
  { name: 'STEGO_MAX_ANCILLARY_BYTES', default: String(8 * MiB), help: 'most bytes in ancillary PNG chunks (413 ancillary_too_large)' },
  { name: 'STEGO_CONSENSUS_NICE', default: '-20', help: 'nice value of the consensus thread (-20..19; 0: unchanged; raising it needs CAP_SYS_NICE)' },
  { name: 'STEGO_GC', default: 'single-threaded', help: "V8 garbage collection: single-threaded (each thread collects its own heap, at its own priority) or parallel (V8's default)" },
  { name: 'STEGO_COMPILE', default: 'eager', help: "V8 compilation: eager (every function compiled at start-up and kept, so a new leader's first writes do not wait for it) or lazy (V8's default)" },
  { name: 'STEGO_LOG_LEVEL', default: 'info', help: 'pino level: trace|debug|info|warn|error|fatal|silent' },
  { name: 'STEGO_FSYNC_DEADLINE_MS', default: '2000', help: 'an fsync slower than this steps the node down' },
  { name: 'STEGO_REQUEST_TIMEOUT_MS', default: '10000', help: 'how long a write or linearizable read waits for the cluster' },
  { name: 'STEGO_WORKERS', default: '0 (one per core)', help: 'worker threads for PNG decode/encode' },
  { name: 'STEGO_POOL_QUEUE', default: '2 x workers', help: 'jobs waiting for a worker before 503 pool_saturated' },
  { name: 'STEGO_MAX_PIXELS', default: '40000000', help: 'largest image (width x height) accepted' },
  { name: 'STEGO_MAX_INFLIGHT_BYTES', default: String(64 * MiB), help: 'in-flight raft bytes per peer link' },
  {
    name: 'STEGO_MAX_PENDING_WRITE_BYTES',
    default: String(64 * MiB),
    help: 'object bytes this node may have waiting for commit; more answers 503 busy (one write always passes)',
  },
];

export function helpText(): string {
  const width = Math.max(...VARS.map((v) => v.name.length));
  const lines = VARS.map((v) => `  ${v.name.padEnd(width)}  ${v.help}\n  ${' '.repeat(width)}  default: ${v.default}`);
  return [
    'Usage: node dist/node/src/main.js [--help]',
    '',
    'A StegoCluster node: HTTP API + raft member. Configured only through the environment:',
    '',
    ...lines,
    '',
    'Example (3 nodes on one host):',
    '  NODE_ID=n1 PEERS=n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003 HTTP_PORT=8001 \\',
    '  STEGO_CLUSTER_SECRET=s3cret DATA_DIR=/tmp/n1 node dist/node/src/main.js',
    '',
  ].join('\n');
}

const ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

type Env = Record<string, string | undefined>;

/** Collects every problem instead of stopping at the first, so one run shows the whole misconfiguration. */
class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  str(name: string, dflt: string): string {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? dflt : v.trim();
  }

  int(name: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const raw = this.env[name];
    if (raw === undefined || raw.trim() === '') return dflt;
    const n = Number(raw.trim());
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name}=${JSON.stringify(raw)} must be an integer in [${min}, ${max}]`);
      return dflt;
    }
    return n;
  }

  bool(name: string): boolean {
    const raw = (this.env[name] ?? '').trim().toLowerCase();
    if (raw === '' || raw === '0' || raw === 'false' || raw === 'no') return false;
    if (raw === '1' || raw === 'true' || raw === 'yes') return true;
    this.problems.push(`${name}=${JSON.stringify(raw)} must be 1/0/true/false`);
    return false;
  }
}

export function parsePeers(raw: string, problems: string[]): Map<NodeId, string> {
  const peers = new Map<NodeId, string>();
  for (const part of raw.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    const id = eq > 0 ? part.slice(0, eq) : '';
    const addr = eq > 0 ? part.slice(eq + 1) : '';
    if (!ID_RE.test(id) || parseHostPort(addr) === null) {
      problems.push(`PEERS entry ${JSON.stringify(part)} must look like id=host:port`);
      continue;
    }
    if (peers.has(id)) problems.push(`PEERS lists ${id} twice`);
    peers.set(id, addr);
  }
  return peers;
}

export function parseHostPort(addr: string): { host: string; port: number } | null {
  const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(addr);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function ticks(name: string, ms: number, tickMs: number, problems: string[]): number {
  const t = Math.round(ms / tickMs);
  if (t < 1) problems.push(`${name}=${ms} is shorter than one tick (STEGO_TICK_MS=${tickMs})`);
  return Math.max(1, t);
}

function optionalInt(r: Reader, name: string, min: number, max?: number): number | undefined {
  const v = r.int(name, -1, min, max);
  return v === -1 ? undefined : v;
}

function statelessAuth(r: Reader): 'open' | 'token' {
  const v = r.str('STEGO_STATELESS_AUTH', 'open');
  if (v === 'open' || v === 'token') return v;
  r.problems.push(`STEGO_STATELESS_AUTH=${JSON.stringify(v)} must be open or token`);
  return 'open';
}

export function loadConfig(env: Env): NodeConfig {
  const r = new Reader(env);
  const nodeId = r.str('NODE_ID', '');
  if (!ID_RE.test(nodeId)) r.problems.push(`NODE_ID=${JSON.stringify(nodeId)} is required and must match ${ID_RE.source}`);

  const raftHost = r.str('RAFT_HOST', '127.0.0.1');
  const peersRaw = r.str('PEERS', '');
  const peers = parsePeers(peersRaw, r.problems);
  const selfAddr = peers.get(nodeId);
  const defaultRaftPort = selfAddr ? (parseHostPort(selfAddr)?.port ?? 7080) : 7080;
  const raftPort = r.int('RAFT_PORT', defaultRaftPort, 0, 65535);
  if (!selfAddr && nodeId !== '') peers.set(nodeId, `${raftHost}:${raftPort}`);

  const join = r.bool('STEGO_JOIN');
  const clusterSecret = r.str('STEGO_CLUSTER_SECRET', '');
  // required even for one node: its raft port is open, and members added later must share it
  if (clusterSecret === '') r.problems.push('STEGO_CLUSTER_SECRET is required (the same secret on every member)');

  const tickMs = r.int('STEGO_TICK_MS', 5, 1, 1000);
  const heartbeatMs = r.int('STEGO_HEARTBEAT_MS', 50, 1);
  const electionMs = r.int('STEGO_ELECTION_MS', 150, 1);
  const heartbeatTicks = ticks('STEGO_HEARTBEAT_MS', heartbeatMs, tickMs, r.problems);
  const electionTicks = ticks('STEGO_ELECTION_MS', electionMs, tickMs, r.problems);
  if (electionTicks <= heartbeatTicks) {
    r.problems.push(`STEGO_ELECTION_MS (${electionMs}) must be longer than STEGO_HEARTBEAT_MS (${heartbeatMs})`);
  }

  const snapshotEntries = r.int('STEGO_SNAPSHOT_ENTRIES', 10_000, 2);
  const logLevel = r.str('STEGO_LOG_LEVEL', 'info');
  if (!LOG_LEVELS.has(logLevel)) r.problems.push(`STEGO_LOG_LEVEL=${logLevel} is not a pino level`);
  // read by v8-flags.ts before anything else runs; checked here so a typo is not ignored
  const gc = r.str('STEGO_GC', 'single-threaded');
  if (gc !== 'single-threaded' && gc !== 'parallel') r.problems.push(`STEGO_GC=${gc} must be single-threaded or parallel`);
  const compile = r.str('STEGO_COMPILE', 'eager');
  if (compile !== 'eager' && compile !== 'lazy') r.problems.push(`STEGO_COMPILE=${compile} must be eager or lazy`);

  const cfg: NodeConfig = {
    nodeId,
    peers,
    httpHost: r.str('HTTP_HOST', '127.0.0.1'),
    httpPort: r.int('HTTP_PORT', 8080, 0, 65535),
    raftHost,
    raftPort,
    dataDir: path.resolve(r.str('DATA_DIR', path.join('data', nodeId || 'node'))),
    clusterSecret,
    adminToken: r.str('STEGO_ADMIN_TOKEN', ''),
    join,
    tickMs,
    heartbeatTicks,
    electionTicks,
    snapshotEntries,
    linkLostRankMs: r.int('STEGO_LINK_LOST_RANK_MS', 20, 0, 10_000),
    snapshotBytes: r.int('STEGO_SNAPSHOT_BYTES', 256 * MiB, 1024),
    snapshotIntervalMs: r.int('STEGO_SNAPSHOT_INTERVAL_MS', 60 * 60 * 1000, 0),
    snapshotTrailingEntries: r.int('STEGO_SNAPSHOT_TRAILING_ENTRIES', Math.min(5000, Math.floor(snapshotEntries / 2)), 0),
    snapshotSendBytesPerSecond: r.int('STEGO_SNAPSHOT_SEND_BYTES_PER_S', SNAPSHOT_SEND_BYTES_PER_S, 0),
    maxObjectBytes: r.int('STEGO_MAX_OBJECT_BYTES', 16 * MiB, 1),
    bodyLimitBytes: r.int('STEGO_BODY_LIMIT_BYTES', 50 * MiB, 1),
    logLevel,
    fsyncDeadlineMs: r.int('STEGO_FSYNC_DEADLINE_MS', 2000, 1),
    requestTimeoutMs: r.int('STEGO_REQUEST_TIMEOUT_MS', 10_000, 1),
    maxInflightBytes: r.int('STEGO_MAX_INFLIGHT_BYTES', 64 * MiB, 1024),
    maxPendingWriteBytes: r.int('STEGO_MAX_PENDING_WRITE_BYTES', 64 * MiB, 1),
    workers: r.int('STEGO_WORKERS', 0, 0, 256),
    poolQueue: optionalInt(r, 'STEGO_POOL_QUEUE', 0, 10_000),
    maxPixels: r.int('STEGO_MAX_PIXELS', 40_000_000, 1),
    inflightBodyBytes: optionalInt(r, 'STEGO_INFLIGHT_BODY_BYTES', 1024),
    bodyIdleTimeoutMs: r.int('STEGO_BODY_IDLE_TIMEOUT_MS', 15_000, 1),
    bodyTimeoutMs: r.int('STEGO_BODY_TIMEOUT_MS', 120_000, 1),
    headersTimeoutMs: r.int('STEGO_HEADERS_TIMEOUT_MS', 10_000, 1),
    jobTimeoutMs: r.int('STEGO_JOB_TIMEOUT_MS', 30_000, 1),
    maxPngChunks: r.int('STEGO_MAX_PNG_CHUNKS', 20_000, 3),
    maxAncillaryBytes: r.int('STEGO_MAX_ANCILLARY_BYTES', 8 * MiB, 0),
    statelessAuth: statelessAuth(r),
    consensusNice: r.int('STEGO_CONSENSUS_NICE', -20, -20, 19),
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return cfg;
}
