// Imported first by main.ts, before anything touches the libuv threadpool. The pool is shared by every
// thread of the process: fsync of the raft log waits in the same queue as zlib deflate jobs of PNG
// encoding (png/ splits deflate across the pool) and file reads. With the default 4 threads a burst of
// uploads could park an fsync behind image work and stall consensus; a larger pool keeps a slot free.
const DEFAULT_SIZE = 16;

if (process.env.UV_THREADPOOL_SIZE === undefined || process.env.UV_THREADPOOL_SIZE === '') {
  process.env.UV_THREADPOOL_SIZE = String(DEFAULT_SIZE);
}

export {};
