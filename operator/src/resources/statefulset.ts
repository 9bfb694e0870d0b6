// The member StatefulSet. Parallel pod management (OrderedReady would deadlock: pod 0 is never ready until a
// quorum exists), pod name = Raft node id, one PVC per pod, OnDelete updates (the operator replaces pods one
// at a time, the leader last and only after handing leadership away).
import type { V1Container, V1EnvVar, V1PodSpec, V1StatefulSet, V1TopologySpreadConstraint, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import {
  API_TOKENS_DIR, BOOTSTRAP_DIR, DATA_DIR, HTTP_PORT, RAFT_PORT, commonLabels, names, selectorLabels,
} from '../api/names.js';
import type { StegoCluster } from '../api/types.js';
import { BOOTSTRAP_PEERS_KEY } from './bootstrap.js';
import { ownedMeta, ref, toResources } from './common.js';
import { SECRET_KEY_ADMIN, SECRET_KEY_CLUSTER } from './secret.js';

/** Where the node image keeps the node's entry point (node/Dockerfile). */
export const NODE_ENTRY = '/app/dist/node/src/main.js';
/** uid/gid of the `node` user of the Node 24 base images. */
export const NODE_UID = 1000;

/**
 * The container command. A pod listed in the bootstrap file takes part in forming the cluster (PEERS);
 * any other pod starting without data waits to be added (STEGO_JOIN=1). A pod with data ignores both.
 */
export const START_SCRIPT = [
  'peers="$(cat ' + `${BOOTSTRAP_DIR}/${BOOTSTRAP_PEERS_KEY}` + ' 2>/dev/null || true)"',
  'case ",$peers," in',
  '  *",$NODE_ID="*) export PEERS="$peers" ;;',
  '  *) export STEGO_JOIN=1 ;;',
  'esac',
  `exec node ${NODE_ENTRY}`,
].join('\n');

function env(cr: StegoCluster): V1EnvVar[] {
  const s = cr.spec;
  const secret = names.credentialsSecret(ref(cr));
  const vars: V1EnvVar[] = [
    { name: 'NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'HTTP_HOST', value: '0.0.0.0' },
    { name: 'HTTP_PORT', value: String(HTTP_PORT) },
    { name: 'RAFT_HOST', value: '0.0.0.0' },
    { name: 'RAFT_PORT', value: String(RAFT_PORT) },
    { name: 'DATA_DIR', value: DATA_DIR },
    { name: 'STEGO_CLUSTER_SECRET', valueFrom: { secretKeyRef: { name: secret, key: SECRET_KEY_CLUSTER } } },
    { name: 'STEGO_ADMIN_TOKEN', valueFrom: { secretKeyRef: { name: secret, key: SECRET_KEY_ADMIN } } },
    { name: 'STEGO_TICK_MS', value: String(s.raft.tickMs) },
    { name: 'STEGO_HEARTBEAT_MS', value: String(s.raft.heartbeatMs) },
    { name: 'STEGO_ELECTION_MS', value: String(s.raft.electionTimeoutMinMs) },
    { name: 'STEGO_LOG_LEVEL', value: s.logLevel },
  ];
  if (s.apiTokens) vars.push({ name: 'STEGO_API_TOKENS_FILE', value: `${API_TOKENS_DIR}/${s.apiTokens.key}` });
  return vars;
}

function volumes(cr: StegoCluster): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  const vols: V1Volume[] = [
    { name: 'bootstrap', configMap: { name: names.bootstrapConfigMap(ref(cr)) } },
    // uploads are staged in the OS temp dir; the root filesystem is read-only
    { name: 'tmp', emptyDir: {} },
  ];
  const mounts: V1VolumeMount[] = [
    { name: names.dataVolume, mountPath: DATA_DIR },
    { name: 'bootstrap', mountPath: BOOTSTRAP_DIR, readOnly: true },
    { name: 'tmp', mountPath: '/tmp' },
  ];
  if (cr.spec.apiTokens) {
    vols.push({ name: 'api-tokens', secret: { secretName: cr.spec.apiTokens.secretName, defaultMode: 0o440 } });
    mounts.push({ name: 'api-tokens', mountPath: API_TOKENS_DIR, readOnly: true });
  }
  return { volumes: vols, mounts };
}

function container(cr: StegoCluster, mounts: V1VolumeMount[]): V1Container {
  const electionMs = cr.spec.raft.electionTimeoutMaxMs;
  return {
    name: 'node',
    image: cr.spec.image,
    imagePullPolicy: cr.spec.imagePullPolicy,
    command: ['/bin/sh', '-c', START_SCRIPT],
    env: env(cr),
    ports: [
      { name: 'http', containerPort: HTTP_PORT, protocol: 'TCP' },
      { name: 'raft', containerPort: RAFT_PORT, protocol: 'TCP' },
    ],
    ...toResources(cr.spec.resources),
    volumeMounts: mounts,
    startupProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2, failureThreshold: 60 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
    // Readiness follows the node's view of the cluster (leader known, applied >= commit), checked often so
    // a node that loses its leader leaves the Services within a few seconds.
    readinessProbe: {
      httpGet: { path: '/readyz', port: 'http' },
      periodSeconds: 2,
      timeoutSeconds: Math.max(1, Math.ceil((4 * electionMs) / 1000)),
      failureThreshold: 2,
    },
    securityContext: {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
  };
}

/** Default spread: one member per node and per zone where the cluster allows it, never blocking scheduling. */
export function defaultSpread(cr: StegoCluster): V1TopologySpreadConstraint[] {
  const labelSelector = { matchLabels: selectorLabels(ref(cr)) };
  return [
    { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector },
    { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector },
  ];
}

function podSpec(cr: StegoCluster): V1PodSpec {
  const { volumes: vols, mounts } = volumes(cr);
  const sched = cr.spec.scheduling ?? {};
  return {
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: 30,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: NODE_UID,
      runAsGroup: NODE_UID,
      fsGroup: NODE_UID,
      fsGroupChangePolicy: 'OnRootMismatch',
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [container(cr, mounts)],
    volumes: vols,
    topologySpreadConstraints: (sched.topologySpreadConstraints as V1TopologySpreadConstraint[] | undefined) ?? defaultSpread(cr),
    ...(sched.nodeSelector ? { nodeSelector: sched.nodeSelector } : {}),
    ...(sched.tolerations ? { tolerations: sched.tolerations } : {}),
    ...(sched.affinity ? { affinity: sched.affinity } : {}),
  };
}

/** `replicas` is the planner's pod count, which follows spec.replicas only as fast as membership can. */
export function statefulSet(cr: StegoCluster, replicas: number): V1StatefulSet {
  const c = ref(cr);
  const st = cr.spec.storage;
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: ownedMeta(cr, names.statefulSet(c), 'node'),
    spec: {
      replicas,
      serviceName: names.headlessService(c),
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'OnDelete' },
      persistentVolumeClaimRetentionPolicy: { whenDeleted: st.onDelete, whenScaled: st.onScaleDown },
      selector: { matchLabels: selectorLabels(c) },
      template: { metadata: { labels: commonLabels(c, 'node') }, spec: podSpec(cr) },
      volumeClaimTemplates: [
        {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          metadata: { name: names.dataVolume, labels: commonLabels(c, 'node') },
          spec: {
            accessModes: ['ReadWriteOnce'],
            resources: { requests: { storage: st.size } },
            ...(st.storageClassName ? { storageClassName: st.storageClassName } : {}),
          },
        },
      ],
    },
  };
}
