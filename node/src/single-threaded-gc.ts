// Imported first by main.ts: the node runs with V8's `--single-threaded-gc`, unless STEGO_GC=parallel.
//
// Why: V8 does much of a thread's garbage collection on the process's shared helper threads (parallel
// and concurrent marking, compaction, array-buffer sweeping), and a collection's final pause waits for
// the helpers to finish their share. The helpers run at nice 0; the consensus thread runs at nice -20
// beside other nodes' consensus threads on the same cores. Measured in bench:isolation case (b) (16 MiB
// objects, `--trace-gc-nvp`): every large buffer the consensus thread receives pushes V8 toward a full
// collection of its ~12 MB heap (40-50 of them per 16 s case), and with the helpers starved their final
// pauses reached 60-110 ms (total 0.7-1.2 s per thread), almost all of it `mark.full_closure_parallel`
// waiting for helpers. With `--single-threaded-gc` the consensus thread does all of its collection itself,
// at its own priority: max pause 19 ms, total 0.29 s. The cost is that no thread of the node collects
// concurrently; their heaps are small (the large data lives in buffers, outside the heap).
//
// V8 flags cannot be given in NODE_OPTIONS, and setting them at run time (`v8.setFlagsFromString`) before
// the workers start aborts V8 when the next isolate is created. So a node started without the flag
// replaces itself (execve: same PID, environment, arguments and open descriptors) with one started with it,
// before it has done anything else. `node --single-threaded-gc dist/node/src/main.js` skips that step.
const FLAG = '--single-threaded-gc';

if (process.env['STEGO_GC'] !== 'parallel' && !process.execArgv.includes(FLAG) && typeof process.execve === 'function') {
  process.execve(process.execPath, [process.execPath, FLAG, ...process.execArgv, ...process.argv.slice(1)], process.env);
}

export {};
