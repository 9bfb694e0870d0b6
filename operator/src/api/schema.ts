// The StegoCluster CRD, as data. `npm run generate` renders it to crds/stegoclusters.stego.io.yaml (and the
// chart's copy); tests prove the committed YAML equals this and that the schema names exactly the fields of
// the TypeScript types (types.ts). Defaults come from defaults.ts.
import { SPEC_DEFAULTS, API_TOKENS_DEFAULT_KEY } from './defaults.js';
import { GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION } from './types.js';

export interface JsonSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema;
  items?: JsonSchema;
  required?: string[];
  default?: unknown;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  maxProperties?: number;
  pattern?: string;
  format?: string;
  anyOf?: JsonSchema[];
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: { rule: string; message: string; reason?: string; fieldPath?: string }[];
}

const obj = (description: string, properties: Record<string, JsonSchema>, extra: Partial<JsonSchema> = {}): JsonSchema => ({
  type: 'object',
  description,
  properties,
  ...extra,
});
const str = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'string', description, ...extra });
const int = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'integer', description, ...extra });
const bool = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'boolean', description, ...extra });
const stringMap = (description: string): JsonSchema => ({
  type: 'object',
  description,
  additionalProperties: { type: 'string', maxLength: 4096 },
  maxProperties: 64,
});

const QUANTITY_PATTERN = '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';
// the one anyOf a structural schema allows; value checks go beside it, as controller-gen writes them
const quantity: JsonSchema = {
  anyOf: [{ type: 'integer' }, { type: 'string' }],
  pattern: QUANTITY_PATTERN,
  'x-kubernetes-int-or-string': true,
};
const resourceList = (description: string): JsonSchema => ({
  type: 'object',
  description,
  additionalProperties: quantity,
  maxProperties: 16,
});
const resources = (description: string): JsonSchema =>
  obj(description, {
    requests: resourceList('Minimum resources, e.g. cpu: 250m, memory: 256Mi.'),
    limits: resourceList('Maximum resources.'),
  });

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'];
const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$';
const IMAGE = str('Container image reference.', { minLength: 1, maxLength: 512 });

const D = SPEC_DEFAULTS;

const storage = obj(
  'Persistent storage of each member (one PVC per pod).',
  {
    size: str('PVC size per member. Immutable: resize the PVCs themselves.', { default: D.storage.size, pattern: QUANTITY_PATTERN }),
    storageClassName: str('StorageClass of the PVCs; the cluster default when unset. Immutable.', { maxLength: 253 }),
    onDelete: str('Retain or Delete the PVCs when the StegoCluster is deleted.', { enum: ['Retain', 'Delete'], default: D.storage.onDelete }),
    onScaleDown: str("Retain or Delete a removed member's PVC on scale-down.", { enum: ['Retain', 'Delete'], default: D.storage.onScaleDown }),
  },
  {
    // the default itself must satisfy the rules below (CEL runs on it without nested defaults)
    default: { ...D.storage },
    'x-kubernetes-validations': [
      { rule: 'self.size == oldSelf.size', message: 'storage.size is immutable (StatefulSet claim templates are): resize the PVCs instead' },
      {
        rule: 'has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)',
        message: 'storage.storageClassName is immutable',
      },
    ],
  },
);

const raft = obj(
  'Raft timings. The defaults (50 ms heartbeats, 150-300 ms election timeout) suit a LAN; raise them on slow disks.',
  {
    tickMs: int('Raft tick period in ms.', { minimum: 1, maximum: 1000, default: D.raft.tickMs }),
    heartbeatMs: int('Leader heartbeat interval in ms.', { minimum: 1, maximum: 60000, default: D.raft.heartbeatMs }),
    electionTimeoutMinMs: int('Shortest election timeout in ms.', { minimum: 2, maximum: 600000, default: D.raft.electionTimeoutMinMs }),
    electionTimeoutMaxMs: int('Longest election timeout in ms; the node randomises over [min, 2*min), so it must be 2*min.', {
      minimum: 3,
      maximum: 1200000,
      default: D.raft.electionTimeoutMaxMs,
    }),
  },
  {
    default: { ...D.raft },
    'x-kubernetes-validations': [
      { rule: 'self.electionTimeoutMinMs < self.electionTimeoutMaxMs', message: 'raft.electionTimeoutMinMs must be less than raft.electionTimeoutMaxMs' },
      { rule: 'self.heartbeatMs < self.electionTimeoutMinMs', message: 'raft.heartbeatMs must be less than raft.electionTimeoutMinMs' },
      { rule: 'self.tickMs <= self.heartbeatMs', message: 'raft.tickMs must not exceed raft.heartbeatMs' },
      {
        rule: 'self.electionTimeoutMaxMs == 2 * self.electionTimeoutMinMs',
        message: 'raft.electionTimeoutMaxMs must be 2 * raft.electionTimeoutMinMs (the node randomises its election timeout over [min, 2*min))',
      },
    ],
  },
);

const gateway = obj(
  'The operator-managed nginx Deployment and Service (mode gateway).',
  {
    image: { ...IMAGE, description: "nginx image (must run as non-root); the operator installation's default when unset." },
    imagePullPolicy: str('Pull policy of the nginx image; the installation default when unset.', { enum: PULL_POLICIES }),
    replicas: int('nginx replicas.', { minimum: 1, maximum: 10, default: D.frontDoor.gateway.replicas }),
    serviceType: str('Type of the gateway Service.', { enum: ['ClusterIP', 'NodePort', 'LoadBalancer'], default: D.frontDoor.gateway.serviceType }),
    nodePort: int('Fixed node port (NodePort or LoadBalancer only).', { minimum: 1, maximum: 65535 }),
    resources: resources('Resources of each nginx container.'),
  },
  {
    default: {},
    'x-kubernetes-validations': [{ rule: "!has(self.nodePort) || self.serviceType != 'ClusterIP'", message: 'frontDoor.gateway.nodePort needs serviceType NodePort or LoadBalancer' }],
  },
);

const httpRoute = obj('A Gateway API HTTPRoute (mode httpRoute).', {
  parentRefs: {
    type: 'array',
    description: 'The Gateway(s) the route attaches to.',
    maxItems: 8,
    items: obj(
      'A Gateway reference.',
      {
        name: str('Gateway name.', { minLength: 1, maxLength: 253 }),
        namespace: str('Gateway namespace; the StegoCluster\'s when unset.', { maxLength: 63 }),
        sectionName: str('Listener name.', { maxLength: 253 }),
      },
      { required: ['name'] },
    ),
  },
  hostnames: { type: 'array', description: 'Host names the route matches.', maxItems: 16, items: str('A host name.', { maxLength: 253 }) },
});

const ingress = obj('A networking.k8s.io/v1 Ingress (mode ingress).', {
  className: str('IngressClass name.', { maxLength: 253 }),
  host: str('Host the rules match; all hosts when unset.', { maxLength: 253 }),
  annotations: stringMap('Annotations for the Ingress controller (nginx.org/* or nginx.ingress.kubernetes.io/*).'),
  tls: obj('TLS termination.', { secretName: str('Secret with tls.crt and tls.key.', { minLength: 1, maxLength: 253 }) }, { required: ['secretName'] }),
});

const frontDoor = obj(
  'How clients reach the cluster.',
  {
    mode: str('gateway (nginx run by the operator), httpRoute, ingress or none.', { enum: ['gateway', 'httpRoute', 'ingress', 'none'], default: D.frontDoor.mode }),
    gateway,
    httpRoute,
    ingress,
  },
  {
    default: { mode: D.frontDoor.mode },
    'x-kubernetes-validations': [
      { rule: "self.mode != 'httpRoute' || (has(self.httpRoute) && has(self.httpRoute.parentRefs) && size(self.httpRoute.parentRefs) > 0)", message: 'frontDoor.httpRoute.parentRefs must name a Gateway when mode is httpRoute' },
    ],
  },
);

const metrics = obj(
  'Monitoring.',
  {
    serviceMonitor: obj(
      'A prometheus-operator ServiceMonitor for the members.',
      { enabled: bool('Create the ServiceMonitor.', { default: D.metrics.serviceMonitor.enabled }), interval: str('Scrape interval, e.g. 15s.', { pattern: '^[0-9]+(ms|s|m)$' }) },
      { default: {} },
    ),
  },
  { default: {} },
);

const preserved = (description: string): JsonSchema => ({ type: 'object', description, 'x-kubernetes-preserve-unknown-fields': true });

const scheduling = obj('Pod scheduling. By default members spread across nodes and zones.', {
  nodeSelector: stringMap('Node labels the member pods require.'),
  tolerations: {
    type: 'array',
    description: 'Tolerations of the member pods.',
    maxItems: 32,
    items: obj('A toleration.', {
      key: str('Taint key.'),
      operator: str('Exists or Equal.', { enum: ['Exists', 'Equal'] }),
      value: str('Taint value.'),
      effect: str('NoSchedule, PreferNoSchedule or NoExecute.', { enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] }),
      tolerationSeconds: int('How long a NoExecute taint is tolerated.'),
    }),
  },
  affinity: preserved('core/v1 Affinity of the member pods.'),
  topologySpreadConstraints: { type: 'array', description: 'Replace the default spread.', maxItems: 8, items: preserved('core/v1 TopologySpreadConstraint.') },
});

const pdb = obj(
  'The PodDisruptionBudget that keeps quorum through voluntary disruptions (created at 3+ replicas).',
  {
    enabled: bool('Create the PodDisruptionBudget.', { default: D.podDisruptionBudget.enabled }),
    maxUnavailable: int('Members that may be evicted at once.', { minimum: 0, maximum: 4, default: D.podDisruptionBudget.maxUnavailable }),
  },
  { default: {} },
);

const apiTokens = obj(
  'Secret holding the API tokens file, mounted into every member (STEGO_API_TOKENS_FILE).',
  {
    secretName: str('Secret name in the StegoCluster namespace.', { minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN }),
    key: str('Key of the tokens file in the Secret.', { default: API_TOKENS_DEFAULT_KEY, minLength: 1, maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$' }),
  },
  { required: ['secretName'] },
);

export const specSchema: JsonSchema = obj(
  'Desired state of a StegoCluster.',
  {
    replicas: int('Raft members (1-9). Even counts tolerate no more failures than the odd count below them.', { minimum: 1, maximum: 9, default: D.replicas }),
    image: { ...IMAGE, description: "StegoCluster node image; the operator installation's default when unset." },
    imagePullPolicy: str('Image pull policy of the members; the installation default when unset.', { enum: PULL_POLICIES }),
    resources: resources('Resources of each member container.'),
    storage,
    raft,
    frontDoor,
    metrics,
    scheduling,
    podDisruptionBudget: pdb,
    networkPolicy: obj('A NetworkPolicy opening the Raft port to members only and HTTP to the front door and the operator.', { enabled: bool('Create the NetworkPolicies.', { default: D.networkPolicy.enabled }) }, { default: {} }),
    apiTokens,
    logLevel: str('Node log level.', { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], default: D.logLevel }),
  },
  { default: {} },
);

const condition = obj(
  'A status condition.',
  {
    type: str('Available, Progressing, Degraded, LeaderElected, QuorumLost or FrontDoorReady.'),
    status: str('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
    reason: str('CamelCase reason.'),
    message: str('Human-readable detail.'),
    lastTransitionTime: str('When status last changed.', { format: 'date-time' }),
    observedGeneration: int('The generation this condition describes.'),
  },
  { required: ['type', 'status', 'lastTransitionTime'] },
);

const member = obj(
  'A Raft member.',
  {
    id: str('Raft node id (the pod name).'),
    pod: str('Pod name.'),
    role: str('Leader, Follower, Candidate, Learner or Unknown.'),
    healthy: bool('Link up and heard from recently (as the leader sees it).'),
    membership: str('voter or learner.', { enum: ['voter', 'learner'] }),
    appliedIndex: int('Last log index the member applied.'),
  },
  { required: ['id'] },
);

export const statusSchema: JsonSchema = obj('Observed state of a StegoCluster.', {
  observedGeneration: int('The generation of the last error-free reconcile.'),
  phase: str('Creating, Healthy, Scaling, Degraded, QuorumLost or Failed.'),
  phaseReason: str('Why the cluster is in this phase.'),
  replicas: int('Raft members now (voters and learners).'),
  readyReplicas: int('Members whose /readyz answers 200.'),
  leader: str('Current leader id, agreed at the highest term.'),
  term: int('Raft term of the leader.'),
  members: { type: 'array', description: 'Raft members.', items: member, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['id'] },
  conditions: { type: 'array', description: 'Conditions.', items: condition, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] },
  selector: str('Label selector of the member pods (scale subresource).'),
  bootstrapped: bool('The initial members formed a cluster; fresh pods now join as learners.'),
  volumes: stringMap('PVC UID per member, to tell a replaced volume (lost data) from a restart.'),
});

export const CRD_NAME = `${PLURAL}.${GROUP}`;

export function customResourceDefinition(): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: CRD_NAME,
      // helm uninstall must not delete the CRD, which would delete every StegoCluster with it.
      annotations: { 'helm.sh/resource-policy': 'keep' },
      labels: { 'app.kubernetes.io/name': 'stegocluster', 'app.kubernetes.io/part-of': 'stegocluster' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: SINGULAR, shortNames: SHORT_NAMES, categories: ['all'] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: {
            status: {},
            scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' },
          },
          additionalPrinterColumns: [
            { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas', description: 'Desired members' },
            { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas', description: 'Ready members' },
            { name: 'Leader', type: 'string', jsonPath: '.status.leader', description: 'Raft leader' },
            { name: 'Term', type: 'integer', jsonPath: '.status.term', description: 'Raft term' },
            { name: 'Phase', type: 'string', jsonPath: '.status.phase', priority: 1 },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: 'A highly available PNG steganography cluster: Raft members in a StatefulSet behind an nginx front door.',
              'x-kubernetes-validations': [
                { rule: 'size(self.metadata.name) <= 40', message: 'metadata.name must be at most 40 characters (pod, Service and PVC names are derived from it)' },
              ],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: specSchema,
                status: statusSchema,
              },
            },
          },
        },
      ],
    },
  };
}
