// The StegoCluster reconcile pass: an ordered pipeline of ensure steps over the cached state, level-triggered
// (it reads what is, never remembers what it did), ending in one status write when anything changed. A
// failing step ends the pass; the status then records the error without moving observedGeneration, and the
// queue retries with back-off.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { withDefaults } from '../api/defaults.js';
import { HTTP_PORT, LABEL_CLUSTER, LABEL_COMPONENT, LABEL_ROLE, names, ordinalOf, raftAddress, refOf, type ClusterRef } from '../api/names.js';
import type { StegoCluster, StegoClusterStatus } from '../api/types.js';
import { ApiError, resourcePath, type KObject, type KubeClient } from '../k8s/client.js';
import type { EventRecorder } from '../k8s/events.js';
import type { OperatorMetrics } from '../metrics.js';
import { bootstrapConfigMap } from '../resources/bootstrap.js';
import type { BuildContext } from '../resources/common.js';
import { gatewayConfigMap, gatewayDeployment, gatewayMemberCount, gatewayService, renderGatewayConf } from '../resources/gateway.js';
import { serviceMonitor } from '../resources/monitoring.js';
import { networkPolicy, podDisruptionBudget } from '../resources/policy.js';
import { HTTPROUTE_API, httpRoute, ingress } from '../resources/routes.js';
import { SECRET_KEY_ADMIN, credentialsSecret } from '../resources/secret.js';
import { LABEL_SERVICE, clientService, headlessService, leaderService, memberService } from '../resources/services.js';
import { statefulSet } from '../resources/statefulset.js';
import { NodeCallError, type NodeClient } from './node-client.js';
import { observe, plannerMembers, roleLabel, type ClusterView } from './observe.js';
import { OwnedObjects, type Caches } from './owned.js';
import { plan, type Action, type PlannerPod } from './scale-planner.js';
import { computeStatus, type PassResult } from './status.js';

export interface Pod extends KObject {
  spec?: { nodeName?: string };
  status?: { phase?: string; podIP?: string; containerStatuses?: { ready?: boolean; started?: boolean; state?: { running?: unknown } }[] };
}
interface Pvc extends KObject {
  spec?: { volumeName?: string };
}
interface StatefulSetObj extends KObject {
  spec?: { replicas?: number };
  status?: { updateRevision?: string };
}
interface SecretObj extends KObject {
  data?: Record<string, string>;
}

export interface ReconcilerDeps {
  client: KubeClient;
  caches: Caches;
  nodes: NodeClient;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  ctx: BuildContext;
  /** Base URL of a member pod's HTTP API; null while it has no address. */
  podUrl?: (pod: Pod) => string | null;
  randomToken?: () => string;
  /** Raft address a new member is added with (default: its stable name through the headless Service). */
  memberRaftAddress?: (c: ClusterRef, ordinal: number) => string;
  now?: () => Date;
}

export interface ReconcileOutcome {
  /** Requeue after this many ms (progress to make), or null (wait for events). */
  requeueAfterMs: number | null;
  error: Error | null;
}

const defaultPodUrl = (pod: Pod): string | null => (pod.status?.podIP ? `http://${pod.status.podIP.includes(':') ? `[${pod.status.podIP}]` : pod.status.podIP}:${HTTP_PORT}` : null);
const defaultToken = (): string => randomBytes(32).toString('base64url');
const SECRET_RECHECK_MS = 5 * 60_000;

class StepError extends Error {
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(`${step}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** One pass's working state. */
interface Pass {
  cr: StegoCluster;
  c: ClusterRef;
  pods: Pod[];
  view: ClusterView;
  bootstrapped: boolean;
  action: Action;
  volumes: Record<string, string>;
  frontDoor: PassResult['frontDoor'];
  writes: number;
}

export class Reconciler {
  readonly owned: OwnedObjects;
  /** Admin token per StegoCluster uid, and when its Secret was last seen (Secrets are not watched: least privilege). */
  private readonly adminTokens = new Map<string, { token: string; checkedAt: number }>();
  private readonly podUrl: (pod: Pod) => string | null;

  constructor(private readonly d: ReconcilerDeps) {
    this.owned = new OwnedObjects(d.client, d.caches);
    this.podUrl = d.podUrl ?? defaultPodUrl;
  }

  private now(): Date {
    return this.d.now?.() ?? new Date();
  }

  clusterFromCache(key: string): StegoCluster | undefined {
    return this.d.caches['StegoCluster']?.cache.get(key) as StegoCluster | undefined;
  }

  /** The member pods of a cluster, from the pod watcher's cache. */
  podsOf(c: ClusterRef): Pod[] {
    const pods = [...(this.d.caches['Pod']?.cache.values() ?? [])] as Pod[];
    return pods
      .filter((p) => p.metadata?.namespace === c.namespace && p.metadata.labels?.[LABEL_CLUSTER] === c.name && p.metadata.labels?.[LABEL_COMPONENT] === 'node')
      .filter((p) => ordinalOf(c, p.metadata!.name!) !== null);
  }

  async probe(c: ClusterRef): Promise<ClusterView> {
    const pods = this.podsOf(c).filter((p) => !p.metadata?.deletionTimestamp);
    const probes = await Promise.all(
      pods.map((p) => {
        const url = this.podUrl(p);
        return url ? this.d.nodes.probe(p.metadata!.name!, url) : Promise.resolve({ pod: p.metadata!.name!, status: null, ready: false });
      }),
    );
    return observe(probes);
  }

  async reconcile(key: string): Promise<ReconcileOutcome> {
    const raw = this.clusterFromCache(key);
    if (!raw || raw.metadata.deletionTimestamp) return { requeueAfterMs: null, error: null };
    const cr: StegoCluster = { ...raw, spec: withDefaults(raw.spec, this.d.ctx.images) };
    const c = refOf(cr.metadata);
    const view = await this.probe(c);
    const pass: Pass = {
      cr, c, pods: this.podsOf(c), view,
      bootstrapped: cr.status?.bootstrapped === true || (view.leader !== null && (view.members?.length ?? 0) > 0),
      action: { type: 'none' },
      volumes: { ...(cr.status?.volumes ?? {}) },
      frontDoor: { ready: false, reason: 'Pending', message: 'not reconciled yet' },
      writes: 0,
    };
    let error: StepError | null = null;
    try {
      pass.action = this.planFor(pass);
      await this.step('credentials', () => this.ensureCredentials(pass));
      await this.step('bootstrap', () => this.ensureBootstrap(pass));
      await this.step('services', () => this.ensureServices(pass));
      await this.step('statefulset', () => this.ensureStatefulSet(pass));
      await this.step('policies', () => this.ensurePolicies(pass));
      await this.step('frontdoor', () => this.ensureFrontDoor(pass));
      await this.step('monitoring', () => this.ensureMonitoring(pass));
      await this.step('roles', () => this.ensureRoleLabels(pass));
      await this.step('membership', () => this.performAction(pass));
    } catch (err) {
      error = err instanceof StepError ? err : new StepError('reconcile', err);
      this.d.metrics.reconcileFailed(c, error.step);
    }
    await this.recordTransitions(pass);
    await this.writeStatus(pass, error);
    if (error) {
      await this.d.events.record({ ...c, uid: cr.metadata.uid }, 'Warning', 'ReconcileError', error.message);
      return { requeueAfterMs: null, error };
    }
    if (pass.action.type === 'none') return { requeueAfterMs: null, error: null };
    return { requeueAfterMs: pass.action.type === 'wait' ? 2000 : 500, error: null };
  }

  private async step(name: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      throw new StepError(name, err);
    }
  }

  private async apply(pass: Pass, obj: KObject): Promise<void> {
    if (await this.owned.apply(obj)) pass.writes++;
  }

  // --- observation → plan -------------------------------------------------------------------------

  private plannerPods(pass: Pass): PlannerPod[] {
    const sts = this.owned.cached<StatefulSetObj>('StatefulSet', pass.c.namespace, names.statefulSet(pass.c));
    const revision = sts?.status?.updateRevision;
    return pass.pods.map((p) => {
      const ordinal = ordinalOf(pass.c, p.metadata!.name!)!;
      const phase = p.status?.phase;
      const podRevision = p.metadata?.labels?.['controller-revision-hash'];
      return {
        ordinal,
        running: phase === 'Running' && !p.metadata?.deletionTimestamp,
        terminal: phase === 'Failed' || phase === 'Succeeded',
        dataLost: this.dataLost(pass, p.metadata!.name!, ordinal),
        outdated: revision !== undefined && podRevision !== undefined && podRevision !== revision,
      };
    });
  }

  /** A member whose PVC is not the one recorded while it was healthy has lost its Raft data. */
  private dataLost(pass: Pass, pod: string, ordinal: number): boolean {
    const recorded = pass.volumes[pod];
    const pvc = this.owned.cached<Pvc>('PersistentVolumeClaim', pass.c.namespace, names.pvc(pass.c, ordinal));
    return recorded !== undefined && pvc?.metadata?.uid !== undefined && pvc.metadata.uid !== recorded;
  }

  /** Records each healthy member's PVC uid, the reference a later replacement is recognised by. */
  private recordVolumes(pass: Pass): void {
    for (const m of pass.view.members ?? []) {
      const ordinal = ordinalOf(pass.c, m.id);
      if (ordinal === null || !m.healthy || this.dataLost(pass, m.id, ordinal)) continue;
      const uid = this.owned.cached<Pvc>('PersistentVolumeClaim', pass.c.namespace, names.pvc(pass.c, ordinal))?.metadata?.uid;
      if (uid) pass.volumes[m.id] = uid;
    }
    const members = new Set((pass.view.members ?? []).map((m) => m.id));
    if (pass.view.members) for (const id of Object.keys(pass.volumes)) if (!members.has(id)) delete pass.volumes[id];
  }

  private planFor(pass: Pass): Action {
    const sts = this.owned.cached<StatefulSetObj>('StatefulSet', pass.c.namespace, names.statefulSet(pass.c));
    const leaderOrdinal = pass.view.leader ? ordinalOf(pass.c, pass.view.leader) : null;
    this.recordVolumes(pass);
    return plan({
      desired: pass.cr.spec.replicas,
      statefulSetReplicas: sts ? (sts.spec?.replicas ?? 0) : null,
      bootstrapped: pass.bootstrapped,
      leader: leaderOrdinal,
      members: plannerMembers(pass.c, pass.view),
      pods: this.plannerPods(pass),
    });
  }

  // --- ensure steps ---------------------------------------------------------------------------------

  private async ensureCredentials(pass: Pass): Promise<void> {
    const name = names.credentialsSecret(pass.c);
    const key = `${pass.cr.metadata.uid}`;
    // re-read now and then, so a deleted Secret is re-created (the members then restart with new credentials)
    if (Date.now() - (this.adminTokens.get(key)?.checkedAt ?? 0) < SECRET_RECHECK_MS) return;
    const path = resourcePath('v1', 'Secret', pass.c.namespace, name);
    let secret = await this.d.client.find<SecretObj>(path);
    if (!secret) {
      // created once, never re-applied: a new Raft secret would cut every member off from its peers
      try {
        secret = await this.d.client.create(credentialsSecret(pass.cr, this.d.randomToken ?? defaultToken) as SecretObj);
        pass.writes++;
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 409)) throw err;
        secret = await this.d.client.get<SecretObj>(path);
      }
    }
    const token = secret.data?.[SECRET_KEY_ADMIN];
    if (!token) throw new Error(`Secret ${name} has no ${SECRET_KEY_ADMIN}`);
    this.adminTokens.set(key, { token: Buffer.from(token, 'base64').toString('utf8'), checkedAt: Date.now() });
  }

  private initialMembers(pass: Pass): number {
    const sts = this.owned.cached<StatefulSetObj>('StatefulSet', pass.c.namespace, names.statefulSet(pass.c));
    return sts?.spec?.replicas ?? pass.cr.spec.replicas;
  }

  private async ensureBootstrap(pass: Pass): Promise<void> {
    const cr = { ...pass.cr, status: { ...(pass.cr.status ?? {}), bootstrapped: pass.bootstrapped } };
    await this.apply(pass, bootstrapConfigMap(cr, this.initialMembers(pass), this.d.ctx));
  }

  private async ensureServices(pass: Pass): Promise<void> {
    await this.apply(pass, headlessService(pass.cr));
    await this.apply(pass, clientService(pass.cr));
    await this.apply(pass, leaderService(pass.cr));
    const count = this.memberCount(pass);
    for (let i = 0; i < count; i++) await this.apply(pass, memberService(pass.cr, i));
    // member Services beyond the count (after a scale-down) go; the gateway config stops naming them in the same pass
    const stale = Array.from(this.d.caches['Service']?.cache.values() ?? [])
      .filter((s) => s.metadata?.namespace === pass.c.namespace && s.metadata?.labels?.[LABEL_SERVICE] === 'member')
      .filter((s) => s.metadata?.ownerReferences?.some((r) => r.uid === pass.cr.metadata.uid))
      .map((s) => s.metadata!.name!)
      .filter((n) => !Array.from({ length: count }, (_, i) => names.memberService(pass.c, i)).includes(n));
    for (const n of stale) if (await this.owned.remove('Service', 'v1', pass.c.namespace, n)) pass.writes++;
  }

  /** Members named by member Services and the gateway: the desired and the running StatefulSet's replicas. */
  private memberCount(pass: Pass): number {
    const sts = this.owned.cached<StatefulSetObj>('StatefulSet', pass.c.namespace, names.statefulSet(pass.c));
    return gatewayMemberCount(pass.cr, sts?.spec?.replicas);
  }

  private async ensureStatefulSet(pass: Pass): Promise<void> {
    const current = this.owned.cached<StatefulSetObj>('StatefulSet', pass.c.namespace, names.statefulSet(pass.c));
    const replicas = pass.action.type === 'scaleStatefulSet' ? pass.action.replicas : (current?.spec?.replicas ?? pass.cr.spec.replicas);
    await this.apply(pass, statefulSet(pass.cr, replicas));
    if (pass.action.type === 'scaleStatefulSet') {
      this.d.metrics.scaled(pass.c, 'scale_statefulset');
      await this.event(pass, 'Normal', 'Scaling', `StatefulSet to ${replicas} pods: ${pass.action.reason}`);
    }
  }

  private async ensurePolicies(pass: Pass): Promise<void> {
    const pdb = podDisruptionBudget(pass.cr);
    if (pdb) await this.apply(pass, pdb);
    else if (await this.owned.remove('PodDisruptionBudget', 'policy/v1', pass.c.namespace, names.pdb(pass.c))) pass.writes++;
    const np = networkPolicy(pass.cr, this.d.ctx);
    if (np) await this.apply(pass, np);
    else if (await this.owned.remove('NetworkPolicy', 'networking.k8s.io/v1', pass.c.namespace, names.networkPolicy(pass.c))) pass.writes++;
  }

  private async removeFrontDoors(pass: Pass, keep: string): Promise<void> {
    const ns = pass.c.namespace;
    const drop: [string, string, string, string][] = [
      ['gateway', 'Deployment', 'apps/v1', names.gateway(pass.c)],
      ['gateway', 'Service', 'v1', names.gateway(pass.c)],
      ['gateway', 'ConfigMap', 'v1', names.gatewayConfigMap(pass.c)],
      ['ingress', 'Ingress', 'networking.k8s.io/v1', names.ingress(pass.c)],
      ['httpRoute', 'HTTPRoute', HTTPROUTE_API, names.httpRoute(pass.c)],
    ];
    for (const [mode, kind, apiVersion, name] of drop) {
      if (mode === keep || !this.owned.available(kind)) continue;
      if (await this.owned.remove(kind, apiVersion, ns, name)) pass.writes++;
    }
  }

  private async ensureFrontDoor(pass: Pass): Promise<void> {
    const mode = pass.cr.spec.frontDoor.mode;
    await this.removeFrontDoors(pass, mode);
    if (mode === 'none') {
      pass.frontDoor = { ready: true, reason: 'Disabled', message: 'frontDoor.mode is none' };
    } else if (mode === 'gateway') {
      const conf = renderGatewayConf(pass.cr, this.memberCount(pass), this.d.ctx);
      await this.apply(pass, gatewayConfigMap(pass.cr, conf));
      await this.apply(pass, gatewayDeployment(pass.cr, conf));
      await this.apply(pass, gatewayService(pass.cr));
      pass.frontDoor = { ready: true, reason: 'GatewayConfigured', message: `nginx Deployment ${names.gateway(pass.c)} writes to ${names.leaderService(pass.c)} first` };
    } else if (mode === 'httpRoute') {
      if (!this.owned.available('HTTPRoute')) {
        pass.frontDoor = { ready: false, reason: 'GatewayAPINotInstalled', message: 'the gateway.networking.k8s.io/v1 HTTPRoute API is not served: install the Gateway API CRDs' };
        return;
      }
      await this.apply(pass, httpRoute(pass.cr));
      pass.frontDoor = { ready: true, reason: 'HTTPRouteConfigured', message: `HTTPRoute ${names.httpRoute(pass.c)} attached to ${pass.cr.spec.frontDoor.httpRoute!.parentRefs.map((p) => p.name).join(', ')}` };
    } else {
      await this.apply(pass, ingress(pass.cr));
      pass.frontDoor = { ready: true, reason: 'IngressConfigured', message: `Ingress ${names.ingress(pass.c)}` };
    }
  }

  private async ensureMonitoring(pass: Pass): Promise<void> {
    const sm = serviceMonitor(pass.cr);
    if (!this.owned.available('ServiceMonitor')) {
      if (sm) await this.event(pass, 'Warning', 'ServiceMonitorUnavailable', 'metrics.serviceMonitor.enabled but the monitoring.coreos.com/v1 API is not served');
      return;
    }
    if (sm) await this.apply(pass, sm);
    else if (await this.owned.remove('ServiceMonitor', 'monitoring.coreos.com/v1', pass.c.namespace, names.serviceMonitor(pass.c))) pass.writes++;
  }

  /** Demotions first, so the leader Service never selects two pods. */
  private async ensureRoleLabels(pass: Pass): Promise<void> {
    const changes = pass.pods
      .filter((p) => !p.metadata?.deletionTimestamp)
      .map((p) => ({ pod: p, want: roleLabel(p.metadata!.name!, pass.view) }))
      .filter(({ pod, want }) => pod.metadata?.labels?.[LABEL_ROLE] !== want)
      .sort((a, b) => Number(a.want === 'leader') - Number(b.want === 'leader'));
    for (const { pod, want } of changes) {
      const updated = await this.d.client.mergePatch<Pod>(resourcePath('v1', 'Pod', pass.c.namespace, pod.metadata!.name!), { metadata: { labels: { [LABEL_ROLE]: want } } });
      this.d.caches['Pod']?.cache.set(`${pass.c.namespace}/${pod.metadata!.name!}`, updated);
      pass.writes++;
    }
  }

  // --- membership -----------------------------------------------------------------------------------

  private leaderUrl(pass: Pass): { url: string; token: string } {
    const leader = pass.pods.find((p) => p.metadata?.name === pass.view.leader);
    const url = leader ? this.podUrl(leader) : null;
    const token = this.adminTokens.get(`${pass.cr.metadata.uid}`)?.token;
    if (!url || !token) throw new Error('the leader pod has no address or the admin token is unknown');
    return { url, token };
  }

  private transferTarget(pass: Pass, from: number): string | undefined {
    const stay = (pass.view.members ?? []).filter((m) => {
      const o = ordinalOf(pass.c, m.id);
      return o !== null && o !== from && o < pass.cr.spec.replicas && m.membership === 'voter' && m.healthy;
    });
    return stay.sort((a, b) => (b.appliedIndex ?? 0) - (a.appliedIndex ?? 0))[0]?.id;
  }

  private async performAction(pass: Pass): Promise<void> {
    const a = pass.action;
    if (a.type === 'none' || a.type === 'wait' || a.type === 'scaleStatefulSet') return;
    try {
      await this.perform(pass, a);
    } catch (err) {
      // another change still in flight on the leader: plan again on the next pass
      if (err instanceof NodeCallError && err.status === 409) return;
      throw err;
    }
  }

  private async perform(pass: Pass, a: Exclude<Action, { type: 'none' | 'wait' | 'scaleStatefulSet' }>): Promise<void> {
    const target = { ...pass.c, uid: pass.cr.metadata.uid };
    if (a.type === 'deletePod') {
      const pod = pass.pods.find((p) => ordinalOf(pass.c, p.metadata!.name!) === a.ordinal)!;
      await this.d.client.delete(resourcePath('v1', 'Pod', pass.c.namespace, pod.metadata!.name!), pod.metadata!.uid);
      this.d.metrics.scaled(pass.c, 'delete_pod');
      await this.d.events.record(target, 'Normal', 'PodReplaced', `${pod.metadata!.name}: ${a.reason}`);
      pass.writes++;
      return;
    }
    const { url, token } = this.leaderUrl(pass);
    if (a.type === 'addMember') {
      const id = names.pod(pass.c, a.ordinal);
      await this.d.nodes.admin(url, token, 'POST', '/admin/members', { id, raft_address: this.d.memberRaftAddress?.(pass.c, a.ordinal) ?? raftAddress(pass.c, a.ordinal, this.d.ctx.clusterDomain) });
      const uid = this.owned.cached<Pvc>('PersistentVolumeClaim', pass.c.namespace, names.pvc(pass.c, a.ordinal))?.metadata?.uid;
      if (uid) pass.volumes[id] = uid;
      this.d.metrics.scaled(pass.c, 'add_member');
      await this.d.events.record(target, 'Normal', 'MemberAdded', `${id} added as a learner: ${a.reason}`);
    } else if (a.type === 'removeMember') {
      const id = names.pod(pass.c, a.ordinal);
      await this.d.nodes.admin(url, token, 'DELETE', `/admin/members/${encodeURIComponent(id)}`);
      delete pass.volumes[id];
      this.d.metrics.scaled(pass.c, 'remove_member');
      await this.d.events.record(target, 'Normal', 'MemberRemoved', `${id} removed: ${a.reason}`);
    } else {
      const to = this.transferTarget(pass, a.from);
      await this.d.nodes.admin(url, token, 'POST', '/admin/transfer-leadership', to ? { to } : {}, 10_000);
      this.d.metrics.scaled(pass.c, 'transfer_leadership');
      await this.d.events.record(target, 'Normal', 'LeadershipTransferred', `leadership moved away from ${names.pod(pass.c, a.from)}${to ? ` to ${to}` : ''}: ${a.reason}`);
    }
  }

  // --- status ---------------------------------------------------------------------------------------

  private async event(pass: Pass, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    await this.d.events.record({ ...pass.c, uid: pass.cr.metadata.uid }, type, reason, message);
  }

  private async recordTransitions(pass: Pass): Promise<void> {
    const prev = pass.cr.status;
    if (pass.view.leader && pass.view.leader !== prev?.leader) {
      if (prev?.leader) this.d.metrics.leaderChanged(pass.c);
      await this.event(pass, 'Normal', 'LeaderElected', `${pass.view.leader} leads at term ${pass.view.term}`);
    }
    if (pass.bootstrapped && !pass.view.leader && prev?.leader) {
      await this.event(pass, 'Warning', 'NoLeader', `no member reports itself leader (last leader ${prev.leader} at term ${prev.term ?? 0})`);
    }
  }

  private async writeStatus(pass: Pass, error: StepError | null): Promise<void> {
    const status = computeStatus(pass.cr, {
      view: pass.view,
      action: pass.action,
      bootstrapped: pass.bootstrapped,
      podCount: pass.pods.length,
      volumes: pass.volumes,
      frontDoor: pass.frontDoor,
      error: error ? error.message : null,
    }, this.now());
    if (status.conditions?.find((c) => c.type === 'QuorumLost')?.status === 'True' && pass.cr.status?.phase !== 'QuorumLost') {
      await this.event(pass, 'Warning', 'QuorumLost', status.phaseReason ?? 'quorum lost');
    }
    if (sameStatus(pass.cr.status, status)) return;
    const body = { apiVersion: pass.cr.apiVersion, kind: pass.cr.kind, metadata: { name: pass.c.name, namespace: pass.c.namespace }, status };
    const updated = await this.d.client.apply<StegoCluster>(body as StegoCluster, 'status');
    this.d.caches['StegoCluster']?.cache.set(`${pass.c.namespace}/${pass.c.name}`, updated);
  }
}

function sameStatus(a: StegoClusterStatus | undefined, b: StegoClusterStatus): boolean {
  return JSON.stringify(normalise(a ?? {})) === JSON.stringify(normalise(b));
}

function normalise(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalise);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([x], [y]) => x.localeCompare(y)).map(([k, x]) => [k, normalise(x)]));
  }
  return v;
}
