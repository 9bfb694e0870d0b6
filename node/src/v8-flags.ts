// Imported first by main.ts: the node runs with the V8 flags below, each with its own opt-out.
//
// `--single-threaded-gc` (STEGO_GC=parallel opts out). V8 does much of a thread's garbage collection on the
// process's shared helper threads (parallel and concurrent marking, compaction, array-buffer sweeping),
// and a collection's final pause waits for the helpers to finish their share. The helpers run at nice 0;
// the consensus thread runs at nice -20 beside other nodes' consensus threads on the same cores. Measured
// in bench:isolation case (b) (16 MiB objects, `--trace-gc-nvp`): every large buffer the consensus thread
// receives pushes V8 toward a full collection of its ~12 MB heap (40-50 of them per 16 s case), and with
// the helpers starved their final pauses reached 60-110 ms (total 0.7-1.2 s per thread), almost all of it
// `mark.full_closure_parallel` waiting for helpers. With `--single-threaded-gc` the consensus thread does
// all of its collection itself, at its own priority: max pause 19 ms, total 0.29 s. The cost is that no
// thread of the node collects concurrently; their heaps are small (the large data lives in buffers).
//
// `--no-lazy --no-flush-bytecode` (STEGO_COMPILE=lazy opts out). V8 compiles a function when it is first
// called, and drops the bytecode of functions that have not run for a while. A follower has never run the
// leader's side of the driver, the transport and the request path, so the first writes after it wins an
// election paid for compiling them: in bench:failover, the first kill -9 of a fresh cluster took 105-129 ms
// to a new leader accepting writes (six runs) against 62-92 ms with every function compiled at start-up;
// a node's first write took 46-61 ms against 15-25 ms for the next ones. Compiling everything up front
// costs ~15 MB of memory per node, and three nodes starting at once on 2 cores were up in 2.5 s instead
// of 2.0 s; keeping the bytecode keeps that memory constant.
//
// V8 flags cannot be given in NODE_OPTIONS, and setting them at run time (`v8.setFlagsFromString`) before
// the workers start aborts V8 when the next isolate is created. So a node started without them replaces
// itself (execve: same PID, environment, arguments and open descriptors) with one started with them,
// before it has done anything else. Starting node with the flags itself skips that step.

/** The V8 flags a node runs with, for the given environment. */
export function wantedV8Flags(env: NodeJS.ProcessEnv): string[] {
  const flags: string[] = [];
  if (env['STEGO_GC'] !== 'parallel') flags.push('--single-threaded-gc');
  if (env['STEGO_COMPILE'] !== 'lazy') flags.push('--no-lazy', '--no-flush-bytecode');
  return flags;
}

const missing = wantedV8Flags(process.env).filter((f) => !process.execArgv.includes(f));
if (missing.length > 0 && typeof process.execve === 'function') {
  process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)], process.env);
}
