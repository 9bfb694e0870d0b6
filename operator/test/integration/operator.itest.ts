// The operator against a real kube-apiserver + etcd (stage 1 of e2e/local: no kubelet, no controllers).
// What the missing parts would do is played by the test: member "pods" are Pod objects whose status the
// test sets (Running, podIP 127.0.0.1) and behind each runs a real StegoCluster node process on loopback,
// so leader, terms, labels and membership changes are real. The StatefulSet controller is the test too: it
// creates the pod the operator scaled the StatefulSet up for.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { freePort, pollUntil } from '../../../node/test/cluster/harness.js';
import { schemaDefaults } from '../../src/api/defaults.js';
import { LABEL_ROLE, names } from '../../src/api/names.js';
import { customResourceDefinition, CRD_NAME } from '../../src/api/schema.js';
import { API_VERSION, KIND, type StegoCluster } from '../../src/api/types.js';
import { Manager } from '../../src/controllers/manager.js';
import type { Pod } from '../../src/controllers/reconciler.js';
import { ApiError, KubeClient, resourcePath, type KObject } from '../../src/k8s/client.js';
import { EventRecorder } from '../../src/k8s/events.js';
import { LeaderElector } from '../../src/k8s/lease.js';
import { OperatorMetrics } from '../../src/metrics.js';
import { DEFAULT_CONTEXT } from '../../src/resources/common.js';
import { createRunningPod, killMember, memberProcess, tempDir, useApiServer } from './env.js';
import type { NodeProcess } from '../../../node/test/cluster/harness.js';
import type { KubeConfig } from '@kubernetes/client-node';

const CLUSTER = 'demo';

function cluster(namespace: string, spec: Record<string, unknown>, name = CLUSTER): StegoCluster {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace }, spec } as unknown as StegoCluster;
}

async function expectRefused(client: KubeClient, obj: StegoCluster, message: RegExp): Promise<void> {
  try {
    await client.create(obj);
  } catch (err) {
    expect(err).to.be.instanceOf(ApiError);
    expect((err as ApiError).status).to.equal(422);
    expect((err as ApiError).message).to.match(message);
    return;
  }
  throw new Error(`the API server accepted ${JSON.stringify(obj.spec)}`);
}

describe('operator integration: real kube-apiserver', function () {
  this.timeout(120_000);
  const api = useApiServer('stego-it');
  let client: KubeClient;
  let kc: KubeConfig;
  let namespace = '';

  before(async function () {
    if (!api.client) return this.skip();
    ({ client, kc, namespace } = api);
    await client.apply(customResourceDefinition() as KObject);
    await pollUntil('the CRD to be established', async () => {
      const crd = await client.get<KObject & { status?: { conditions?: { type: string; status: string }[] } }>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`);
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    });
  });

  describe('the CRD', () => {
    it('fills every default the operator assumes (images come from the operator installation)', async () => {
      const created = await client.create(cluster(namespace, {}, 'defaults'));
      expect(created.spec).to.deep.equal(schemaDefaults({}));
      await client.delete(resourcePath(API_VERSION, KIND, namespace, 'defaults'));
    });

    it('refuses bad specs with a message naming the rule', async () => {
      await expectRefused(client, cluster(namespace, { replicas: 0 }, 'bad'), /spec\.replicas.*should be greater than or equal to 1/);
      await expectRefused(client, cluster(namespace, { replicas: 10 }, 'bad'), /spec\.replicas.*should be less than or equal to 9/);
      await expectRefused(client, cluster(namespace, { raft: { electionTimeoutMinMs: 300, electionTimeoutMaxMs: 300 } }, 'bad'), /electionTimeoutMinMs must be less than raft\.electionTimeoutMaxMs/);
      await expectRefused(client, cluster(namespace, { raft: { heartbeatMs: 200 } }, 'bad'), /raft\.heartbeatMs must be less than raft\.electionTimeoutMinMs/);
      await expectRefused(client, cluster(namespace, { raft: { electionTimeoutMinMs: 200, electionTimeoutMaxMs: 300 } }, 'bad'), /must be 2 \* raft\.electionTimeoutMinMs/);
      await expectRefused(client, cluster(namespace, { frontDoor: { mode: 'httpRoute' } }, 'bad'), /parentRefs must name a Gateway/);
      await expectRefused(client, cluster(namespace, { frontDoor: { mode: 'tcp' } }, 'bad'), /spec\.frontDoor\.mode.*Unsupported value/);
      await expectRefused(client, cluster(namespace, {}, 'x'.repeat(41)), /at most 40 characters/);
    });

    it('refuses a storage size change', async () => {
      await client.create(cluster(namespace, { storage: { size: '1Gi' } }, 'immutable'));
      try {
        await client.mergePatch(resourcePath(API_VERSION, KIND, namespace, 'immutable'), { spec: { storage: { size: '2Gi' } } });
        throw new Error('accepted');
      } catch (err) {
        expect((err as Error).message).to.match(/storage\.size is immutable/);
      } finally {
        await client.delete(resourcePath(API_VERSION, KIND, namespace, 'immutable'));
      }
    });

    it('serves the scale subresource with the pod selector', async () => {
      await client.create(cluster(namespace, { replicas: 3 }, 'scalable'));
      await client.mergePatch(resourcePath(API_VERSION, KIND, namespace, 'scalable', 'scale'), { spec: { replicas: 5 } });
      const sc = await client.get<StegoCluster>(resourcePath(API_VERSION, KIND, namespace, 'scalable'));
      expect(sc.spec.replicas).to.equal(5);
      await client.delete(resourcePath(API_VERSION, KIND, namespace, 'scalable'));
    });
  });

  describe('the Lease', () => {
    it('lets one of two electors lead, and the other take over when it steps down', async () => {
      const led: string[] = [];
      const mk = (identity: string): LeaderElector =>
        new LeaderElector(client, { namespace, name: 'it-lease', identity, leaseDurationSeconds: 2, retryPeriodMs: 200, onStartedLeading: () => led.push(identity), onStoppedLeading: () => led.push(`${identity}-lost`) });
      const a = mk('a');
      const b = mk('b');
      a.start();
      await pollUntil('a to lead', async () => (a.leading ? true : undefined));
      b.start();
      await new Promise((r) => setTimeout(r, 800));
      expect(b.leading).to.equal(false);
      await a.stop();
      await pollUntil('b to take over', async () => (b.leading ? true : undefined), { deadlineMs: 10_000 });
      await b.stop();
      expect(led).to.deep.equal(['a', 'b']);
    });
  });

  describe('a StegoCluster with real node processes', () => {
    const token = randomBytes(16).toString('hex');
    const nodes = new Map<string, NodeProcess>();
    const dirs = tempDir('stego-op-it-');
    let manager: Manager;
    const writes: string[] = [];

    const get = (): Promise<StegoCluster> => client.get<StegoCluster>(resourcePath(API_VERSION, KIND, namespace, CLUSTER));
    const pod = (name: string): Promise<Pod> => client.get<Pod>(resourcePath('v1', 'Pod', namespace, name));
    const c = { name: CLUSTER, namespace: '' };

    async function addNode(ordinal: number, peers: string | null): Promise<NodeProcess> {
      const id = `${CLUSTER}-${ordinal}`;
      const n = memberProcess(id, await freePort(), await freePort(), `${dirs.path}/${id}`, {
        STEGO_CLUSTER_SECRET: token, STEGO_ADMIN_TOKEN: token, ...(peers ? { PEERS: peers } : { STEGO_JOIN: '1' }),
        // elections only when a node really dies, even on a machine shared with builds
        STEGO_HEARTBEAT_MS: '100', STEGO_ELECTION_MS: '1000',
      });
      nodes.set(id, n);
      return n;
    }

    before(async function () {
      if (!client) return this.skip();
      c.namespace = namespace;
      const initial = await Promise.all([0, 1, 2].map((o) => addNode(o, null)));
      const peers = initial.map((n) => `${n.id}=127.0.0.1:${n.raftPort}`).join(',');
      for (const n of initial) Object.assign(n.env, { PEERS: peers, STEGO_JOIN: '0' });
      // the operator's own client, so the write count is the operator's alone
      const opClient = new KubeClient(kc);
      opClient.onRequest((method, path, status) => {
        if (method !== 'GET' && status < 300) writes.push(`${method} ${path}`);
      });
      manager = new Manager({
        client: opClient, kc, namespace,
        events: new EventRecorder(opClient, 'stego-operator-it'),
        metrics: new OperatorMetrics(false),
        log: pino({ level: 'silent' }),
        ctx: { ...DEFAULT_CONTEXT, operatorNamespace: namespace },
        probeIntervalMs: 200,
        randomToken: () => token,
        podUrl: (p) => nodes.get(p.metadata!.name!)?.url ?? null,
        memberRaftAddress: (_c, ordinal) => `127.0.0.1:${nodes.get(`${CLUSTER}-${ordinal}`)!.raftPort}`,
      });
      await manager.start();
    });

    after(async () => {
      await manager?.stop();
      await Promise.all([...nodes.values()].map((n) => killMember(n)));
      dirs.remove();
    });

    it('creates every owned object with an owner reference, and a status with conditions', async () => {
      const created = await client.create(cluster(namespace, { replicas: 3, raft: { heartbeatMs: 50 } }));
      const owner = { apiVersion: API_VERSION, kind: KIND, name: CLUSTER, uid: created.metadata.uid, controller: true, blockOwnerDeletion: true };
      const owned: [string, string, string][] = [
        ['apps/v1', 'StatefulSet', names.statefulSet(c)],
        ['v1', 'Service', names.headlessService(c)],
        ['v1', 'Service', names.clientService(c)],
        ['v1', 'Service', names.leaderService(c)],
        ['v1', 'Service', names.memberService(c, 0)],
        ['v1', 'Service', names.memberService(c, 1)],
        ['v1', 'Service', names.memberService(c, 2)],
        ['v1', 'Secret', names.credentialsSecret(c)],
        ['v1', 'ConfigMap', names.bootstrapConfigMap(c)],
        ['policy/v1', 'PodDisruptionBudget', names.pdb(c)],
        ['networking.k8s.io/v1', 'NetworkPolicy', names.networkPolicy(c)],
        ['apps/v1', 'Deployment', names.gateway(c)],
        ['v1', 'Service', names.gateway(c)],
        ['v1', 'ConfigMap', names.gatewayConfigMap(c)],
      ];
      for (const [apiVersion, kind, name] of owned) {
        const obj = await pollUntil(`${kind} ${name}`, () => client.find(resourcePath(apiVersion, kind, namespace, name)).then((o) => o ?? undefined));
        expect(obj.metadata!.ownerReferences, `${kind} ${name}`).to.deep.equal([owner]);
      }
      const sts = await client.get<KObject & { spec: { replicas: number; podManagementPolicy: string } }>(resourcePath('apps/v1', 'StatefulSet', namespace, CLUSTER));
      expect(sts.spec).to.include({ replicas: 3, podManagementPolicy: 'Parallel' });
      const status = await pollUntil('a status', async () => ((await get()).status?.conditions ? (await get()).status : undefined));
      expect(status.phase).to.equal('Creating');
      expect(status.observedGeneration).to.equal(1);
      expect(status.selector).to.equal('stego.io/cluster=demo,app.kubernetes.io/component=node');
      expect(status.conditions!.map((x) => x.type)).to.include.members(['Available', 'Progressing', 'Degraded', 'LeaderElected', 'QuorumLost']);
    });

    it('reports the leader agreed at the highest term and labels the pods', async () => {
      for (const n of nodes.values()) n.spawn();
      for (const o of [0, 1, 2]) await createRunningPod(client, namespace, CLUSTER, o);
      const status = await pollUntil('Available with a leader and every member ready', async () => {
        const s = (await get()).status;
        return s?.leader && s.readyReplicas === 3 && s.conditions?.find((x) => x.type === 'Available')?.status === 'True' ? s : undefined;
      }, { deadlineMs: 30_000 });
      expect(status.term).to.be.greaterThan(0);
      expect(status.bootstrapped).to.equal(true);
      expect(status.members!.map((m) => m.membership)).to.deep.equal(['voter', 'voter', 'voter']);
      expect(status.readyReplicas).to.equal(3);
      await pollUntil('role labels', async () => {
        const roles = await Promise.all([0, 1, 2].map(async (o) => (await pod(`${CLUSTER}-${o}`)).metadata!.labels?.[LABEL_ROLE]));
        return roles.filter((r) => r === 'leader').length === 1 && roles.filter((r) => r === 'follower').length === 2 ? roles : undefined;
      });
      expect((await pod(status.leader!)).metadata!.labels![LABEL_ROLE]).to.equal('leader');
      const cm = await client.get<KObject & { data: Record<string, string> }>(resourcePath('v1', 'ConfigMap', namespace, names.bootstrapConfigMap(c)));
      expect(cm.data['peers'], 'fresh pods now join instead of bootstrapping').to.equal('');
    });

    it('follows a new leader within seconds when the leader dies', async () => {
      const before = (await get()).status!;
      const old = nodes.get(before.leader!)!;
      const t0 = Date.now();
      await killMember(old);
      const after = await pollUntil('a new leader in status', async () => {
        const s = (await get()).status;
        return s?.leader && s.leader !== before.leader ? s : undefined;
      }, { deadlineMs: 15_000 });
      const followMs = Date.now() - t0;
      expect(after.term).to.be.greaterThan(before.term!);
      await pollUntil('labels to follow', async () =>
        (await pod(after.leader!)).metadata!.labels![LABEL_ROLE] === 'leader' && (await pod(before.leader!)).metadata!.labels![LABEL_ROLE] !== 'leader' ? true : undefined,
      );
      console.log(`      new leader ${after.leader} (term ${after.term}) in status ${followMs} ms after the old one was killed`);
      old.spawn();
      await pollUntil('the old leader back as a healthy member', async () => {
        const s = (await get()).status;
        return s?.members?.every((m) => m.healthy) && s.readyReplicas === 3 ? true : undefined;
      }, { deadlineMs: 30_000 });
    });

    it('issues no writes in a steady state, and one StatefulSet apply for a spec change', async () => {
      await pollUntil('converged', async () => ((await get()).status?.phase === 'Healthy' ? true : undefined), { deadlineMs: 20_000 });
      // a window counts only if the Raft view stayed put (an election is a legitimate reason to write)
      let steadyWrites: string[] | null = null;
      for (let attempt = 0; attempt < 3 && steadyWrites === null; attempt++) {
        const before = (await get()).status!;
        await new Promise((r) => setTimeout(r, 500));
        writes.length = 0;
        for (let i = 0; i < 10; i++) {
          manager.queue.add(`${namespace}/${CLUSTER}`);
          await new Promise((r) => setTimeout(r, 150));
        }
        const after = (await get()).status!;
        if (after.term === before.term && after.leader === before.leader && after.phase === 'Healthy') steadyWrites = [...writes];
      }
      expect(steadyWrites, 'writes in a steady state').to.deep.equal([]);
      const stsBefore = await client.get<KObject>(resourcePath('apps/v1', 'StatefulSet', namespace, CLUSTER));
      const svcBefore = await client.get<KObject>(resourcePath('v1', 'Service', namespace, CLUSTER));
      writes.length = 0;
      await client.mergePatch(resourcePath(API_VERSION, KIND, namespace, CLUSTER), { spec: { logLevel: 'debug' } });
      await pollUntil('observedGeneration 2', async () => ((await get()).status?.observedGeneration === 2 ? true : undefined));
      const stsAfter = await client.get<KObject>(resourcePath('apps/v1', 'StatefulSet', namespace, CLUSTER));
      const svcAfter = await client.get<KObject>(resourcePath('v1', 'Service', namespace, CLUSTER));
      expect(stsAfter.metadata!.resourceVersion).to.not.equal(stsBefore.metadata!.resourceVersion);
      expect(svcAfter.metadata!.resourceVersion).to.equal(svcBefore.metadata!.resourceVersion);
      const applied = writes.filter((w) => !w.includes('/events') && !w.includes('/pods/'));
      expect(applied.filter((w) => w.endsWith('/statefulsets/demo'))).to.have.length(1);
      expect(applied.length, applied.join('\n')).to.be.at.most(2);
    });

    it('scales 3 → 4 one member at a time (learner, then voter) and back to 3', async () => {
      await client.mergePatch(resourcePath(API_VERSION, KIND, namespace, CLUSTER, 'scale'), { spec: { replicas: 4 } });
      await pollUntil('StatefulSet scaled to 4', async () => {
        const sts = await client.get<KObject & { spec: { replicas: number } }>(resourcePath('apps/v1', 'StatefulSet', namespace, CLUSTER));
        return sts.spec.replicas === 4 ? true : undefined;
      });
      // the StatefulSet controller's and kubelet's part: the pod and its process (joining, no data)
      const joiner = await addNode(3, null);
      joiner.spawn();
      await createRunningPod(client, namespace, CLUSTER, 3);
      const grown = await pollUntil('4 voters', async () => {
        const s = (await get()).status;
        return s?.members?.length === 4 && s.members.every((m) => m.membership === 'voter' && m.healthy) ? s : undefined;
      }, { deadlineMs: 60_000 });
      expect(grown.replicas).to.equal(4);
      // the gateway names the new member by its member Service
      expect(await client.find(resourcePath('v1', 'Service', namespace, names.memberService(c, 3))), 'member Service 3').to.not.equal(null);
      const gatewayConf = async (): Promise<string> =>
        (await client.get<KObject & { data: Record<string, string> }>(resourcePath('v1', 'ConfigMap', namespace, names.gatewayConfigMap(c)))).data['nginx.conf']!;
      expect(await gatewayConf()).to.include(`${names.memberService(c, 3)}.${namespace}.svc`);

      await client.mergePatch(resourcePath(API_VERSION, KIND, namespace, CLUSTER, 'scale'), { spec: { replicas: 3 } });
      const shrunk = await pollUntil('3 members and a 3-pod StatefulSet', async () => {
        const s = (await get()).status;
        const sts = await client.get<KObject & { spec: { replicas: number } }>(resourcePath('apps/v1', 'StatefulSet', namespace, CLUSTER));
        return s?.members?.length === 3 && sts.spec.replicas === 3 ? s : undefined;
      }, { deadlineMs: 60_000 });
      expect(shrunk.members!.map((m) => m.id).sort()).to.deep.equal(['demo-0', 'demo-1', 'demo-2']);
      expect(shrunk.leader).to.not.equal('demo-3');
      await pollUntil('member Service 3 removed and no longer in the gateway config', async () =>
        (await client.find(resourcePath('v1', 'Service', namespace, names.memberService(c, 3)))) === null && !(await gatewayConf()).includes(names.memberService(c, 3)) ? true : undefined);
    });

    it('a member whose volume was replaced is removed from Raft and added again as a learner', async () => {
      const pvcPath = (o: number): string => resourcePath('v1', 'PersistentVolumeClaim', namespace, `data-${CLUSTER}-${o}`);
      const createPvc = (o: number): Promise<KObject> =>
        client.create({
          apiVersion: 'v1', kind: 'PersistentVolumeClaim',
          metadata: { name: `data-${CLUSTER}-${o}`, namespace, labels: { 'app.kubernetes.io/managed-by': 'stego-operator', 'stego.io/cluster': CLUSTER, 'app.kubernetes.io/component': 'node' } },
          spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
        } as never);
      for (const o of [0, 1, 2]) await createPvc(o);
      const recorded = await pollUntil('volumes recorded for the healthy members', async () => {
        const v = (await get()).status?.volumes ?? {};
        return Object.keys(v).length === 3 ? v : undefined;
      });
      const leader = (await get()).status!.leader!;
      const victim = [0, 1, 2].find((o) => `${CLUSTER}-${o}` !== leader)!;
      const id = `${CLUSTER}-${victim}`;
      // the disk is gone: the process dies, its data with it, and the claim is re-created empty
      const n = nodes.get(id)!;
      await killMember(n);
      await import('node:fs/promises').then((fs) => fs.rm(n.dataDir, { recursive: true, force: true }));
      await client.delete(pvcPath(victim));
      // stage 1 has no pvc-protection controller to drop the finalizer
      await client.mergePatch(pvcPath(victim), { metadata: { finalizers: null } }).catch(() => undefined);
      await pollUntil('old claim gone', async () => ((await client.find(pvcPath(victim))) ? undefined : true));
      const fresh = await createPvc(victim);
      expect(fresh.metadata!.uid).to.not.equal(recorded[id]);
      // the pod restarts with an empty data dir and, the bootstrap list being empty, joins
      delete n.env['PEERS'];
      n.env['STEGO_JOIN'] = '1';
      n.spawn();
      const healed = await pollUntil('the member re-added and healthy with its new volume', async () => {
        const s = (await get()).status;
        return s?.volumes?.[id] === fresh.metadata!.uid && s?.members?.length === 3 && s.members.every((m) => m.healthy && m.membership === 'voter') ? s : undefined;
      }, { deadlineMs: 60_000 });
      expect(healed.members!.map((m) => m.id).sort()).to.deep.equal(['demo-0', 'demo-1', 'demo-2']);
      const events = await client.list<KObject & { reason: string; message: string }>(`/api/v1/namespaces/${namespace}/events`);
      const reasons = events.items.filter((e) => e.message.includes(id)).map((e) => e.reason);
      expect(reasons).to.include.members(['MemberRemoved', 'MemberAdded']);
    });

    it('deleting the StegoCluster garbage-collects everything it owns (needs kube-controller-manager)', async function () {
      const cr = await get();
      await client.delete(resourcePath(API_VERSION, KIND, namespace, CLUSTER));
      const gone = await pollUntil('StatefulSet collected', async () => ((await client.find(resourcePath('apps/v1', 'StatefulSet', namespace, CLUSTER))) ? undefined : true), { deadlineMs: 15_000 }).catch(() => false);
      if (!gone) {
        const sts = await client.get<KObject>(resourcePath('apps/v1', 'StatefulSet', namespace, CLUSTER));
        expect(sts.metadata!.ownerReferences![0]!.uid).to.equal(cr.metadata.uid);
        console.log('      garbage collection not checked: no kube-controller-manager (stage 1 runs only the API server); owner references verified instead');
        return this.skip();
      }
      const owned: [string, string, string][] = [
        ['v1', 'Service', names.headlessService(c)], ['v1', 'Service', names.clientService(c)], ['v1', 'Service', names.leaderService(c)],
        ['v1', 'Service', names.memberService(c, 0)],
        ['v1', 'Secret', names.credentialsSecret(c)], ['v1', 'ConfigMap', names.bootstrapConfigMap(c)], ['policy/v1', 'PodDisruptionBudget', names.pdb(c)],
        ['networking.k8s.io/v1', 'NetworkPolicy', names.networkPolicy(c)], ['apps/v1', 'Deployment', names.gateway(c)], ['v1', 'Service', names.gateway(c)],
        ['v1', 'ConfigMap', names.gatewayConfigMap(c)],
      ];
      for (const [apiVersion, kind, name] of owned) {
        await pollUntil(`${kind} ${name} collected`, async () => ((await client.find(resourcePath(apiVersion, kind, namespace, name))) ? undefined : true), { deadlineMs: 15_000 });
      }
    });
  });
});
