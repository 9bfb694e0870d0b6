import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_BODY_LIMIT_BYTES } from '../../../node/src/http/http-config.js';
import { findNginx } from '../../../node/src/lb/nginx-process.js';
import { LABEL_ROLE } from '../api/names.js';
import { bootstrapConfigMap, initialPeers } from './bootstrap.js';
import { DEFAULT_CONTEXT } from './common.js';
import { testCluster } from './fixtures.js';
import { ANNOTATION_CONFIG_HASH, GATEWAY_DRAIN_SECONDS, gatewayConfigMap, gatewayDeployment, gatewayMemberCount, gatewayService, renderGatewayConf } from './gateway.js';
import { NODE_RELABELINGS, serviceMonitor } from './monitoring.js';
import { networkPolicy, podDisruptionBudget } from './policy.js';
import { httpRoute, ingress } from './routes.js';
import { credentialsSecret } from './secret.js';
import { clientService, headlessService, leaderService, memberService } from './services.js';
import { START_SCRIPT, statefulSet } from './statefulset.js';

const ctx = DEFAULT_CONTEXT;
const cr = testCluster();
const owner = { apiVersion: 'stego.io/v1alpha1', kind: 'StegoCluster', name: 'demo', uid: cr.metadata.uid, controller: true, blockOwnerDeletion: true };

describe('operator/resources: Services', () => {
  it('headless Service publishes not-ready addresses on both ports', () => {
    const s = headlessService(cr);
    expect(s.metadata!.name).to.equal('demo-peers');
    expect(s.metadata!.ownerReferences).to.deep.equal([owner]);
    expect(s.spec).to.include({ clusterIP: 'None', publishNotReadyAddresses: true });
    expect(s.spec!.ports!.map((p) => p.port)).to.deep.equal([8080, 7080]);
  });
  it('client Service selects every member; leader Service only the leader-labelled pod', () => {
    expect(clientService(cr).spec!.selector).to.deep.equal({ 'stego.io/cluster': 'demo', 'app.kubernetes.io/component': 'node' });
    const l = leaderService(cr);
    expect(l.metadata!.name).to.equal('demo-leader');
    expect(l.spec!.selector).to.deep.equal({ 'stego.io/cluster': 'demo', 'app.kubernetes.io/component': 'node', [LABEL_ROLE]: 'leader' });
  });
  it('member Service selects one pod by its StatefulSet pod name, ready endpoints only', () => {
    const m = memberService(cr, 2);
    expect(m.metadata!.name).to.equal('demo-member-2');
    expect(m.metadata!.ownerReferences).to.deep.equal([owner]);
    expect(m.metadata!.labels).to.include({ 'stego.io/service': 'member' });
    expect(m.spec).to.include({ type: 'ClusterIP' });
    expect(m.spec!.publishNotReadyAddresses).to.equal(undefined);
    expect(m.spec!.selector).to.deep.equal({ 'stego.io/cluster': 'demo', 'app.kubernetes.io/component': 'node', 'statefulset.kubernetes.io/pod-name': 'demo-2' });
    expect(m.spec!.ports).to.deep.equal([{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }]);
  });
});

describe('operator/resources: StatefulSet', () => {
  const sts = statefulSet(testCluster({ apiTokens: { secretName: 'tok' }, resources: { limits: { cpu: 1, memory: '512Mi' } } }), 3);
  const pod = sts.spec!.template.spec!;
  const c = pod.containers[0]!;
  const env = Object.fromEntries(c.env!.map((e) => [e.name, e.value ?? e.valueFrom]));

  it('runs Parallel with a PVC per pod, OnDelete updates and the planner\'s replica count', () => {
    expect(sts.spec).to.include({ replicas: 3, podManagementPolicy: 'Parallel', serviceName: 'demo-peers' });
    expect(sts.spec!.updateStrategy).to.deep.equal({ type: 'OnDelete' });
    expect(sts.spec!.volumeClaimTemplates![0]!.spec!.resources!.requests).to.deep.equal({ storage: '1Gi' });
    expect(sts.spec!.persistentVolumeClaimRetentionPolicy).to.deep.equal({ whenDeleted: 'Retain', whenScaled: 'Delete' });
    expect(sts.metadata!.ownerReferences).to.deep.equal([owner]);
  });
  it('uses the pod name as node id and takes secrets from the generated Secret', () => {
    expect(env['NODE_ID']).to.deep.equal({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env['STEGO_CLUSTER_SECRET']).to.deep.equal({ secretKeyRef: { name: 'demo-credentials', key: 'cluster-secret' } });
    expect(env['STEGO_ADMIN_TOKEN']).to.deep.equal({ secretKeyRef: { name: 'demo-credentials', key: 'admin-token' } });
    expect(env['STEGO_API_TOKENS_FILE']).to.equal('/etc/stego/api-tokens/tokens');
    expect(env['STEGO_HEARTBEAT_MS']).to.equal('50');
    expect(env['STEGO_ELECTION_MS']).to.equal('150');
    expect(pod.volumes!.find((v) => v.name === 'api-tokens')!.secret).to.deep.equal({ secretName: 'tok', defaultMode: 0o440 });
    expect(c.resources).to.deep.equal({ limits: { cpu: '1', memory: '512Mi' } });
  });
  it('probes /healthz for liveness and /readyz for readiness', () => {
    expect(c.livenessProbe!.httpGet!.path).to.equal('/healthz');
    expect(c.readinessProbe!.httpGet!.path).to.equal('/readyz');
    expect(c.startupProbe!.httpGet!.path).to.equal('/healthz');
  });
  it('is hardened: non-root, read-only root, no capabilities, RuntimeDefault seccomp, no service-account token', () => {
    expect(pod.automountServiceAccountToken).to.equal(false);
    expect(pod.securityContext).to.include({ runAsNonRoot: true });
    expect(pod.securityContext!.seccompProfile).to.deep.equal({ type: 'RuntimeDefault' });
    expect(c.securityContext).to.deep.equal({ runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  });
  it('spreads across nodes and zones by default, user constraints replace it', () => {
    expect(pod.topologySpreadConstraints!.map((t) => t.topologyKey)).to.deep.equal(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    const custom = statefulSet(testCluster({ scheduling: { topologySpreadConstraints: [{ maxSkew: 2 }], nodeSelector: { disk: 'ssd' } } }), 1).spec!.template.spec!;
    expect(custom.topologySpreadConstraints).to.deep.equal([{ maxSkew: 2 }]);
    expect(custom.nodeSelector).to.deep.equal({ disk: 'ssd' });
  });
  it('the start script bootstraps only listed pods and joins every other pod', () => {
    const run = (nodeId: string, peers: string | null): string => {
      const dir = mkdtempSync(join(tmpdir(), 'stego-start-'));
      try {
        const script = START_SCRIPT.replace('/etc/stego/bootstrap/peers', join(dir, 'peers')).replace(/exec node .*/, 'echo "join=${STEGO_JOIN:-0} peers=${PEERS:-}"');
        if (peers !== null) writeFileSync(join(dir, 'peers'), peers);
        return execFileSync('/bin/sh', ['-c', script], { env: { NODE_ID: nodeId, PATH: process.env['PATH'] }, encoding: 'utf8' }).trim();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
    const peers = initialPeers(cr, 3, ctx);
    expect(run('demo-1', peers)).to.equal(`join=0 peers=${peers}`);
    expect(run('demo-3', peers)).to.equal('join=1 peers=');
    expect(run('demo-1', '')).to.equal('join=1 peers=');
    expect(run('demo-1', null)).to.equal('join=1 peers=');
    expect(run('demo-1', 'demo-10=x:1')).to.equal('join=1 peers=');
  });
});

describe('operator/resources: bootstrap ConfigMap and Secret', () => {
  it('lists the initial members until the cluster is bootstrapped, then nothing', () => {
    expect(bootstrapConfigMap(cr, 3, ctx).data!['peers']).to.equal(
      'demo-0=demo-0.demo-peers.prod.svc.cluster.local:7080,demo-1=demo-1.demo-peers.prod.svc.cluster.local:7080,demo-2=demo-2.demo-peers.prod.svc.cluster.local:7080',
    );
    expect(bootstrapConfigMap({ ...cr, status: { bootstrapped: true } }, 3, ctx).data!['peers']).to.equal('');
  });
  it('generates the cluster secret and admin token from the random source', () => {
    let i = 0;
    const s = credentialsSecret(cr, () => `tok${i++}`);
    expect(s.stringData).to.deep.equal({ 'cluster-secret': 'tok0', 'admin-token': 'tok1' });
    expect(s.metadata!.name).to.equal('demo-credentials');
  });
});

describe('operator/resources: PodDisruptionBudget and NetworkPolicy', () => {
  it('keeps quorum: maxUnavailable 1 at 3+, none below 3, configurable and capped', () => {
    expect(podDisruptionBudget(cr)!.spec).to.deep.include({ maxUnavailable: 1 });
    expect(podDisruptionBudget(testCluster({ replicas: 2 }))).to.equal(null);
    expect(podDisruptionBudget(testCluster({ podDisruptionBudget: { enabled: false } }))).to.equal(null);
    expect(podDisruptionBudget(testCluster({ replicas: 5, podDisruptionBudget: { maxUnavailable: 2 } }))!.spec!.maxUnavailable).to.equal(2);
    expect(podDisruptionBudget(testCluster({ replicas: 3, podDisruptionBudget: { maxUnavailable: 3 } }))!.spec!.maxUnavailable).to.equal(1);
  });
  it('opens Raft only between members and HTTP only to the gateway, members and the operator', () => {
    const np = networkPolicy(cr, ctx)!;
    const [raft, http] = np.spec.ingress;
    expect(raft!.ports).to.deep.equal([{ protocol: 'TCP', port: 7080 }]);
    expect(raft!.from).to.deep.equal([{ podSelector: { matchLabels: { 'stego.io/cluster': 'demo', 'app.kubernetes.io/component': 'node' } } }]);
    expect(http!.ports).to.deep.equal([{ protocol: 'TCP', port: 8080 }]);
    expect(http!.from).to.deep.include({ podSelector: { matchLabels: { 'stego.io/cluster': 'demo', 'app.kubernetes.io/component': 'gateway' } } });
    expect(http!.from).to.deep.include({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'stego-system' } }, podSelector: { matchLabels: ctx.operatorPodLabels } });
    expect(networkPolicy(testCluster({ networkPolicy: { enabled: false } }), ctx)).to.equal(null);
    expect(networkPolicy(testCluster({ frontDoor: { mode: 'ingress' } }), ctx)!.spec.ingress[1]!.from).to.equal(undefined);
  });
});

describe('operator/resources: gateway front door', () => {
  const conf = renderGatewayConf(cr, 3, ctx);

  it('renders the shared nginx config: writes to the leader Service first, member Services as backups', () => {
    expect(conf).to.include('server demo-leader.prod.svc.cluster.local:8080 max_fails=2 fail_timeout=5s; # leader-service');
    expect(conf).to.include('server demo-member-0.prod.svc.cluster.local:8080 max_fails=0 fail_timeout=5s backup; # demo-0');
    expect(conf).to.include('server demo-member-2.prod.svc.cluster.local:8080 max_fails=2 fail_timeout=5s; # demo-2');
    expect(conf).to.not.include('demo-member-3');
    expect(conf).to.include(`client_max_body_size ${DEFAULT_BODY_LIMIT_BYTES};`);
    expect(conf).to.include('stub_status;');
    expect(conf).to.include('listen 8080;');
    expect(conf).to.include('# writes: leader-service first');
    // no pod IP anywhere: a member's new address needs no new config
    expect(conf).to.not.match(/server \d+\.\d+\.\d+\.\d+:/);
  });
  it('limits no client address: behind a Service every client may share one (the nodes limit per token)', () => {
    expect(conf).to.not.match(/limit_req|limit_conn/);
  });
  it('names as many members as the desired or running StatefulSet has, so a scale changes it once', () => {
    expect(gatewayMemberCount(cr, undefined)).to.equal(3);
    expect(gatewayMemberCount(cr, 5)).to.equal(5);
    expect(gatewayMemberCount(testCluster({ replicas: 5 }), 3)).to.equal(5);
    expect(renderGatewayConf(cr, gatewayMemberCount(cr, 3), ctx)).to.equal(conf);
  });
  it('is accepted by the real nginx (nginx -t) when nginx is installed', function () {
    const bin = findNginx();
    if (!bin) return this.skip();
    const dir = mkdtempSync(join(tmpdir(), 'stego-gw-'));
    try {
      // nginx resolves upstream names at load: use the local name for the Services
      const local = conf.replace(/demo-(leader|member-\d+)\.prod\.svc\.cluster\.local/g, 'localhost');
      for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, 'tmp', d), { recursive: true });
      writeFileSync(join(dir, 'nginx.conf'), local.replaceAll('/tmp/nginx', dir).replace('worker_processes', process.getuid?.() === 0 ? 'user root;\nworker_processes' : 'worker_processes'));
      execFileSync(bin, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('Deployment rolls when the config changes, runs hardened, and drains before it quits', () => {
    const d = gatewayDeployment(cr, conf);
    const again = gatewayDeployment(cr, renderGatewayConf(cr, 3, ctx));
    const other = gatewayDeployment(cr, renderGatewayConf(cr, 5, ctx));
    const hash = (x: typeof d): string => x.spec!.template.metadata!.annotations![ANNOTATION_CONFIG_HASH]!;
    expect(hash(again)).to.equal(hash(d));
    expect(hash(other)).to.not.equal(hash(d));
    expect(d.spec!.replicas).to.equal(2);
    expect(d.spec!.strategy!.rollingUpdate).to.deep.equal({ maxUnavailable: 0, maxSurge: 1 });
    const c = d.spec!.template.spec!.containers[0]!;
    expect(c.securityContext).to.deep.include({ readOnlyRootFilesystem: true, runAsNonRoot: true });
    const preStop = c.lifecycle!.preStop!.exec!.command!.join(' ');
    expect(preStop).to.match(new RegExp(`sleep ${GATEWAY_DRAIN_SECONDS}; nginx .* -s quit; while \\[ -e /tmp/nginx/nginx.pid \\]`));
    expect(d.spec!.template.spec!.terminationGracePeriodSeconds).to.be.greaterThan(GATEWAY_DRAIN_SECONDS + 60);
    expect(d.spec!.template.spec!.automountServiceAccountToken).to.equal(false);
    expect(gatewayConfigMap(cr, conf).data!['nginx.conf']).to.equal(conf);
  });
  it('Service type and node port follow the spec', () => {
    expect(gatewayService(cr).spec!.type).to.equal('ClusterIP');
    const np = gatewayService(testCluster({ frontDoor: { gateway: { serviceType: 'NodePort', nodePort: 30080 } } }));
    expect(np.spec!.type).to.equal('NodePort');
    expect(np.spec!.ports![0]!.nodePort).to.equal(30080);
  });
});

describe('operator/resources: HTTPRoute and Ingress front doors', () => {
  it('HTTPRoute sends object writes and /admin to the leader Service, the rest to the client Service', () => {
    const r = httpRoute(testCluster({ frontDoor: { mode: 'httpRoute', httpRoute: { parentRefs: [{ name: 'gw', namespace: 'infra' }], hostnames: ['stego.example'] } } }));
    const spec = r.spec as any;
    expect(r.apiVersion).to.equal('gateway.networking.k8s.io/v1');
    expect(spec.parentRefs).to.deep.equal([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw', namespace: 'infra' }]);
    expect(spec.hostnames).to.deep.equal(['stego.example']);
    expect(spec.rules[0].backendRefs).to.deep.equal([{ name: 'demo-leader', port: 8080 }]);
    expect(spec.rules[0].matches.map((m: any) => m.method).filter(Boolean)).to.deep.equal(['POST', 'PUT', 'PATCH', 'DELETE']);
    expect(spec.rules[1]).to.deep.equal({ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 'demo', port: 8080 }] });
    expect(() => httpRoute(testCluster({ frontDoor: { mode: 'httpRoute' } }))).to.throw(/parentRefs/);
  });
  it('Ingress has the class, the user annotations over body-size defaults, TLS and the routes', () => {
    const i = ingress(testCluster({ frontDoor: { mode: 'ingress', ingress: { className: 'nginx', host: 'stego.example', annotations: { 'nginx.org/client-max-body-size': '80m' }, tls: { secretName: 'cert' } } } }));
    expect(i.spec!.ingressClassName).to.equal('nginx');
    expect(i.metadata!.annotations).to.deep.equal({ 'nginx.org/client-max-body-size': '80m', 'nginx.ingress.kubernetes.io/proxy-body-size': '50m' });
    expect(i.spec!.tls).to.deep.equal([{ secretName: 'cert', hosts: ['stego.example'] }]);
    const paths = i.spec!.rules![0]!.http!.paths.map((p) => [p.path, p.backend.service!.name]);
    expect(paths).to.deep.equal([['/api/objects', 'demo-leader'], ['/admin', 'demo-leader'], ['/', 'demo']]);
  });
});

describe('operator/resources: ServiceMonitor', () => {
  it('exists only when enabled and scrapes the headless Service', () => {
    expect(serviceMonitor(cr)).to.equal(null);
    const sm = serviceMonitor(testCluster({ metrics: { serviceMonitor: { enabled: true, interval: '15s' } } }))!;
    // the relabelings are checked by a real Prometheus in scripts/observability/service-monitor.test.ts
    expect(sm.spec['endpoints']).to.deep.equal([{ port: 'http', path: '/metrics', interval: '15s', relabelings: NODE_RELABELINGS }]);
    expect((sm.spec['selector'] as any).matchLabels['stego.io/service']).to.equal('peers');
  });
});
