// Shared pieces of the desired-state builders: metadata with owner references, and the build context
// (settings of the operator's installation that are not part of a StegoCluster's spec).
import type { V1ObjectMeta, V1OwnerReference, V1ResourceRequirements } from '@kubernetes/client-node';
import { API_VERSION, KIND, type ResourceRequirements, type StegoCluster } from '../api/types.js';
import { commonLabels, refOf, type ClusterRef, type Component } from '../api/names.js';
import { IMAGE_DEFAULTS, type ImageDefaults } from '../api/defaults.js';

export interface BuildContext {
  /** DNS suffix of the cluster, for stable member addresses. */
  clusterDomain: string;
  /** Where the operator runs and the labels of its pods, so the NetworkPolicy lets it reach the members. */
  operatorNamespace: string;
  operatorPodLabels: Record<string, string>;
  /** Images for StegoClusters that name none (the chart's node.image and gateway.image). */
  images: ImageDefaults;
}

export const DEFAULT_CONTEXT: BuildContext = {
  clusterDomain: 'cluster.local',
  operatorNamespace: 'stego-system',
  operatorPodLabels: { 'app.kubernetes.io/name': 'stego-operator' },
  images: IMAGE_DEFAULTS,
};

/** Every owned object names its StegoCluster as controller, so deleting the cluster garbage-collects it. */
export function ownerReference(cr: StegoCluster): V1OwnerReference {
  if (!cr.metadata.uid) throw new Error(`StegoCluster ${cr.metadata.namespace}/${cr.metadata.name} has no uid yet`);
  return { apiVersion: API_VERSION, kind: KIND, name: cr.metadata.name, uid: cr.metadata.uid, controller: true, blockOwnerDeletion: true };
}

export function ownedMeta(cr: StegoCluster, name: string, component: Component, extraLabels: Record<string, string> = {}): V1ObjectMeta {
  return {
    name,
    namespace: cr.metadata.namespace,
    labels: { ...commonLabels(refOf(cr.metadata), component), ...extraLabels },
    ownerReferences: [ownerReference(cr)],
  };
}

export function ref(cr: StegoCluster): ClusterRef {
  return refOf(cr.metadata);
}

/** Quantities as the API's string form (the CRD accepts 1 as well as "1"). */
export function toResources(r: ResourceRequirements | undefined): { resources?: V1ResourceRequirements } {
  if (!r) return {};
  const strings = (m: Record<string, string | number> | undefined): Record<string, string> | undefined =>
    m ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)])) : undefined;
  const out: V1ResourceRequirements = {};
  const limits = strings(r.limits);
  const requests = strings(r.requests);
  if (limits) out.limits = limits;
  if (requests) out.requests = requests;
  return { resources: out };
}
