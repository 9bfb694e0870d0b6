// A StegoCluster as the API server stores it (defaults filled), for the builder and controller tests.
import { withDefaults } from '../api/defaults.js';
import { API_VERSION, KIND, type DeepPartial, type StegoCluster, type StegoClusterSpec } from '../api/types.js';

export function testCluster(spec: DeepPartial<StegoClusterSpec> = {}, name = 'demo', namespace = 'prod'): StegoCluster {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace, uid: '0b6f6f1e-3c4d-4c55-9a8e-1f2d3c4b5a69', generation: 1, resourceVersion: '100' },
    spec: withDefaults(spec),
  };
}
