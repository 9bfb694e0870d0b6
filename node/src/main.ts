// The node process: configuration → durable state → raft driver → raft links → HTTP. Everything it
// needs comes from the environment (see `--help`); logs are JSON lines on stdout.
import './cluster/uv-threadpool.js';
import { createServer, type Server } from 'node:http';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { ClusterService } from './cluster/service.js';
import { RaftNode } from './cluster/raft-node.js';
import { ConfigError, helpText, loadConfig, type NodeConfig } from './config.js';
import { createApp } from './http/app.js';
import { httpConfig } from './http/http-config.js';
import { adminRouter } from './http/routes/admin.js';
import { clusterFront, clusterRouter } from './http/routes/cluster.js';
import { objectsRouter } from './http/routes/objects.js';
import { createLogger, type Logger } from './log.js';
import { processRegistry } from './metrics/registry.js';
import { createNodeMetrics } from './metrics/node.js';
import { WsTransport } from './transport/ws-transport.js';
import { StegoPool } from './workers/stego-pool.js';
import type { LevelWithSilent } from 'pino';

interface Running {
  node: RaftNode;
  transport: WsTransport;
  server: Server;
  pool: StegoPool;
  logger: Logger;
}

async function start(cfg: NodeConfig): Promise<Running> {
  const logger = createLogger({ nodeId: cfg.nodeId, level: cfg.logLevel as LevelWithSilent });
  const registry = processRegistry();
  const metrics = createNodeMetrics(registry, { dataDir: cfg.dataDir });
  const others = new Map([...cfg.peers].filter(([id]) => id !== cfg.nodeId));
  const stagingDir = path.join(cfg.dataDir, 'snapshot-staging');
  await removeStaleStagedSnapshots(stagingDir);
  let nodeRef: RaftNode | undefined;
  const transport = new WsTransport({
    id: cfg.nodeId,
    listenHost: cfg.raftHost,
    listenPort: cfg.raftPort,
    peers: others,
    secret: cfg.clusterSecret,
    maxInflightBytes: cfg.maxInflightBytes,
    snapshotStagingDir: stagingDir,
    logger: logger.child({ component: 'transport' }),
    // bound late: the driver needs the transport to exist first
    metrics: metrics.transport.events({ dropped: (peer) => nodeRef?.peerUnreachable(peer) }),
  });
  const node = await RaftNode.start({
    id: cfg.nodeId,
    dataDir: cfg.dataDir,
    peers: cfg.peers,
    join: cfg.join,
    tickMs: cfg.tickMs,
    heartbeatTicks: cfg.heartbeatTicks,
    electionTicks: cfg.electionTicks,
    snapshotEntries: cfg.snapshotEntries,
    snapshotBytes: cfg.snapshotBytes,
    snapshotTrailingEntries: cfg.snapshotTrailingEntries,
    linkLostRankMs: cfg.linkLostRankMs,
    fsyncDeadlineMs: cfg.fsyncDeadlineMs,
    requestTimeoutMs: cfg.requestTimeoutMs,
    transport,
    logger: logger.child({ component: 'raft' }),
    metrics: metrics.raft,
  });
  nodeRef = node;
  const service = new ClusterService(node, transport, {
    requestTimeoutMs: cfg.requestTimeoutMs,
    maxObjectBytes: cfg.maxObjectBytes,
    logger: logger.child({ component: 'cluster' }),
  });
  await transport.start();

  const pool = new StegoPool({ registry, maxPixels: cfg.maxPixels, maxQueue: cfg.poolQueue, ...(cfg.workers > 0 ? { size: cfg.workers } : {}) });
  const http = httpConfig({ bodyLimitBytes: cfg.bodyLimitBytes });
  const app = createApp({
    pool,
    config: http,
    logger,
    registry,
    extraRouters: [clusterRouter(service), objectsRouter({ service, pool, config: http }), adminRouter(service, cfg.adminToken)],
  });
  const server = createServer(clusterFront(node, app.callback()));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.httpPort, cfg.httpHost, () => resolve());
  });
  // uploads of up to the body limit on slow links; the default 5 min request timeout is fine, but
  // keep-alive must outlive typical load-balancer idle timeouts
  server.keepAliveTimeout = 65_000;
  const addr = server.address();
  logger.info(
    { http: typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : cfg.httpPort, raft: `${cfg.raftHost}:${cfg.raftPort}`, data_dir: cfg.dataDir, peers: Object.fromEntries(cfg.peers) },
    'node listening',
  );
  return { node, transport, server, pool, logger };
}

/**
 * Complete snapshots staged before a restart were never installed (the install moves them away) and the
 * core no longer wants them; partial ones stay so an interrupted transfer can resume.
 */
async function removeStaleStagedSnapshots(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) if (n.endsWith('.snap')) await rm(path.join(dir, n), { force: true });
}

async function shutdown(r: Running, signal: string): Promise<void> {
  r.logger.info({ signal, leader: r.node.isLeader }, 'shutting down: handing over leadership, then closing');
  r.server.close();
  r.server.closeIdleConnections();
  await r.node.stop({ transferLeadership: true });
  await r.transport.stop();
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
