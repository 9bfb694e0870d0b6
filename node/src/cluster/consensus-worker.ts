// Entry point of the consensus thread (a worker_thread started by ConsensusThread). Its event loop runs
// the Raft driver, the durable log, the peer transport and the object store's index, and nothing else:
// HTTP parsing, hashing and PNG work stay on the main thread and its worker pool, so a tick, a heartbeat
// or a vote never waits behind client work. It answers the narrow API of consensus-protocol.ts.
import { readdir, rm } from 'node:fs/promises';
import { setPriority } from 'node:os';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { LevelWithSilent } from 'pino';
import { createLogger } from '../log.js';
import { observeGcPauses } from '../metrics/gc-pauses.js';
import { createConsensusThreadMetrics } from '../metrics/node.js';
import { createRegistry } from '../metrics/registry.js';
import { WsTransport } from '../transport/ws-transport.js';
import {
  MessageBatcher,
  ownedBytes,
  serializeError,
  type ConsensusOps,
  type ConsensusView,
  type ConsensusWorkerData,
  type OpName,
  type OpRequest,
  type Reply,
  type WorkerMessage,
} from './consensus-protocol.js';
import { ClusterError } from './errors.js';
import type { PieceReader } from './object-store.js';
import { RaftNode } from './raft-node.js';
import { ClusterService } from './service.js';

const port = parentPort;
if (!port) throw new Error('consensus-worker.ts runs as a worker thread only');
const { cfg } = workerData as ConsensusWorkerData;

function post(m: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(m, transfer);
}

/**
 * Complete snapshots staged before a restart were never installed (the install moves them away) and the
 * core no longer wants them; partial ones stay so an interrupted transfer can resume.
 */
async function removeStaleStagedSnapshots(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) if (n.endsWith('.snap')) await rm(path.join(dir, n), { force: true });
}

/**
 * On Linux a nice value belongs to a thread, and setPriority(pid 0) changes the calling thread's only:
 * the consensus thread asks the scheduler to run it ahead of the HTTP thread, the PNG workers and every
 * other process's normal threads when the cores are saturated (cfg.consensusNice, -20 by default; needs
 * CAP_SYS_NICE, without it the thread keeps the default priority and says so).
 *
 * Why -20 and not a real-time class: bench:isolation at full size on 3 nodes sharing 2 cores (docs/
 * benchmarks.md, "Sixth session"). At -7 the leader was lost 4 times in case (e) at the leader's port and
 * 6 times in (c) at a follower's; at -20, 0 and 0, with the loop delay p99 at most 29.9 ms in every case
 * before (e) at a follower's port. SCHED_RR kept the leader in those cases too, but a real-time thread
 * starves the normal threads it depends on (the libuv pool's fsyncs, V8's GC helpers): with 16 MiB objects
 * its loop stalled for up to a second and heartbeat round trips reached 940 ms.
 */
function raisePriority(nice: number, logger: { warn(o: object, m: string): void }): void {
  if (nice === 0) return;
  try {
    setPriority(nice);
  } catch (e) {
    logger.warn({ err: (e as Error).message, nice }, 'consensus thread priority not raised (no CAP_SYS_NICE); it competes with client work for CPU');
  }
}

async function start(): Promise<void> {
  const logger = createLogger({ nodeId: cfg.nodeId, level: cfg.logLevel as LevelWithSilent });
  raisePriority(cfg.consensusNice, logger);
  // this thread's own registry (no process metrics: the main thread's registry has those); the main
  // thread appends its text to /metrics
  const registry = createRegistry({ defaultMetrics: false });
  // raft and transport metrics only: the consensus loop's lateness is stego_consensus_loop_delay_seconds,
  // the HTTP loop's stego_event_loop_delay_seconds stays on the main registry
  const metrics = createConsensusThreadMetrics(registry);
  observeGcPauses(metrics.raft.gcPauseSeconds, logger);
  const stagingDir = path.join(cfg.dataDir, 'snapshot-staging');
  await removeStaleStagedSnapshots(stagingDir);
  let node: RaftNode | undefined;
  const transport = new WsTransport({
    id: cfg.nodeId,
    listenHost: cfg.raftHost,
    listenPort: cfg.raftPort,
    peers: new Map([...cfg.peers].filter(([id]) => id !== cfg.nodeId)),
    secret: cfg.clusterSecret,
    maxInflightBytes: cfg.maxInflightBytes,
    snapshotBytesPerSecond: cfg.snapshotSendBytesPerSecond,
    snapshotStagingDir: stagingDir,
    logger: logger.child({ component: 'transport' }),
    metrics: metrics.transport.events(),
    raft: {
      reportUnreachable: (peer, reason) => {
        metrics.transport.droppedMessages.inc({ peer, reason });
        node?.reportUnreachable(peer);
      },
      isRemoved: (peer) => node?.store.isRemoved(peer) ?? false,
      reportRemoved: (peer) => node?.removedBy(peer),
    },
  });
  node = await RaftNode.start({
    id: cfg.nodeId,
    dataDir: cfg.dataDir,
    peers: cfg.peers,
    join: cfg.join,
    tickMs: cfg.tickMs,
    heartbeatTicks: cfg.heartbeatTicks,
    electionTicks: cfg.electionTicks,
    snapshotEntries: cfg.snapshotEntries,
    snapshotBytes: cfg.snapshotBytes,
    snapshotIntervalMs: cfg.snapshotIntervalMs,
    snapshotTrailingEntries: cfg.snapshotTrailingEntries,
    linkLostRankMs: cfg.linkLostRankMs,
    fsyncDeadlineMs: cfg.fsyncDeadlineMs,
    requestTimeoutMs: cfg.requestTimeoutMs,
    transport,
    logger: logger.child({ component: 'raft' }),
    metrics: metrics.raft,
  });
  const raft = node;
  const service = new ClusterService(raft, transport, {
    requestTimeoutMs: cfg.requestTimeoutMs,
    maxObjectBytes: cfg.maxObjectBytes,
    logger: logger.child({ component: 'cluster' }),
    forwardedWrites: metrics.raft.forwardedWrites,
  });
  let stopping = false;
  const view = (): ConsensusView => ({
    leaderId: raft.leaderId,
    haltCause: raft.haltCause ? { code: raft.haltCause.code, message: raft.haltCause.message } : null,
    removed: raft.removed,
    stopping,
  });
  const pushView = (): void => post({ type: 'view', view: view() });
  raft.events.on('leader', pushView);
  raft.events.on('halted', pushView);

  // streamed downloads in progress: each holds its object's snapshot file open until read or closed
  const readers = new Map<number, PieceReader>();
  let readerSeq = 0;
  const closeReaders = (): void => {
    for (const r of readers.values()) r.close();
    readers.clear();
  };

  const ops: { [K in OpName]: (args: ConsensusOps[K]['args']) => Promise<{ value: ConsensusOps[K]['result']; transfer?: ArrayBuffer[] }> } = {
    putEncoded: async ({ data, meta }) => ({ value: await service.putEncoded(data, meta) }),
    putEncodedFor: async ({ data, put, client }) => ({ value: await service.putEncodedFor(data, put, client) }),
    objectMeta: async ({ id }) => ({ value: await service.objectMeta(id) }),
    openRead: async ({ id, stale, pieceBytes }) => {
      const reader = await service.openPieces(id, stale, pieceBytes);
      if (!reader) return { value: undefined };
      let first: Uint8Array;
      try {
        first = ownedBytes((await reader.next()) ?? new Uint8Array(0));
      } catch (e) {
        reader.close();
        throw e;
      }
      if (reader.remaining === 0) {
        reader.close();
        return { value: { meta: reader.meta, first }, transfer: [first.buffer as ArrayBuffer] };
      }
      const handle = ++readerSeq;
      readers.set(handle, reader);
      return { value: { meta: reader.meta, first, reader: handle }, transfer: [first.buffer as ArrayBuffer] };
    },
    readPiece: async ({ reader: handle }) => {
      const reader = readers.get(handle);
      if (!reader) throw new ClusterError('unavailable', 'the object read was closed (node stopping)');
      let piece: Uint8Array | undefined;
      try {
        piece = await reader.next();
      } finally {
        if (reader.remaining === 0) readers.delete(handle);
      }
      if (piece === undefined) return { value: undefined };
      // a piece of an object still in memory is a view of the log entry's buffer: copied (one piece)
      const owned = ownedBytes(piece);
      return { value: owned, transfer: [owned.buffer as ArrayBuffer] };
    },
    closeRead: async ({ reader: handle }) => {
      readers.get(handle)?.close();
      readers.delete(handle);
      return { value: undefined };
    },
    deleteObject: async ({ id }) => ({ value: await service.deleteObject(id) }),
    getObject: async ({ id, stale }) => {
      const got = await service.getObjectDetached(id, stale);
      if (!got) return { value: undefined };
      return { value: { meta: got.meta, bytes: got.bytes }, transfer: [got.bytes.buffer as ArrayBuffer] };
    },
    listObjects: async ({ stale }) => ({ value: await service.listObjects(stale) }),
    addMember: async ({ id, raftAddress }) => ({ value: await service.addMember(id, raftAddress) }),
    removeMember: async ({ id }) => ({ value: await service.removeMember(id) }),
    transferLeadership: async ({ to }) => ({ value: await service.transferLeadership(to) }),
    status: async () => ({ value: await service.status() }),
    readiness: async () => ({ value: await service.readiness() }),
    metrics: async () => ({ value: await registry.metrics() }),
    stop: async ({ transferLeadership }) => {
      stopping = true;
      pushView();
      closeReaders();
      await raft.stop({ transferLeadership });
      await transport.stop();
      return { value: undefined };
    },
  };

  // answers settled during one event-loop turn (e.g. every put of one applied batch) leave together
  const replies = new MessageBatcher<Reply>((batch, transfer) => post({ type: 'replies', replies: batch }, transfer));
  port!.on('message', (batch: OpRequest[]) => {
    for (const req of batch) {
      const run = ops[req.op] as (args: unknown) => Promise<{ value: unknown; transfer?: ArrayBuffer[] }>;
      run(req.args).then(
        (r) => replies.add({ id: req.id, ok: true, value: r.value }, r.transfer ?? []),
        (e: unknown) => replies.add({ id: req.id, ok: false, error: serializeError(e) }),
      );
    }
  });

  await transport.start();
  post({ type: 'started' });
  pushView();
}

start().catch((e: unknown) => post({ type: 'startFailed', error: serializeError(e) }));
