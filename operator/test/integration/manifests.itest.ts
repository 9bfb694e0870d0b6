// Every object the builders produce, checked by a real API server's schema (server-side dry run with
// strict field validation: unknown or misspelt fields are refused), and the operator's RBAC proven
// sufficient by reconciling as a ServiceAccount bound to exactly the chart's rules.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../../src/api/repo-root.js';
import { findHelm } from '../../src/tools/helm.js';
import { pino } from 'pino';
import { pollUntil } from '../../../node/test/cluster/harness.js';
import { customResourceDefinition } from '../../src/api/schema.js';
import { API_VERSION, KIND, type StegoCluster } from '../../src/api/types.js';
import { Manager } from '../../src/controllers/manager.js';
import { KubeClient, resourcePath, type KObject } from '../../src/k8s/client.js';
import { EventRecorder } from '../../src/k8s/events.js';
import { OperatorMetrics } from '../../src/metrics.js';
import { CLUSTER_RULES, NAMESPACE_RULES } from '../../src/rbac.js';
import { bootstrapConfigMap } from '../../src/resources/bootstrap.js';
import { DEFAULT_CONTEXT } from '../../src/resources/common.js';
import { testCluster } from '../../src/resources/fixtures.js';
import { gatewayConfigMap, gatewayDeployment, gatewayService, renderGatewayConf } from '../../src/resources/gateway.js';
import { networkPolicy, podDisruptionBudget } from '../../src/resources/policy.js';
import { ingress } from '../../src/resources/routes.js';
import { credentialsSecret } from '../../src/resources/secret.js';
import { clientService, headlessService, leaderService, memberService } from '../../src/resources/services.js';
import { statefulSet } from '../../src/resources/statefulset.js';
import { useApiServer } from './env.js';

describe('operator integration: manifests and RBAC against the API server', function () {
  this.timeout(60_000);
  const api = useApiServer('stego-manifests');
  before(async () => {
    await api.client.apply(customResourceDefinition() as KObject);
  });

  it('every desired object passes server-side validation (dry run, strict fields)', async () => {
    const { client, namespace } = api;
    const cr = testCluster(
      {
        apiTokens: { secretName: 'tokens' },
        resources: { requests: { cpu: '250m', memory: 1073741824 } },
        scheduling: { nodeSelector: { disk: 'ssd' }, tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'stego', effect: 'NoSchedule' }] },
        frontDoor: { gateway: { serviceType: 'NodePort', nodePort: 30080 }, ingress: { className: 'nginx', host: 'stego.example', tls: { secretName: 'cert' } } },
      },
      'demo',
      namespace,
    );
    const conf = renderGatewayConf(cr, 3, DEFAULT_CONTEXT);
    const objects: KObject[] = [
      statefulSet(cr, 3), headlessService(cr), clientService(cr), leaderService(cr), memberService(cr, 0), podDisruptionBudget(cr)!, networkPolicy(cr, DEFAULT_CONTEXT)!,
      credentialsSecret(cr, () => 'x'), bootstrapConfigMap(cr, 3, DEFAULT_CONTEXT), gatewayConfigMap(cr, conf), gatewayDeployment(cr, conf), gatewayService(cr), ingress(cr),
    ] as KObject[];
    for (const obj of objects) {
      try {
        await client.apply(obj, undefined, { dryRun: true });
      } catch (err) {
        throw new Error(`${obj.kind} ${obj.metadata!.name}: ${(err as Error).message}`, { cause: err });
      }
    }
  });

  it('the chart renders manifests the API server accepts (helm template, then strict server-side dry run)', async function () {
    const helm = findHelm();
    if (!helm) {
      console.log('      skipped: no helm (STEGO_HELM or ~/.cache/stegocluster/*/helm)');
      return this.skip();
    }
    const { client, namespace } = api;
    // Helm 3's `template` assumes Kubernetes 1.20 unless told (the chart requires >= 1.30); the strict
    // server-side dry run below is what checks the manifests against the real API server's version
    const out = execFileSync(helm, ['template', 'stego-operator', path.join(REPO_ROOT, 'charts/stego-operator'), '--namespace', namespace, '--kube-version', '1.37.2'], { encoding: 'utf8' });
    const docs = parseAllDocuments(out).map((d) => d.toJSON() as KObject | null).filter((d): d is KObject => d !== null);
    expect(docs.map((d) => d.kind)).to.include.members(['CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Service', 'Deployment']);
    for (const doc of docs) {
      try {
        await client.apply(doc, undefined, { dryRun: true });
      } catch (err) {
        throw new Error(`${doc.kind} ${doc.metadata?.name}: ${(err as Error).message}`, { cause: err });
      }
    }
    // and the example StegoCluster the NOTES point at
    const example = parseAllDocuments(readFileSync(path.join(REPO_ROOT, 'examples/stegocluster.yaml'), 'utf8')).map((d) => d.toJSON() as KObject);
    expect(example).to.have.length(1);
    await client.apply({ ...example[0]!, metadata: { ...example[0]!.metadata, namespace } }, undefined, { dryRun: true });
  });

  it('the chart\'s RBAC is enough: a ServiceAccount bound to exactly those rules reconciles a StegoCluster', async () => {
    const { client, kc, namespace } = api;
    const sa = 'stego-operator';
    await client.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace } } as never);
    const rules = (list: typeof CLUSTER_RULES): unknown[] => list.map(({ apiGroups, resources, verbs }) => ({ apiGroups, resources, verbs }));
    const roleName = `stego-operator-it-${namespace}`;
    await client.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: roleName }, rules: rules(CLUSTER_RULES) } });
    await client.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: roleName }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName }, subjects: [{ kind: 'ServiceAccount', name: sa, namespace }] },
    });
    await client.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, { body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: sa }, rules: rules(NAMESPACE_RULES) } });
    await client.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
      body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: sa }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa }, subjects: [{ kind: 'ServiceAccount', name: sa, namespace }] },
    });
    let manager: Manager | null = null;
    try {
      const tr = await client.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${sa}/token`, { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 } } });
      const cluster = kc.getCurrentCluster()!;
      const saKc = new KubeConfig();
      saKc.loadFromOptions({
        clusters: [{ name: 'it', server: cluster.server, caData: cluster.caData, caFile: cluster.caFile, skipTLSVerify: cluster.skipTLSVerify }],
        users: [{ name: 'sa', token: tr.status.token }],
        contexts: [{ name: 'it', cluster: 'it', user: 'sa' }],
        currentContext: 'it',
      });
      const saClient = new KubeClient(saKc);
      const denied: string[] = [];
      saClient.onRequest((method, path, status) => {
        if (status === 403) denied.push(`${method} ${path}`);
      });
      manager = new Manager({ client: saClient, kc: saKc, namespace, events: new EventRecorder(saClient, 'it'), metrics: new OperatorMetrics(false), log: pino({ level: 'silent' }), ctx: DEFAULT_CONTEXT });
      await manager.start();
      await client.create({ apiVersion: API_VERSION, kind: KIND, metadata: { name: 'rbac', namespace }, spec: { replicas: 3, frontDoor: { mode: 'ingress' } } } as unknown as StegoCluster);
      const status = await pollUntil('status written by the ServiceAccount', async () => {
        const sc = await client.get<StegoCluster>(resourcePath(API_VERSION, KIND, namespace, 'rbac'));
        return sc.status?.observedGeneration === 1 ? sc.status : undefined;
      }, { deadlineMs: 20_000 });
      expect(status.phase).to.equal('Creating');
      for (const [apiVersion, kind, name] of [['apps/v1', 'StatefulSet', 'rbac'], ['v1', 'Secret', 'rbac-credentials'], ['networking.k8s.io/v1', 'Ingress', 'rbac'], ['policy/v1', 'PodDisruptionBudget', 'rbac']] as const) {
        expect(await client.find(resourcePath(apiVersion, kind, namespace, name)), `${kind} ${name}`).to.not.equal(null);
      }
      // a front door whose API is not served (no Gateway API CRDs here): a condition, not a crash
      await client.create({ apiVersion: API_VERSION, kind: KIND, metadata: { name: 'routed', namespace }, spec: { replicas: 1, frontDoor: { mode: 'httpRoute', httpRoute: { parentRefs: [{ name: 'gw' }] } } } } as unknown as StegoCluster);
      const routed = await pollUntil('FrontDoorReady reported', async () => {
        const sc = await client.get<StegoCluster>(resourcePath(API_VERSION, KIND, namespace, 'routed'));
        return sc.status?.conditions?.find((c) => c.type === 'FrontDoorReady');
      }, { deadlineMs: 20_000 });
      expect(routed).to.include({ status: 'False', reason: 'GatewayAPINotInstalled' });
      expect(denied, 'requests refused by RBAC').to.deep.equal([]);
    } finally {
      await manager?.stop();
      await client.delete(`/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${roleName}`);
      await client.delete(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${roleName}`);
    }
  });
});
