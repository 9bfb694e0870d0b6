// The StegoCluster e2e suite: the operator chart and an example cluster on a real Kubernetes (the current
// kubeconfig context: kind, or the local Kubernetes of e2e/local/), exercised the way a user would, through
// kubectl, helm and the front door. Steps build on each other, so the suite stops at the first failure.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { pollUntil } from '../../node/test/cluster/harness.js';
import {
  API_TOKENS_KEY,
  apiTokensFile,
  apiTokensSecretName,
  CHART_DIR,
  clusterView,
  examplePath,
  helmExtraArgs,
  INVALID_SPECS,
  isLeaderService,
  KIND,
  LEADER_ROLE,
  ownedBy,
  PLURAL,
  PRINTER_COLUMNS,
  RELEASE,
  RESOURCE,
  ROLE_LABEL,
  SHORT_NAME,
  type ClusterView,
  withApiTokens,
} from '../support/contract.js';
import { describeError, FrontDoor, frontDoorUrl, samplePng, SteadyWriter, type WriteOutcome } from '../support/front-door.js';
import { condition, helm, kubectl, kubectlJson, kubectlResult, parseTable, tryApply, type KubeList, type KubeObject } from '../support/kube.js';
import { repoRoot } from '../support/local-kubernetes.js';
import { podHardeningProblems } from '../../operator/test/hardening-policy.js';
import { outsiderPod, reachFromBusybox, reachFromNode, type Reach } from '../support/reachability.js';
import type { V1PodSpec } from '@kubernetes/client-node';

const root = repoRoot();
const ns = process.env.STEGO_E2E_NAMESPACE ?? `stego-e2e-${randomBytes(3).toString('hex')}`;
/** How long a member has to come back or a rollout to settle; kind on a laptop and CI on 2 cores both fit. */
const SETTLE_MS = Number(process.env.STEGO_E2E_SETTLE_MS ?? 300_000);

interface MemberPod extends KubeObject {
  spec: { nodeName?: string; containers: { name: string; ports?: { name?: string; containerPort: number }[] }[] };
  status: KubeObject['status'] & { podIP?: string; phase?: string; conditions?: { type: string; status: string }[] };
}

describe('StegoCluster on Kubernetes (e2e)', function () {
  this.bail(true);
  this.timeout(SETTLE_MS + 60_000);

  let name = '';
  let uid = '';
  let example: KubeObject;
  let door: FrontDoor;
  /** Objects acknowledged (201) anywhere in the suite, read back after every disruption. */
  const acknowledged: { id: string; sha256: string }[] = [];

  async function cluster(): Promise<KubeObject> {
    return kubectlJson(['-n', ns, 'get', `${PLURAL}/${name}`]);
  }

  async function view(): Promise<ClusterView> {
    return clusterView(await cluster());
  }

  async function memberPods(): Promise<MemberPod[]> {
    const pods = await kubectlJson<KubeList<MemberPod>>(['-n', ns, 'get', 'pods']);
    return pods.items.filter((p) => ownedByCluster(p));
  }

  /** Member pods are owned by the cluster's StatefulSet, which the StegoCluster owns. */
  let statefulSetUids = new Set<string>();
  function ownedByCluster(p: KubeObject): boolean {
    return (p.metadata.ownerReferences ?? []).some((r) => statefulSetUids.has(r.uid) || r.uid === uid);
  }

  async function refreshStatefulSets(): Promise<void> {
    const sets = await kubectlJson<KubeList>(['-n', ns, 'get', 'statefulsets']);
    statefulSetUids = new Set(sets.items.filter((s) => ownedBy(s, uid)).map((s) => s.metadata.uid!));
    expect(statefulSetUids.size, 'StatefulSets owned by the StegoCluster').to.be.greaterThan(0);
  }

  async function waitAvailable(replicas: number): Promise<ClusterView> {
    return pollUntil(
      `${name} Available with ${replicas} ready members`,
      async () => {
        const obj = await cluster();
        const v = clusterView(obj);
        const available = condition(obj, 'Available');
        if (available?.status !== 'True') return undefined;
        if (available.observedGeneration !== undefined && available.observedGeneration !== obj.metadata.generation) return undefined;
        return v.readyReplicas === replicas && v.leader ? v : undefined;
      },
      { deadlineMs: SETTLE_MS, intervalMs: 500 },
    );
  }

  async function clusterStatus(): Promise<{ term: number; leader_id: string | null; nodes: unknown[] }> {
    const a = await door.get('/cluster/status');
    if (a.status !== 200) throw new Error(`/cluster/status answered ${a.status}: ${a.body.toString('utf8')}`);
    return JSON.parse(a.body.toString('utf8')) as { term: number; leader_id: string | null; nodes: unknown[] };
  }

  /**
   * Every acknowledged object reads back with its digest. A member that has just come back (a replaced pod)
   * may still be catching up when the StegoCluster turns Available, so a read the gateway answers 502/503/504
   * is asked again for up to 30 s (counted and printed); any other answer, or a gateway error past that, fails.
   */
  async function expectAllReadable(): Promise<void> {
    let retried = 0;
    for (const o of acknowledged) {
      const a = await pollUntil(`object ${o.id} through the front door`, async () => {
        const r = await door.getObject(o.id);
        if (r.status === 502 || r.status === 503 || r.status === 504) {
          retried++;
          throw new Error(`answered ${r.status}`);
        }
        return r;
      }, { deadlineMs: 30_000, intervalMs: 500 });
      expect(a.status, `object ${o.id}`).to.equal(200);
      expect(a.headers.get('x-stego-sha256'), `object ${o.id} digest`).to.equal(o.sha256);
    }
    if (retried > 0) console.log(`      ${acknowledged.length} objects read back; ${retried} reads answered 502/503/504 were asked again`);
  }

  function record(outcomes: WriteOutcome[]): void {
    for (const o of outcomes) if (o.status === 201) acknowledged.push({ id: o.id!, sha256: o.sha256! });
  }

  /** The gateway's nginx pods and their restart counts, to show a leader change leaves them alone. */
  async function gatewayPods(): Promise<string[]> {
    const pods = await kubectlJson<KubeList<MemberPod & { status: { containerStatuses?: { restartCount: number }[] } }>>([
      '-n', ns, 'get', 'pods', '-l', `stego.io/cluster=${name},app.kubernetes.io/component=gateway`,
    ]);
    return pods.items
      .map((p) => `${p.metadata.name} restarts=${(p.status.containerStatuses ?? []).reduce((n, c) => n + c.restartCount, 0)}`)
      .sort();
  }

  /**
   * `kubectl get stegoclusters` as a user sees it (printed), checked column by column against the object
   * read right after it; an election between the two reads is retried, never glossed over.
   */
  async function expectPrintedColumns(): Promise<Record<string, string>> {
    return pollUntil(
      'kubectl get stegoclusters agreeing with the status',
      async () => {
        const table = await kubectl(['-n', ns, 'get', PLURAL]);
        const obj = await cluster();
        const v = clusterView(obj);
        const header = table.split('\n')[0]!.trim().split(/\s+/);
        expect(header, 'kubectl get stegoclusters columns').to.deep.equal([...PRINTER_COLUMNS]);
        const row = parseTable(table).find((r) => r['NAME'] === name);
        expect(row, `a row for ${name} in:\n${table}`).to.not.equal(undefined);
        const want = { REPLICAS: String(obj.spec?.replicas), READY: String(v.readyReplicas ?? ''), LEADER: v.leader ?? '', TERM: String(v.term ?? '') };
        if (Object.entries(want).some(([k, x]) => row![k] !== x)) throw new Error(`printed ${JSON.stringify(row)}, status ${JSON.stringify(want)}`);
        expect(row!['AGE'], 'AGE column').to.match(/^\d+(s|m|h|d)/);
        console.log(`      $ kubectl get ${PLURAL}\n${table.trimEnd().replace(/^/gm, '      ')}`);
        return row!;
      },
      { deadlineMs: 15_000, intervalMs: 500 },
    );
  }

  before(async function () {
    this.timeout(SETTLE_MS);
    // The project's runtime. An older one is a wrong setup, not a failing cluster: Node 20's fetch refuses
    // request bodies over resizable ArrayBuffers (the PNG encoder's output) before sending anything.
    const major = Number(process.versions.node.split('.')[0]);
    if (major < 24) throw new Error(`the e2e suite needs Node 24 or newer (this is ${process.version}): put Node 24 first on PATH`);
    await kubectl(['create', 'namespace', ns]);
  });

  let failed = false;
  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async function () {
    this.timeout(SETTLE_MS);
    if (failed || process.env.STEGO_E2E_DUMP) await dump();
    if (!process.env.STEGO_E2E_KEEP) {
      await helm(['uninstall', RELEASE, '-n', ns, '--wait'], { allowFailure: true });
      await kubectlResult(['delete', 'namespace', ns, '--wait=true', '--timeout=180s'], { timeoutMs: 200_000 });
    }
  });

  async function dump(): Promise<void> {
    for (const args of [
      ['-n', ns, 'get', 'all,pdb,pvc,events', '-o', 'wide'],
      ['-n', ns, 'get', PLURAL, '-o', 'yaml'],
      ['-n', ns, 'logs', '-l', 'app.kubernetes.io/name=stego-operator', '--tail=200', '--all-containers'],
      ['-n', ns, 'logs', '-l', 'app.kubernetes.io/managed-by=stego-operator', '--tail=40', '--all-containers', '--prefix'],
      ['-n', ns, 'logs', '-l', 'app.kubernetes.io/managed-by=stego-operator', '--tail=40', '--all-containers', '--prefix', '--previous'],
    ]) {
      const r = await kubectlResult(args);
      console.log(`\n== kubectl ${args.join(' ')}\n${r.stdout}${r.stderr}`);
    }
  }

  it('installs the operator chart; the CRD is served with its short name', async function () {
    await helm(['install', RELEASE, join(root, CHART_DIR), '-n', ns, '--wait', '--timeout', '5m', ...helmExtraArgs()]);
    const crd = await kubectlJson<KubeObject>(['get', 'crd', RESOURCE]);
    const names = (crd.spec as { names: { kind: string; shortNames?: string[] } }).names;
    expect(names.kind).to.equal(KIND);
    expect(names.shortNames).to.include(SHORT_NAME);
    const deployments = await kubectlJson<KubeList>(['-n', ns, 'get', 'deployments', '-l', `app.kubernetes.io/instance=${RELEASE}`]);
    expect(deployments.items.length, 'operator Deployment').to.be.greaterThan(0);
    for (const d of deployments.items) expect(condition(d, 'Available')?.status, d.metadata.name).to.equal('True');
  });

  it('applies the example StegoCluster with 3 replicas; it becomes Available with a leader', async function () {
    // The example with the suite's API token Secret: the node answers 401 on /api/objects without a token.
    const docs = parseAllDocuments(readFileSync(examplePath(root), 'utf8'))
      .map((d) => d.toJS() as KubeObject | null)
      .filter((d): d is KubeObject => d !== null);
    const manifest = docs.find((d) => d.kind === KIND);
    expect(manifest, `a ${KIND} in ${examplePath(root)}`).to.not.equal(undefined);
    const secretName = apiTokensSecretName(manifest!.metadata.name);
    const token = randomBytes(24).toString('hex');
    process.env.STEGO_E2E_TOKEN = token;
    await kubectl(['-n', ns, 'apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: secretName },
        type: 'Opaque',
        stringData: { [API_TOKENS_KEY]: apiTokensFile(token) },
      }),
    });
    const list = { apiVersion: 'v1', kind: 'List', items: docs.map((d) => (d.kind === KIND ? withApiTokens(d, secretName) : d)) };
    const applied = JSON.parse(
      await kubectl(['-n', ns, 'apply', '-f', '-', '-o', 'json'], { input: JSON.stringify(list) }),
    ) as KubeObject | KubeList;
    const items = 'items' in applied ? applied.items : [applied];
    example = items.find((o) => o.kind === KIND)!;
    expect(example, `a ${KIND} in ${examplePath(root)}`).to.not.equal(undefined);
    name = example.metadata.name;
    uid = example.metadata.uid!;
    if (example.spec?.replicas !== 3) {
      await kubectl(['-n', ns, 'patch', `${PLURAL}/${name}`, '--type', 'merge', '-p', '{"spec":{"replicas":3}}']);
    }
    await kubectl(['-n', ns, 'wait', '--for=condition=Available', `${PLURAL}/${name}`, `--timeout=${Math.round(SETTLE_MS / 1000)}s`], {
      timeoutMs: SETTLE_MS + 10_000,
    });
    const v = await waitAvailable(3);
    // Degraded may stay True for a moment after Available (the gateway's nginx pods still starting).
    const obj = await pollUntil(
      `${name} not Degraded`,
      async () => {
        const o = await cluster();
        return (condition(o, 'Degraded')?.status ?? 'False') === 'False' ? o : undefined;
      },
      { deadlineMs: SETTLE_MS, intervalMs: 500 },
    );
    expect(v.replicas).to.equal(3);
    expect(condition(obj, 'LeaderElected')?.status).to.equal('True');
    expect(condition(obj, 'QuorumLost')?.status ?? 'False').to.equal('False');
    expect(condition(obj, 'Degraded')?.status ?? 'False').to.equal('False');
    await refreshStatefulSets();

    const row = await expectPrintedColumns();
    expect(row).to.include({ REPLICAS: '3', READY: '3', LEADER: v.leader! });
    expect(Number(row['TERM'])).to.be.at.least(1);
  });

  it('embeds and extracts through the front door', async function () {
    // The gateway's config depends only on the member count, so its pods do not roll once started; wait for
    // them to be available.
    await kubectl(['-n', ns, 'rollout', 'status', `deployment/${name}-gateway`, `--timeout=${Math.round(SETTLE_MS / 1000)}s`], {
      timeoutMs: SETTLE_MS + 10_000,
    });
    door = new FrontDoor(await frontDoorUrl(ns, name));
    const cover = await samplePng(1);
    const embedded = await pollUntil(
      'an embed through the front door',
      async () => {
        const a = await door.embed(cover, 'hello from the e2e suite').catch(() => undefined);
        return a?.status === 200 ? a : undefined;
      },
      { deadlineMs: 60_000, intervalMs: 500 },
    );
    expect(embedded.headers.get('content-type')).to.match(/image\/png/);
    // Retry on a connection error (never on an HTTP answer): kind maps the NodePort through Docker, which may
    // lag the Service's first endpoints.
    const retry = <T>(what: string, f: () => Promise<T>): Promise<T> =>
      pollUntil(
        what,
        // a connection error is retried and reported with its cause if it persists; any HTTP answer ends the poll
        () => f().catch((err: unknown) => { throw new Error(describeError(err)); }),
        { deadlineMs: 60_000, intervalMs: 500 },
      );
    const extracted = await retry('an extract through the front door', () => door.extract(embedded.body));
    expect(extracted.status).to.equal(200);
    expect(JSON.parse(extracted.body.toString('utf8'))).to.deep.equal({ message: 'hello from the e2e suite' });

    const status = await retry('/cluster/status through the front door', () => clusterStatus());
    expect(status.nodes).to.have.length(3);
  });

  it('runs hardened: every pod passes the hardening policy; inside a member, no root, no capabilities, seccomp, read-only root', async function () {
    // The policy the operator's unit tests apply to the builders and the chart, applied here to the pods the API
    // server really admitted (members, gateway, operator), then checked from inside a running member: what the
    // kernel enforces, not only what the spec asks for.
    const pods = (await kubectlJson<KubeList<KubeObject & { spec: V1PodSpec }>>(['-n', ns, 'get', 'pods'])).items;
    const checked = pods.filter((p) => p.metadata.labels?.['app.kubernetes.io/name'] === 'stego-operator' || ownedByCluster(p)
      || p.metadata.labels?.['app.kubernetes.io/component'] === 'gateway');
    expect(checked.length, 'members, gateway and operator pods').to.be.at.least(3 + 1 + 1);
    for (const p of checked) {
      const apiClient = p.metadata.labels?.['app.kubernetes.io/name'] === 'stego-operator';
      expect(podHardeningProblems(p.spec, apiClient), `pod ${p.metadata.name}`).to.deep.equal([]);
    }
    const probe = [
      "const fs = require('fs');",
      "const st = fs.readFileSync('/proc/self/status', 'utf8');",
      "const field = (k) => { const line = st.split('\\n').find((l) => l.startsWith(k + ':')); return line === undefined ? undefined : line.slice(k.length + 1).trim(); };",
      "let root; try { fs.writeFileSync('/hardening-probe', 'x'); root = 'writable'; } catch (e) { root = e.code; }",
      "console.log(JSON.stringify({ uid: process.getuid(), capEff: field('CapEff'), seccomp: field('Seccomp'), noNewPrivs: field('NoNewPrivs'), root }));",
    ].join(' ');
    const member = (await memberPods())[0]!;
    const seen = JSON.parse(await kubectl(['-n', ns, 'exec', member.metadata.name, '-c', 'node', '--', 'node', '-e', probe])) as Record<string, unknown>;
    expect(seen, `inside ${member.metadata.name}`).to.deep.equal({ uid: seen['uid'], capEff: '0000000000000000', seccomp: '2', noNewPrivs: '1', root: 'EROFS' });
    expect(seen['uid'], 'the node process uid').to.not.equal(0);
    const policies = (await kubectlJson<KubeList>(['-n', ns, 'get', 'networkpolicies'])).items.filter((np) => ownedBy(np, uid));
    expect(policies.length, 'a NetworkPolicy owned by the StegoCluster').to.be.at.least(1);
  });

  /** A member's named container port (`http`, `raft`). */
  function portOf(p: MemberPod, portName: string): number {
    const port = p.spec.containers.flatMap((c) => c.ports ?? []).find((x) => x.name === portName)?.containerPort;
    if (port === undefined) throw new Error(`${p.metadata.name} names no ${portName} port`);
    return port;
  }

  /**
   * Probes until the outcome is the one wanted twice in a row (a policy change takes effect a moment after the
   * API shows it; a single lucky probe is not a result).
   */
  async function expectReach(what: string, want: Reach, probe: () => Promise<Reach>, deadlineMs = 60_000): Promise<void> {
    const seen: Reach[] = [];
    await pollUntil(
      `${what}: ${want}`,
      async () => {
        seen.push(await probe());
        return seen.length >= 2 && seen.slice(-2).every((r) => r === want) ? true : undefined;
      },
      { deadlineMs, intervalMs: 250 },
    ).catch((err: unknown) => {
      throw new Error(`${what}: wanted ${want} twice in a row, probes saw ${seen.join(', ') || 'nothing'} (${describeError(err)})`);
    });
  }

  // The NetworkPolicy as the network enforces it (kindnet on kind; kube-network-policies on the local
  // Kubernetes), seen from real pods: a pod that is none of ours reaches neither port of a member, a member
  // reaches another member's Raft port, the operator reaches HTTP but not Raft. The controls show the probe
  // can pass: the same outsider reaches a pod no policy selects, and reaches the members once the policy is
  // switched off; switched back on, it is blocked again.
  it('enforces the NetworkPolicy: Raft only between members, HTTP only from members, the front door and the operator', async function () {
    const outsider = 'netpol-outsider';
    await kubectl(['-n', ns, 'apply', '-f', '-'], { input: JSON.stringify(outsiderPod(outsider)) });
    try {
      await kubectl(['-n', ns, 'wait', '--for=condition=Ready', `pod/${outsider}`, '--timeout=180s'], { timeoutMs: 200_000 });
      const members = (await memberPods()).filter((p) => p.status.podIP && !p.metadata.deletionTimestamp);
      expect(members.length, 'members with an address').to.be.at.least(2);
      const [a, b] = [members[0]!, members[1]!];
      const raft = portOf(b, 'raft');
      const http = portOf(b, 'http');
      const gateway = (await kubectlJson<KubeList<MemberPod>>([
        '-n', ns, 'get', 'pods', '-l', `stego.io/cluster=${name},app.kubernetes.io/component=gateway`,
      ])).items.find((p) => p.status.podIP && p.status.phase === 'Running');
      expect(gateway, 'a running gateway pod').to.not.equal(undefined);
      const operator = (await kubectlJson<KubeList<MemberPod>>(['-n', ns, 'get', 'pods', '-l', `app.kubernetes.io/instance=${RELEASE}`])).items.find(
        (p) => p.metadata.labels?.['app.kubernetes.io/name'] === 'stego-operator' && p.status.phase === 'Running',
      );
      expect(operator, 'a running operator pod').to.not.equal(undefined);
      const fromOutsider = (host: string, port: number) => () => reachFromBusybox(ns, outsider, host, port);
      const fromPod = (p: MemberPod, container: string, host: string, port: number) => () =>
        reachFromNode(ns, p.metadata.name, container, host, port);
      const target = (port: number) => `${b.metadata.name} ${b.status.podIP}:${port}`;

      // Control: the outsider's probe opens a connection to a pod no policy selects (the gateway's nginx).
      await expectReach(`outsider -> gateway ${gateway!.status.podIP}:${portOf(gateway!, 'http')}`, 'open', fromOutsider(gateway!.status.podIP!, portOf(gateway!, 'http')));
      // Enforced: neither member port answers the outsider; both answer a member; the operator gets HTTP only.
      await expectReach(`outsider -> ${target(raft)} (raft)`, 'blocked', fromOutsider(b.status.podIP!, raft));
      await expectReach(`outsider -> ${target(http)} (http)`, 'blocked', fromOutsider(b.status.podIP!, http));
      await expectReach(`${a.metadata.name} -> ${target(raft)} (raft)`, 'open', fromPod(a, 'node', b.status.podIP!, raft));
      await expectReach(`${a.metadata.name} -> ${target(http)} (http)`, 'open', fromPod(a, 'node', b.status.podIP!, http));
      await expectReach(`operator -> ${target(http)} (http)`, 'open', fromPod(operator!, 'operator', b.status.podIP!, http));
      await expectReach(`operator -> ${target(raft)} (raft)`, 'blocked', fromPod(operator!, 'operator', b.status.podIP!, raft));
      console.log('      outsider: raft blocked, http blocked, gateway open; member: raft open, http open; operator: http open, raft blocked');

      // Control: without the policy the same outsider probe reaches both ports; with it back, it is blocked.
      const policies = async () => (await kubectlJson<KubeList>(['-n', ns, 'get', 'networkpolicies'])).items.filter((np) => ownedBy(np, uid));
      await kubectl(['-n', ns, 'patch', `${PLURAL}/${name}`, '--type', 'merge', '-p', '{"spec":{"networkPolicy":{"enabled":false}}}']);
      await pollUntil('the NetworkPolicy removed', async () => ((await policies()).length === 0 ? true : undefined), { deadlineMs: 60_000, intervalMs: 250 });
      await expectReach(`without the policy: outsider -> ${target(raft)} (raft)`, 'open', fromOutsider(b.status.podIP!, raft));
      await expectReach(`without the policy: outsider -> ${target(http)} (http)`, 'open', fromOutsider(b.status.podIP!, http));
      await kubectl(['-n', ns, 'patch', `${PLURAL}/${name}`, '--type', 'merge', '-p', '{"spec":{"networkPolicy":{"enabled":true}}}']);
      await pollUntil('the NetworkPolicy restored', async () => ((await policies()).length > 0 ? true : undefined), { deadlineMs: 60_000, intervalMs: 250 });
      await expectReach(`policy restored: outsider -> ${target(raft)} (raft)`, 'blocked', fromOutsider(b.status.podIP!, raft));
      await expectReach(`policy restored: outsider -> ${target(http)} (http)`, 'blocked', fromOutsider(b.status.podIP!, http));
      console.log('      control: without the policy the outsider reached raft and http; restored, both blocked again');
      await waitAvailable(3);
    } finally {
      await kubectlResult(['-n', ns, 'delete', 'pod', outsider, '--wait=false']);
    }
  });

  it('stores and reads objects through the front door with an API token', async function () {
    const retry = <T>(what: string, f: () => Promise<T>): Promise<T> =>
      pollUntil(
        what,
        // a connection error is retried and reported with its cause if it persists; any HTTP answer ends the poll
        () => f().catch((err: unknown) => { throw new Error(describeError(err)); }),
        { deadlineMs: 60_000, intervalMs: 500 },
      );
    for (let i = 0; i < 5; i++) {
      const png = await samplePng(100 + i);
      const put = await retry('a stored object', () => door.putObject(png));
      expect(put.status, put.body.toString('utf8')).to.equal(201);
      const meta = JSON.parse(put.body.toString('utf8')) as { id: string; sha256: string };
      acknowledged.push(meta);
      const got = await retry('a read object', () => door.getObject(meta.id));
      expect(got.status).to.equal(200);
      expect(Buffer.compare(got.body, png)).to.equal(0);
    }
  });

  // The gateway never reloads here: its upstreams are the leader Service and the member Services, none of
  // which changes address when a pod is replaced. Writes that reach the dying leader fail over inside nginx
  // (next upstream: a follower, which forwards to the new leader); only a 503 with Retry-After is retried by
  // the writer, as a client is told to.
  it('deleting the leader pod: a new leader with a higher term, labels and leader Service follow, a writer sees no failure', async function () {
    const before = await view();
    const gatewayBefore = await gatewayPods();
    const images = await Promise.all([1, 2, 3, 4].map((s) => samplePng(200 + s)));
    const writer = new SteadyWriter(door, images);
    writer.start();
    try {
      await pollUntil('writes flowing before the failover', async () => (writer.outcomes.length >= 5 ? true : undefined), {
        deadlineMs: 60_000,
      });
      const deletedAt = Date.now();
      await kubectl(['-n', ns, 'delete', 'pod', before.leader!, '--wait=false']);
      const after = await pollUntil(
        'a new leader with a higher term in the status',
        async () => {
          const v = await view();
          return v.leader && v.leader !== before.leader && (v.term ?? 0) > (before.term ?? 0) ? v : undefined;
        },
        { deadlineMs: 30_000, intervalMs: 200 },
      );
      const failoverMs = Date.now() - deletedAt;
      console.log(`      new leader ${after.leader} (term ${before.term} -> ${after.term}) in the status after ${failoverMs} ms`);

      await pollUntil(
        'exactly the new leader labelled leader',
        async () => {
          const leaders = (await memberPods()).filter((p) => p.metadata.labels?.[ROLE_LABEL] === LEADER_ROLE);
          return leaders.length === 1 && leaders[0]!.metadata.name === after.leader ? true : undefined;
        },
        { deadlineMs: 30_000, intervalMs: 250 },
      );
      await pollUntil(
        'the leader Service pointing at the new leader',
        async () => {
          const services = (await kubectlJson<KubeList>(['-n', ns, 'get', 'services'])).items.filter(isLeaderService);
          if (services.length === 0) throw new Error('no Service selects the leader label');
          const pod = (await memberPods()).find((p) => p.metadata.name === after.leader);
          const slices = await kubectlJson<KubeList<KubeObject & { endpoints?: { addresses: string[]; conditions?: { ready?: boolean } }[] }>>([
            '-n', ns, 'get', 'endpointslices', '-l', `kubernetes.io/service-name=${services[0]!.metadata.name}`,
          ]);
          const ready = slices.items.flatMap((s) => (s.endpoints ?? []).filter((e) => e.conditions?.ready !== false).flatMap((e) => e.addresses));
          return pod?.status.podIP && ready.length === 1 && ready[0] === pod.status.podIP ? true : undefined;
        },
        { deadlineMs: 30_000, intervalMs: 250 },
      );
      await waitAvailable(3);
      const row = await expectPrintedColumns();
      expect(row['LEADER'], 'LEADER column after the failover').to.equal(after.leader);
      expect(Number(row['TERM']), 'TERM column after the failover').to.be.at.least(after.term!);
      // Keep writing a little after recovery so the writer spans the whole disruption.
      const n = writer.outcomes.length;
      await pollUntil('writes after recovery', async () => (writer.outcomes.length >= n + 5 ? true : undefined), { deadlineMs: 60_000 });
    } finally {
      record(await writer.stop());
    }
    expect(writer.failures(), 'failed writes through the front door during the failover').to.deep.equal([]);
    expect(await gatewayPods(), 'gateway pods (name, restarts) after the failover: nginx was not rolled or restarted').to.deep.equal(gatewayBefore);
    console.log(`      ${writer.outcomes.length} writes, ${writer.outcomes.reduce((s, o) => s + o.retries, 0)} honoured Retry-After`);
    await expectAllReadable();
  });

  /**
   * The voter count after each membership change the first member applied, from its log ("membership
   * change applied", with the voters): a change of two members at once shows as a step of 2. Sampling the
   * status instead misses states that last less than a poll (two removals 160 ms apart did).
   */
  async function votersApplied(): Promise<number[]> {
    const out = await kubectl(['-n', ns, 'logs', `${name}-0`, '-c', 'node']);
    const counts: number[] = [];
    for (const line of out.split('\n')) {
      if (!line.includes('"change"') || !line.includes('"voters"')) continue;
      try {
        const rec = JSON.parse(line) as { change?: unknown; voters?: unknown[] };
        if (rec.change !== undefined && Array.isArray(rec.voters)) counts.push(rec.voters.length);
      } catch {
        // not a JSON log line
      }
    }
    return counts;
  }

  function expectOneVoterAtATime(counts: number[], from: number, to: number): void {
    const start = counts.lastIndexOf(from);
    expect(start, `voter counts applied: ${counts.join(' -> ')}`).to.be.at.least(0);
    const path = counts.slice(start);
    expect(path[path.length - 1], `voter counts applied: ${counts.join(' -> ')}`).to.equal(to);
    for (let i = 1; i < path.length; i++) {
      expect(Math.abs(path[i]! - path[i - 1]!), `voter counts applied: ${counts.join(' -> ')}`).to.be.at.most(1);
    }
  }

  async function scaleTo(replicas: number): Promise<number[]> {
    const seen: number[] = [(await clusterStatus()).nodes.length];
    let quorumLost = false;
    await kubectl(['-n', ns, 'scale', `${PLURAL}/${name}`, `--replicas=${replicas}`]);
    await pollUntil(
      `${replicas} members in the Raft configuration and ${replicas} ready`,
      async () => {
        const obj = await cluster();
        if (condition(obj, 'QuorumLost')?.status === 'True') quorumLost = true;
        const members = (await clusterStatus().catch(() => undefined))?.nodes.length;
        if (members !== undefined && members !== seen[seen.length - 1]) seen.push(members);
        const v = clusterView(obj);
        return members === replicas && v.readyReplicas === replicas && condition(obj, 'Available')?.status === 'True' ? true : undefined;
      },
      { deadlineMs: SETTLE_MS, intervalMs: 200 },
    );
    expect(quorumLost, 'QuorumLost while scaling').to.equal(false);
    return seen;
  }

  it('scales 3 -> 5 -> 3 one member at a time without losing quorum or data', async function () {
    const up = await scaleTo(5);
    console.log(`      sizes sampled while scaling up: ${up.join(' -> ')}`);
    expect(await expectPrintedColumns()).to.include({ REPLICAS: '5', READY: '5' });
    expectOneVoterAtATime(await votersApplied(), 3, 5);
    await expectAllReadable();
    const down = await scaleTo(3);
    console.log(`      sizes sampled while scaling down: ${down.join(' -> ')}`);
    expect(await expectPrintedColumns()).to.include({ REPLICAS: '3', READY: '3' });
    expectOneVoterAtATime(await votersApplied(), 5, 3);
    await expectAllReadable();
    expect((await memberPods()).filter((p) => !p.metadata.deletionTimestamp)).to.have.length(3);
  });

  it('draining a member\'s node respects the PodDisruptionBudget and keeps quorum', async function () {
    const pdbs = (await kubectlJson<KubeList>(['-n', ns, 'get', 'poddisruptionbudgets'])).items.filter((p) => ownedBy(p, uid));
    expect(pdbs, 'a PodDisruptionBudget owned by the StegoCluster').to.have.length(1);
    const v = await view();
    const follower = (await memberPods()).find((p) => p.metadata.name !== v.leader)!;
    const node = follower.spec.nodeName!;
    let maxUnready = 0;
    let quorumLost = false;
    let draining = true;
    const watch = (async () => {
      while (draining) {
        const pods = await memberPods();
        const ready = pods.filter((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
        maxUnready = Math.max(maxUnready, 3 - ready);
        if (condition(await cluster(), 'QuorumLost')?.status === 'True') quorumLost = true;
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    let drain;
    try {
      drain = await kubectlResult(
        ['drain', node, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=90s', `--pod-selector=${ROLE_LABEL}`],
        { timeoutMs: 120_000 },
      );
    } finally {
      await kubectl(['uncordon', node]);
      draining = false;
      await watch;
    }
    const nodes = (await kubectlJson<KubeList>(['get', 'nodes'])).items.length;
    if (drain.code !== 0) {
      // Where the evicted member cannot move (one node, or volumes bound to the node) the budget stops the
      // drain after one eviction: that is the budget being respected.
      expect(drain.stderr + drain.stdout, `drain of ${node} on ${nodes} node(s)`).to.match(/disruption budget/i);
    }
    expect(maxUnready, 'members unready at once during the drain').to.be.at.most(1);
    expect(quorumLost, 'QuorumLost during the drain').to.equal(false);
    await waitAvailable(3);
    await expectAllReadable();
  });

  it('refuses an invalid StegoCluster with a clear message', async function () {
    for (const [i, bad] of INVALID_SPECS.entries()) {
      const spec = structuredClone(example.spec ?? {});
      bad.patch(spec);
      const obj = { apiVersion: example.apiVersion, kind: KIND, metadata: { name: `invalid-${i}` }, spec };
      const r = await tryApply(obj, ns);
      expect(r.code, `${bad.what} was accepted`).to.not.equal(0);
      expect(r.stderr, bad.what).to.match(/invalid/i).and.to.match(bad.expect);
      const left = await kubectlResult(['-n', ns, 'get', `${PLURAL}/invalid-${i}`]);
      expect(left.code, `${bad.what}: object exists`).to.not.equal(0);
    }
  });

  it('serves Prometheus metrics from every member and from the operator', async function () {
    const targets: { pod: KubeObject; port: number }[] = [];
    for (const p of await memberPods()) {
      const port = p.spec.containers.flatMap((c) => c.ports ?? []).find((x) => x.name === 'http' || x.name === 'metrics');
      expect(port, `${p.metadata.name} names an http or metrics port`).to.not.equal(undefined);
      targets.push({ pod: p, port: port!.containerPort });
    }
    const operators = (await kubectlJson<KubeList<MemberPod>>(['-n', ns, 'get', 'pods', '-l', `app.kubernetes.io/instance=${RELEASE}`])).items;
    for (const p of operators) {
      const port = p.spec.containers.flatMap((c) => c.ports ?? []).find((x) => x.name === 'metrics');
      expect(port, `operator pod ${p.metadata.name} names a metrics port`).to.not.equal(undefined);
      targets.push({ pod: p, port: port!.containerPort });
    }
    // Members are scraped from another member: their NetworkPolicy admits peers (and the operator, the
    // gateway, Prometheus), not the API server's proxy, whose connections come from a node's address (on
    // kind's multi-node cluster kindnet drops them). The operator has no policy: the API server's proxy.
    const members = await memberPods();
    for (const t of targets) {
      const peer = members.find((m) => m.metadata.name !== t.pod.metadata.name);
      const text = ownedByCluster(t.pod)
        ? await kubectl(['-n', ns, 'exec', peer!.metadata.name, '-c', 'node', '--', 'node', '-e',
          'fetch(process.argv[1]).then(async (r) => { if (!r.ok) throw new Error(`${r.status}`); process.stdout.write(await r.text()); })',
          `http://${(t.pod as MemberPod).status.podIP}:${t.port}/metrics`])
        : await kubectl(['get', '--raw', `/api/v1/namespaces/${ns}/pods/${t.pod.metadata.name}:${t.port}/proxy/metrics`]);
      expect(text, `${t.pod.metadata.name}:${t.port}/metrics`).to.match(/^# TYPE /m);
    }
  });

  it('deleting the StegoCluster and uninstalling the chart leaves no owned object behind', async function () {
    const kinds = 'statefulsets,deployments,services,configmaps,secrets,poddisruptionbudgets,serviceaccounts,roles,rolebindings,pods';
    const owned = (await kubectlJson<KubeList>(['-n', ns, 'get', kinds])).items.filter((o) => ownedBy(o, uid));
    expect(owned.length, 'objects owned by the StegoCluster before deletion').to.be.greaterThan(0);
    await kubectl(['-n', ns, 'delete', `${PLURAL}/${name}`, '--wait=true', '--timeout=180s'], { timeoutMs: 200_000 });
    await helm(['uninstall', RELEASE, '-n', ns, '--wait', '--timeout', '3m']);
    await pollUntil(
      'no object owned by the StegoCluster or labelled with the release',
      async () => {
        const left = (await kubectlJson<KubeList>(['-n', ns, 'get', kinds])).items.filter(
          (o) => ownedBy(o, uid) || ownedByCluster(o) || o.metadata.labels?.['app.kubernetes.io/instance'] === RELEASE,
        );
        const cluster = (await kubectlJson<KubeList>(['get', 'clusterroles,clusterrolebindings,validatingwebhookconfigurations,mutatingwebhookconfigurations', '-l', `app.kubernetes.io/instance=${RELEASE}`])).items;
        const all = [...left, ...cluster];
        if (all.length > 0) throw new Error(`left: ${all.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
        return true;
      },
      { deadlineMs: 180_000, intervalMs: 1000 },
    );
  });
});
