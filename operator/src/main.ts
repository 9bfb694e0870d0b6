// The operator process: leader election on a Lease, informers + reconcile while leading, /healthz /readyz
// /metrics on the probe port, JSON logs, graceful shutdown on SIGTERM/SIGINT.
import http from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { loadOperatorConfig } from './config.js';
import { Manager } from './controllers/manager.js';
import { KubeClient } from './k8s/client.js';
import { EventRecorder } from './k8s/events.js';
import { LeaderElector } from './k8s/lease.js';
import { OperatorMetrics } from './metrics.js';

const cfg = loadOperatorConfig(process.env);
const log = pino({ level: cfg.logLevel, base: { component: 'stego-operator', pod: cfg.identity }, timestamp: pino.stdTimeFunctions.isoTime });
const kc = new KubeConfig();
kc.loadFromDefault();
const client = new KubeClient(kc);
const metrics = new OperatorMetrics();
client.onRequest((verb, _path, code) => metrics.apiRequests.inc({ verb, code: String(code) }));

let manager: Manager | null = null;
let shuttingDown = false;

function newManager(): Manager {
  return new Manager({
    client, kc, metrics, log, ctx: cfg.build,
    events: new EventRecorder(client, 'stego-operator'),
    ...(cfg.watchNamespace ? { namespace: cfg.watchNamespace } : {}),
    resyncMs: cfg.resyncMs,
    probeIntervalMs: cfg.probeIntervalMs,
  });
}

async function startLeading(): Promise<void> {
  metrics.isLeader.set(1);
  log.info({}, 'leading: starting informers and reconcilers');
  manager = newManager();
  try {
    await manager.start();
    log.info({}, 'caches synced');
  } catch (err) {
    log.fatal({ err: err instanceof Error ? err.message : String(err) }, 'could not start');
    await shutdown(1);
  }
}

const elector = new LeaderElector(client, {
  namespace: cfg.namespace,
  name: cfg.leaseName,
  identity: cfg.identity,
  onStartedLeading: () => void startLeading(),
  // like client-go: a replica that lost its lease stops at once; its restart comes back as a standby
  onStoppedLeading: () => {
    metrics.isLeader.set(0);
    log.error({}, 'lost the leader lease: exiting');
    void shutdown(1);
  },
});

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/healthz') {
    res.writeHead(shuttingDown ? 503 : 200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: shuttingDown ? 'stopping' : 'ok' }));
  } else if (url === '/readyz') {
    // a standby is ready (it is waiting for the lease); a leader once its caches synced
    const ready = !shuttingDown && (manager === null || manager.synced);
    res.writeHead(ready ? 200 : 503, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ready, leading: elector.leading }));
  } else if (url === '/metrics') {
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  } else {
    res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: { code: 'not_found', message: 'try /healthz, /readyz or /metrics' } }));
  }
});

async function shutdown(code: number): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info({ code }, 'shutting down');
  const force = setTimeout(() => process.exit(code), 15_000);
  force.unref();
  await manager?.stop();
  await elector.stop();
  server.close();
  log.info({}, 'stopped');
  process.exit(code);
}

process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));

server.listen(cfg.probePort, () => {
  log.info({ port: cfg.probePort, namespace: cfg.namespace, watch: cfg.watchNamespace || '(all)', leader_election: cfg.leaderElection }, 'stego-operator started');
  if (cfg.leaderElection) elector.start();
  else void startLeading();
});
