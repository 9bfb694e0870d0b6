// Public surface of the consensus core.
export * from './types.js';
export * from './errors.js';
export * from './message.js';
export * from './storage.js';
export * from './confchange.js';
export { RawNode, type Ready, type RaftStatus, type SoftState } from './rawnode.js';
export type { RaftConfig, ReadState, Role, UnsafeTestingKnobs } from './raft.js';
export type { PeerProgress, ProgressState } from './progress.js';
export { SeededRandom } from './rand.js';
