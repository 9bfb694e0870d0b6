// The operator dashboard (charts/stego-operator/dashboards/stego-operator.json) over a real run: two replicas
// of the real operator process (leader election on a Lease) on a real kube-apiserver (stage 1 of e2e/local,
// or STEGO_KUBECONFIG), scraped every second by a real Prometheus, driven through what the dashboard is for:
// a five-member StegoCluster created and brought up, a second StegoCluster failing at its credentials step
// (a hand-made Secret without the admin token) until the Secret is fixed, the Raft leader killed and
// restarted, a scale-down 5 → 3, and the leading operator replica stopped (the standby takes the Lease).
// Every panel must return series over the run. With STEGO_RECORD_OPERATOR_DASHBOARD=<file> the panels' range
// results are written there for `npm run dashboards:preview`.
//
// Stage 1 has no kubelet and no StatefulSet controller; the test plays them, as
// operator/test/integration/operator.itest.ts does: member pods are Pod objects whose status it sets, and
// behind each runs a real node process. Here each member has a loopback address of its own (127.0.0.2 to
// 127.0.0.6, its podIP) with the real ports, because the operator process reaches members the way it does in
// Kubernetes: http://<podIP>:8080.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect } from 'chai';
import { HTTP_PORT, names, RAFT_PORT } from '../../operator/src/api/names.js';
import { API_VERSION, KIND, type StegoCluster } from '../../operator/src/api/types.js';
import { resourcePath, type KObject, type KubeClient } from '../../operator/src/k8s/client.js';
import { SECRET_KEY_ADMIN, SECRET_KEY_CLUSTER } from '../../operator/src/resources/secret.js';
import { createNamespace, createRunningPod, deleteNamespace, killMember, memberProcess, tempDir } from '../../operator/test/integration/env.js';
import type { NodeProcess } from '../../node/test/cluster/harness.js';
import { until } from '../../node/test/lb/local-cluster-harness.js';
import { expandVariables, panelQueries } from './dashboards.js';
import { ROOT } from './generate.js';
import { apiServerOrSkip } from './kube.js';
import { notBuilt, OperatorProcess, prometheusBinary, PrometheusServer, type Recording } from './prometheus.js';

const OPERATOR_JS = join(ROOT, 'dist/operator/src/main.js');
const DASHBOARD = 'stego-operator.json';
const CLUSTER = 'images';
const MISCONFIGURED = 'archive';
const MEMBERS = 5;
const SCALED = 3;
const REPLICAS = ['stego-operator-a', 'stego-operator-b'];
/** The member with this ordinal listens on its own loopback address, its podIP. */
const memberIp = (ordinal: number): string => `127.0.0.${2 + ordinal}`;
/** After each phase: several scrapes (1 s apart) before the next, so the dashboard shows each phase apart. */
const HOLD_MS = 8000;
const hold = (): Promise<void> => new Promise((r) => setTimeout(r, HOLD_MS));
/**
 * Work queue depth is sampled at 0 in this run: one StegoCluster event at a time, and the worker takes a key
 * within milliseconds, so a 1 s scrape sees the queue empty. Its panel shows a flat 0, not an absence.
 */
const ZERO_ALLOWED = ['Work queue depth A'];

describe('observability: the operator dashboard over a real run (two operator replicas, a real kube-apiserver, a real Prometheus)', function () {
  this.timeout(600_000);
  let client: KubeClient;
  let namespace = '';
  const c = { namespace: '', name: CLUSTER };
  const replicas: OperatorProcess[] = [];
  let prom: PrometheusServer | undefined;
  const nodes = new Map<number, NodeProcess>();
  const dirs = tempDir('stego-obs-operator-');
  const events: { t: number; label: string }[] = [];
  let startedAt = 0;

  const mark = (label: string): void => {
    events.push({ t: Date.now() / 1000, label });
  };
  const get = (name = CLUSTER): Promise<StegoCluster> => client.get<StegoCluster>(resourcePath(API_VERSION, KIND, namespace, name));
  const leading = async (r: OperatorProcess): Promise<boolean> => /^stego_operator_is_leader 1$/m.test(await r.scrape());

  before(async function () {
    const found = await apiServerOrSkip(this, prometheusBinary('prometheus') ? '' : notBuilt('prometheus'));
    client = found.client;
    namespace = await createNamespace(client, 'stego-obs-dash');
    c.namespace = namespace;
    // the first replica takes the Lease; the second waits as a standby
    for (const identity of REPLICAS) {
      const r = new OperatorProcess({ kubeconfig: found.source, watchNamespace: namespace, leaderElection: true, identity });
      replicas.push(r);
      await r.start(OPERATOR_JS);
      if (replicas.length === 1) await until(`${identity} to take the Lease`, () => leading(r), 30_000, 200);
    }
    prom = new PrometheusServer({
      targets: replicas.map((r, i) => ({ address: new URL(r.url).host, labels: { namespace: 'stego-system', pod: REPLICAS[i]!, instance: REPLICAS[i]! } })),
    });
    await prom.start();
    await until('Prometheus to scrape both replicas', async () => [...(await prom!.targets()).values()].filter((h) => h === 'up').length === 2, 30_000, 250);
    startedAt = Date.now() / 1000;
  });

  after(async () => {
    await prom?.stop();
    for (const r of replicas) await r.stop();
    await Promise.all([...nodes.values()].map((n) => killMember(n)));
    if (client && namespace) await deleteNamespace(client, namespace).catch(() => undefined);
    dirs.remove();
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const [i, r] of replicas.entries()) console.log(`--- ${REPLICAS[i]}\n${r.output.slice(-30).join('\n')}`);
  });

  it(`brings up a ${MEMBERS}-member StegoCluster and reports its leader`, async () => {
    mark(`StegoCluster ${CLUSTER} created (${MEMBERS} members)`);
    await client.create({ apiVersion: API_VERSION, kind: KIND, metadata: { name: CLUSTER, namespace }, spec: { replicas: MEMBERS } } as KObject);
    const secret = await until('the credentials Secret', () => client.find<KObject & { data?: Record<string, string> }>(resourcePath('v1', 'Secret', namespace, names.credentialsSecret(c))), 30_000, 100);
    const value = (key: string): string => Buffer.from(secret.data![key]!, 'base64').toString('utf8');
    const ordinals = [...Array(MEMBERS).keys()];
    const peers = ordinals.map((o) => `${names.pod(c, o)}=${memberIp(o)}:${RAFT_PORT}`).join(',');
    for (const o of ordinals) {
      const n = memberProcess(names.pod(c, o), HTTP_PORT, RAFT_PORT, join(dirs.path, names.pod(c, o)), {
        HTTP_HOST: memberIp(o), RAFT_HOST: memberIp(o), PEERS: peers,
        STEGO_CLUSTER_SECRET: value(SECRET_KEY_CLUSTER), STEGO_ADMIN_TOKEN: value(SECRET_KEY_ADMIN),
        // elections only when a node really dies, even on a machine shared with builds
        STEGO_HEARTBEAT_MS: '100', STEGO_ELECTION_MS: '1000',
      });
      nodes.set(o, n);
      n.spawn();
    }
    // what the StatefulSet controller and the kubelet would do: the pods, running, each with its address
    for (const o of ordinals) {
      await createRunningPod(client, namespace, CLUSTER, o);
      await client.mergePatch(resourcePath('v1', 'Pod', namespace, names.pod(c, o), 'status'), { status: { podIP: memberIp(o), podIPs: [{ ip: memberIp(o) }] } });
    }
    const status = await until('Available with a leader and every member ready', async () => {
      const s = (await get()).status;
      return s?.leader && s.readyReplicas === MEMBERS && s.conditions?.find((x) => x.type === 'Available')?.status === 'True' ? s : null;
    }, 90_000, 250);
    mark(`${MEMBERS} members ready, leader ${status.leader}`);
    await hold();
  });

  it('counts the errors of a StegoCluster whose credentials Secret lacks the admin token, until it is fixed', async () => {
    const misconfigured = { namespace, name: MISCONFIGURED };
    const secretPath = resourcePath('v1', 'Secret', namespace, names.credentialsSecret(misconfigured));
    // a Secret made by hand under the name the operator uses, without the admin token
    await client.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: names.credentialsSecret(misconfigured), namespace }, stringData: { [SECRET_KEY_CLUSTER]: 'made-by-hand' } } as KObject);
    mark(`StegoCluster ${MISCONFIGURED} created with a hand-made Secret`);
    await client.create({ apiVersion: API_VERSION, kind: KIND, metadata: { name: MISCONFIGURED, namespace }, spec: { replicas: 1 } } as KObject);
    const errors = new RegExp(`^stego_operator_reconcile_errors_total\\{stegocluster_namespace="${namespace}",stegocluster="${MISCONFIGURED}",reason="credentials"\\} ([0-9]+)`, 'm');
    await until('reconcile errors at the credentials step', async () => Number(errors.exec(await replicas[0]!.scrape())?.[1] ?? 0) >= 4, 60_000, 250);
    // the fix: the hand-made Secret goes, and an edit of the resource has it reconciled at once rather than
    // after its back-off
    await client.delete(secretPath);
    await client.mergePatch(resourcePath(API_VERSION, KIND, namespace, MISCONFIGURED), { spec: { logLevel: 'debug' } });
    mark('Secret deleted: the operator makes its own');
    const secret = await until('the operator to make its own Secret', () => client.find<KObject & { data?: Record<string, string> }>(secretPath), 30_000, 250);
    expect(Object.keys(secret.data ?? {})).to.include(SECRET_KEY_ADMIN);
    const passed = new RegExp(`^stego_operator_reconciles_total\\{stegocluster_namespace="${namespace}",stegocluster="${MISCONFIGURED}",result="progressing"\\} [1-9]`, 'm');
    await until(`${MISCONFIGURED} to reconcile past its credentials`, async () => passed.test(await replicas[0]!.scrape()), 30_000, 250);
    await hold();
  });

  it('follows the Raft leader when it is killed, and the member back', async () => {
    const before = (await get()).status!;
    const ordinal = Number(before.leader!.slice(CLUSTER.length + 1));
    mark(`Raft leader ${before.leader} killed`);
    await killMember(nodes.get(ordinal)!);
    const after = await until('a new leader in status', async () => {
      const s = (await get()).status;
      return s?.leader && s.leader !== before.leader ? s : null;
    }, 30_000, 100);
    expect(after.term).to.be.greaterThan(before.term!);
    mark(`new leader ${after.leader} observed`);
    nodes.get(ordinal)!.spawn();
    await until(`${before.leader} back as a healthy member`, async () => {
      const s = (await get()).status;
      return s?.members?.length === MEMBERS && s.members.every((m) => m.healthy) && s.readyReplicas === MEMBERS ? true : null;
    }, 60_000, 250);
    mark(`${before.leader} back`);
    await hold();
  });

  it(`scales ${MEMBERS} → ${SCALED}: members leave Raft first, then the StatefulSet shrinks`, async () => {
    mark(`scaled to ${SCALED}`);
    await client.mergePatch(resourcePath(API_VERSION, KIND, namespace, CLUSTER, 'scale'), { spec: { replicas: SCALED } });
    await until(`the StatefulSet scaled to ${SCALED}`, async () => {
      const sts = await client.get<KObject & { spec: { replicas: number } }>(resourcePath('apps/v1', 'StatefulSet', namespace, CLUSTER));
      return sts.spec.replicas === SCALED ? true : null;
    }, 90_000, 250);
    // the StatefulSet controller's part: the pods beyond the size go
    for (let o = SCALED; o < MEMBERS; o++) {
      await killMember(nodes.get(o)!);
      await client.delete(resourcePath('v1', 'Pod', namespace, names.pod(c, o)));
    }
    const s = await until(`${SCALED} healthy members`, async () => {
      const st = (await get()).status;
      return st?.members?.length === SCALED && st.members.every((m) => m.healthy) && st.readyReplicas === SCALED && st.phase === 'Healthy' ? st : null;
    }, 60_000, 250);
    expect(s.members!.map((m) => m.id).sort()).to.deep.equal([...Array(SCALED).keys()].map((o) => names.pod(c, o)));
    mark(`${SCALED} members, healthy`);
    await hold();
  });

  it('the standby replica takes the Lease when the leading one stops', async () => {
    const [first, standby] = replicas as [OperatorProcess, OperatorProcess];
    mark(`${REPLICAS[0]} stopped`);
    await first.terminate();
    await until(`${REPLICAS[1]} to lead`, () => leading(standby), 30_000, 200);
    mark(`${REPLICAS[1]} leads`);
    // the stopped replica comes back, now the standby
    await first.start(OPERATOR_JS);
    await until(`${REPLICAS[1]} to reconcile ${CLUSTER}`, async () => (await standby.scrape()).includes(`stegocluster="${CLUSTER}",result="converged"`), 30_000, 250);
    await hold();
  });

  it('every panel of the operator dashboard shows something over the run (series with a non-zero value)', async function () {
    this.timeout(660_000);
    const queries = panelQueries().filter((p) => p.dashboard === DASHBOARD);
    const vars = { namespace, cluster: CLUSTER, rateInterval: '4s' };
    let recording: Recording | undefined;
    // watch restarts come when a watch goes quiet or the API server ends it; the first restart of a kind
    // creates its series at 1, which rate() cannot show, so the run waits (bounded) for a second one
    const empty = await until('every panel to have series', async () => {
      const end = Date.now() / 1000;
      recording = { start: startedAt, end, step: 1, events, panels: [] };
      const missing: string[] = [];
      for (const p of queries) {
        const result = await prom!.queryRange(expandVariables(p.expr, vars), startedAt, end, 1);
        recording.panels.push({ ...p, result });
        const shown = ZERO_ALLOWED.includes(`${p.panel} ${p.refId}`) ? result.length > 0 : result.some((r) => (r.values ?? []).some(([, v]) => Number(v) !== 0));
        if (!shown) missing.push(`${p.panel} ${p.refId}`);
      }
      return missing.length === 0 ? [] : Date.now() / 1000 - startedAt > 600 ? missing : null;
    }, 620_000, 5000);
    const file = process.env.STEGO_RECORD_OPERATOR_DASHBOARD;
    if (file && recording) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, `${JSON.stringify(recording)}\n`);
      console.log(`      recorded panel results to ${file}`);
    }
    expect(empty, 'panels without a non-zero value').to.deep.equal([]);
  });
});
