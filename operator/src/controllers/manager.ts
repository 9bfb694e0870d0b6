// Wires the informers, the work queue, the reconciler and the member prober together. Every event on a
// StegoCluster or on anything it owns enqueues that StegoCluster's key; the prober enqueues it when the
// Raft view changes (elections produce no Kubernetes events), so labels follow a new leader within about
// a second.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { LABEL_CLUSTER, LABEL_MANAGED_BY, MANAGED_BY } from '../api/names.js';
import { GROUP, PLURAL, VERSION } from '../api/types.js';
import type { KObject, KubeClient } from '../k8s/client.js';
import type { EventRecorder } from '../k8s/events.js';
import { WorkQueue } from '../k8s/queue.js';
import { Watcher, objectKey, type WatchEventType } from '../k8s/watcher.js';
import { refOfKey, type OperatorMetrics } from '../metrics.js';
import type { BuildContext } from '../resources/common.js';
import { HTTPROUTE_API } from '../resources/routes.js';
import { SERVICEMONITOR_API } from '../resources/monitoring.js';
import { NodeClient } from './node-client.js';
import { signature } from './observe.js';
import type { Caches } from './owned.js';
import { Reconciler, type Pod, type ReconcilerDeps } from './reconciler.js';

export interface ManagerOptions {
  client: KubeClient;
  kc: KubeConfig;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  ctx: BuildContext;
  /** Watch one namespace only (empty: all). */
  namespace?: string;
  resyncMs?: number;
  silenceMs?: number;
  probeIntervalMs?: number;
  workers?: number;
  podUrl?: (pod: Pod) => string | null;
  randomToken?: () => string;
  memberRaftAddress?: ReconcilerDeps['memberRaftAddress'];
}

/** Owned kinds the operator watches, by the collection path under a namespace (or all). */
export const OWNED: [kind: string, apiVersion: string, plural: string][] = [
  ['StatefulSet', 'apps/v1', 'statefulsets'],
  ['Pod', 'v1', 'pods'],
  ['PersistentVolumeClaim', 'v1', 'persistentvolumeclaims'],
  ['Service', 'v1', 'services'],
  ['ConfigMap', 'v1', 'configmaps'],
  ['Deployment', 'apps/v1', 'deployments'],
  ['PodDisruptionBudget', 'policy/v1', 'poddisruptionbudgets'],
  ['NetworkPolicy', 'networking.k8s.io/v1', 'networkpolicies'],
  ['Ingress', 'networking.k8s.io/v1', 'ingresses'],
  ['HTTPRoute', HTTPROUTE_API, 'httproutes'],
  ['ServiceMonitor', SERVICEMONITOR_API, 'servicemonitors'],
];

function collection(apiVersion: string, plural: string, namespace?: string): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  return namespace ? `${base}/namespaces/${namespace}/${plural}` : `${base}/${plural}`;
}

export class Manager {
  readonly caches: Caches = {};
  readonly queue: WorkQueue;
  readonly reconciler: Reconciler;
  private readonly watchers: Watcher<KObject>[] = [];
  private readonly signatures = new Map<string, string>();
  private probeTimer: NodeJS.Timeout | null = null;
  private probing = false;

  constructor(private readonly o: ManagerOptions) {
    this.queue = new WorkQueue({ workers: o.workers ?? 2, onDepth: (d) => o.metrics.queueDepth.set(d) });
    this.addWatcher('StegoCluster', collection(`${GROUP}/${VERSION}`, PLURAL, o.namespace), undefined, (obj) => objectKey(obj));
    // pods: the StatefulSet's template labels carry managed-by, so one selector covers every owned kind
    const selector = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
    for (const [kind, apiVersion, plural] of OWNED) {
      this.addWatcher(kind, collection(apiVersion, plural, o.namespace), selector, (obj) => {
        const cluster = obj.metadata?.labels?.[LABEL_CLUSTER];
        return cluster ? `${obj.metadata!.namespace}/${cluster}` : null;
      });
    }
    this.reconciler = new Reconciler({
      client: o.client, caches: this.caches, nodes: new NodeClient(), events: o.events, metrics: o.metrics, log: o.log, ctx: o.ctx,
      ...(o.podUrl ? { podUrl: o.podUrl } : {}),
      ...(o.randomToken ? { randomToken: o.randomToken } : {}),
      ...(o.memberRaftAddress ? { memberRaftAddress: o.memberRaftAddress } : {}),
    });
  }

  private addWatcher(kind: string, path: string, labelSelector: string | undefined, keyOf: (o: KObject) => string | null): void {
    const w = new Watcher<KObject>(this.o.client, this.o.kc, { path, resource: kind, ...(labelSelector ? { labelSelector } : {}), ...(this.o.resyncMs ? { resyncMs: this.o.resyncMs } : {}), ...(this.o.silenceMs ? { silenceMs: this.o.silenceMs } : {}) }, {
      onEvent: (type: WatchEventType, obj) => {
        const key = keyOf(obj);
        if (!key) return;
        if (kind === 'StegoCluster' && type === 'deleted') {
          this.signatures.delete(key);
          this.o.metrics.forget(refOfKey(key));
        }
        this.queue.add(key);
      },
      onRestart: (reason, err) => {
        this.o.metrics.watchRestarts.inc({ resource: kind, reason });
        this.o.log.debug({ resource: kind, reason, err: err instanceof Error ? err.message : err }, 'watch restarted');
      },
      onUnavailable: (err) => this.o.log.debug({ resource: kind, err: err instanceof Error ? err.message : err }, 'API not served; retrying'),
    });
    this.caches[kind] = w;
    this.watchers.push(w);
  }

  /** Starts the informers, waits for the core caches, then starts reconciling and probing. */
  async start(syncTimeoutMs = 30_000): Promise<void> {
    for (const w of this.watchers) w.start();
    for (const kind of ['StegoCluster', 'StatefulSet', 'Pod', 'PersistentVolumeClaim', 'Service', 'ConfigMap']) {
      if (!(await this.caches[kind]!.waitForSync(syncTimeoutMs))) throw new Error(`the ${kind} cache did not sync within ${syncTimeoutMs} ms`);
    }
    this.queue.start((key) => this.handle(key));
    this.probeTimer = setInterval(() => void this.probeAll(), this.o.probeIntervalMs ?? 500);
    this.probeTimer.unref();
  }

  get synced(): boolean {
    return this.watchers.filter((w) => ['StegoCluster', 'StatefulSet', 'Pod'].includes(w.resource)).every((w) => w.synced);
  }

  async stop(): Promise<void> {
    if (this.probeTimer) clearInterval(this.probeTimer);
    for (const w of this.watchers) w.stop();
    await this.queue.shutdown();
  }

  private async handle(key: string): Promise<void> {
    // a deleted StegoCluster has nothing to reconcile, and its series went with it (forget)
    if (!this.reconciler.clusterFromCache(key)) return;
    const ref = refOfKey(key);
    const done = this.o.metrics.startReconcile(ref);
    try {
      const out = await this.reconciler.reconcile(key);
      if (out.error) {
        done('error');
        const delay = this.queue.addRateLimited(key);
        this.o.log.warn({ cluster: key, err: out.error.message, retry_ms: delay }, 'reconcile failed');
        return;
      }
      done(out.requeueAfterMs === null ? 'converged' : 'progressing');
      this.queue.forget(key);
      if (out.requeueAfterMs !== null) this.queue.addAfter(key, out.requeueAfterMs);
    } catch (err) {
      done('error');
      this.o.metrics.reconcileFailed(ref, 'unexpected');
      this.queue.addRateLimited(key);
      this.o.log.error({ cluster: key, err: err instanceof Error ? err.stack : String(err) }, 'reconcile crashed');
    } finally {
      // deleted while this pass ran: what the pass recorded goes too
      if (!this.reconciler.clusterFromCache(key)) this.o.metrics.forget(ref);
    }
  }

  /** Polls every cluster's members; a changed Raft view (leader, term, health, membership) enqueues it. */
  private async probeAll(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const clusters = [...(this.caches['StegoCluster']?.cache.values() ?? [])];
      await Promise.all(
        clusters.map(async (cr) => {
          const key = objectKey(cr);
          const view = await this.reconciler.probe({ name: cr.metadata!.name!, namespace: cr.metadata!.namespace! });
          const sig = signature(view);
          const before = this.signatures.get(key);
          this.signatures.set(key, sig);
          if (before !== undefined && before !== sig) this.queue.add(key);
        }),
      );
    } finally {
      this.probing = false;
    }
  }
}
