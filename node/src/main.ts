// The node process: configuration → consensus thread (durable state, raft driver, raft links) → HTTP.
// Two threads (plus the PNG worker pool): this one parses HTTP and runs the routes; the consensus thread
// (cluster/consensus-worker.ts) runs Raft, the log and the peer links on an event loop that does nothing
// else, so client load cannot delay a heartbeat. Everything comes from the environment (see `--help`);
// logs are JSON lines on stdout.
import './v8-flags.js';
import './cluster/uv-threadpool.js';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { ConsensusThread } from './cluster/consensus-thread.js';
import { ConfigError, helpText, loadConfig, type NodeConfig } from './config.js';
import { createApp } from './http/app.js';
import { applyServerTimeouts, httpConfig } from './http/http-config.js';
import { adminRouter } from './http/routes/admin.js';
import { clusterFront, clusterRouter } from './http/routes/cluster.js';
import { objectsRouter } from './http/routes/objects.js';
import { createLogger, type Logger } from './log.js';
import { processRegistry } from './metrics/registry.js';
import { createHttpThreadMetrics } from './metrics/node.js';
import { StegoPool } from './workers/stego-pool.js';
import { loadTokens } from './auth/tokens.js';
import { ByteBudget } from './http/middleware/body-budget.js';
import type { LevelWithSilent } from 'pino';

interface Running {
  consensus: ConsensusThread;
  server: Server;
  pool: StegoPool;
  logger: Logger;
}

async function start(cfg: NodeConfig): Promise<Running> {
  const logger = createLogger({ nodeId: cfg.nodeId, level: cfg.logLevel as LevelWithSilent });
  const registry = processRegistry();
  // The first async fs call starts libuv's threadpool, whose threads inherit the caller's nice value:
  // start it from this thread, so the pool (fsync, but also PNG deflate) does not inherit the consensus
  // thread's raised priority.
  await mkdir(cfg.dataDir, { recursive: true });
  const consensus = await ConsensusThread.start(cfg, logger, () => process.exit(1));
  // HTTP-thread metrics; raft and transport metrics live in the consensus thread's registry
  const nodeMetrics = createHttpThreadMetrics(registry, { dataDir: cfg.dataDir });

  const pool = new StegoPool({
    registry,
    maxPixels: cfg.maxPixels,
    jobTimeoutMs: cfg.jobTimeoutMs,
    chunkLimits: { maxChunks: cfg.maxPngChunks, maxAncillaryBytes: cfg.maxAncillaryBytes },
    ...(cfg.poolQueue !== undefined ? { maxQueue: cfg.poolQueue } : {}),
    ...(cfg.workers > 0 ? { size: cfg.workers } : {}),
  });
  const http = httpConfig({
    bodyLimitBytes: cfg.bodyLimitBytes,
    ...(cfg.inflightBodyBytes !== undefined ? { inflightBudgetBytes: cfg.inflightBodyBytes } : {}),
    bodyIdleTimeoutMs: cfg.bodyIdleTimeoutMs,
    bodyTimeoutMs: cfg.bodyTimeoutMs,
    headersTimeoutMs: cfg.headersTimeoutMs,
    statelessAuth: cfg.statelessAuth,
    fingerprintKey: cfg.clusterSecret,
  });
  const tokens = loadTokens(process.env);
  const budget = new ByteBudget(http.inflightBudgetBytes, () => nodeMetrics.memoryBudget.rejections.inc());
  nodeMetrics.memoryBudget.attach({ limitBytes: () => budget.limitBytes, inUseBytes: () => budget.inUse });
  // /metrics: this thread's registry (HTTP, pool, process) followed by the consensus thread's (raft, storage)
  const metrics = {
    contentType: registry.contentType,
    metrics: async () => `${await registry.metrics()}\n${await consensus.metricsText()}`,
  };
  const app = createApp({
    pool,
    config: http,
    logger,
    registry,
    metrics,
    tokens,
    budget,
    stegoMetrics: nodeMetrics.stego,
    extraRouters: [clusterRouter(consensus), objectsRouter({ service: consensus, pool, config: http, budget }), adminRouter(consensus, cfg.adminToken)],
  });
  const server = createServer(clusterFront(consensus, app.callback()));
  applyServerTimeouts(server, http);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.httpPort, cfg.httpHost, () => resolve());
  });
  // uploads of up to the body limit on slow links; the default 5 min request timeout is fine, but
  // keep-alive must outlive typical load-balancer idle timeouts
  server.keepAliveTimeout = 65_000;
  const addr = server.address();
  logger.info(
    { http: typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : cfg.httpPort, api_tokens: tokens.size, inflight_body_bytes: http.inflightBudgetBytes, raft: `${cfg.raftHost}:${cfg.raftPort}`, data_dir: cfg.dataDir, peers: Object.fromEntries(cfg.peers) },
    'node listening',
  );
  return { consensus, server, pool, logger };
}

async function shutdown(r: Running, signal: string): Promise<void> {
  r.logger.info({ signal, leader: r.consensus.leaderId === r.consensus.id }, 'shutting down: handing over leadership, then closing');
  r.server.close();
  r.server.closeIdleConnections();
  await r.consensus.stop({ transferLeadership: true });
  await r.pool.close();
  r.server.closeAllConnections();
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(helpText());
    return;
  }
  let cfg: NodeConfig;
  try {
    cfg = loadConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  let running: Running;
  try {
    running = await start(cfg);
  } catch (e) {
    const err = e as Error & { code?: string };
    process.stderr.write(`${JSON.stringify({ level: 'fatal', node: cfg.nodeId, code: err.code, msg: `node failed to start: ${err.message}` })}\n`);
    process.exit(1);
  }
  let stopping = false;
  const onSignal = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(0), 5000);
    force.unref();
    shutdown(running, signal)
      .catch((e: unknown) => running.logger.error({ err: (e as Error).message }, 'error during shutdown'))
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

void main();
