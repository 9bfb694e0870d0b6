export { WorkerPool, PoolSaturatedError, WorkerCrashedError, PoolClosedError } from './pool.js';
export type { WorkerPoolOptions, PoolStats } from './pool.js';
export { StegoPool, DEFAULT_MAX_PIXELS } from './stego-pool.js';
export type { StegoPoolOptions, JobOptions, EmbedResult, CapacityResult } from './stego-pool.js';
export { WorkerJobError } from './protocol.js';
