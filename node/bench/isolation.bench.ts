// bench:isolation — the five "leadership holds" load cases at full size on a real 3-node cluster on this
// machine (default timings), aimed at the leader's port and then at a follower's. Prints per case: leader
// changes, no_leader answers, consensus event-loop delay p50/p99, heartbeat RTT p99, client p50/p99 and
// the peak RSS of any node.
//
//   npm run bench:isolation -- [--cases a,b,c,d,e] [--targets leader,follower] [--scale 1]
//
// --scale < 1 shrinks the sizes and durations (not the concurrency) for a quick look. STEGO_ISO_DUMP=FILE
// writes every node's whole log there at the end (snapshots, installs, links: what preceded an election).
// --cpu-prof DIR starts the nodes with `--cpu-prof` and stops them gracefully at the end, so every thread
// of every node (the consensus thread included) writes its CPU profile to DIR.

import { loadavg } from 'node:os';
import { FULL_SIZES, formatResults, runIsolationCases, type CaseName, type CaseSizes } from '../test/cluster/isolation.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const scale = Number(arg('scale', '1'));
const sizes: CaseSizes = {
  ...FULL_SIZES,
  smallSeconds: Math.max(5, Math.round(FULL_SIZES.smallSeconds * scale)),
  catchUpBytes: Math.round(FULL_SIZES.catchUpBytes * scale),
};
const cases = arg('cases', 'a,b,c,d,e').split(',') as CaseName[];
const targets = arg('targets', 'leader,follower').split(',') as ('leader' | 'follower')[];
const cpuProfDir = arg('cpu-prof', '');

const started = new Date();
process.stdout.write(`bench:isolation ${started.toISOString()} load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} scale ${scale}\n`);
const results = await runIsolationCases({
  sizes,
  cases,
  targets,
  // the 45 MB object must fit; nothing else is changed from the defaults
  env: {
    STEGO_MAX_OBJECT_BYTES: String(64 * 1024 * 1024),
    ...(cpuProfDir ? { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --cpu-prof --cpu-prof-dir=${cpuProfDir}`.trim() } : {}),
  },
  stopGracefully: cpuProfDir !== '',
  log: (l) => process.stdout.write(`${l}\n`),
});
process.stdout.write(`\n${formatResults(results)}\n`);
// the goals, judged here (latency is measured by this benchmark, not asserted by a timed test)
const held = results.every((r) => r.leaderChanges === 0 && r.noLeader === 0);
const loopWorst = Math.max(...results.map((r) => r.loopDelayP99Ms));
const rttWorst = Math.max(...results.map((r) => r.heartbeatRttP99Ms));
const verdict = (ok: boolean): string => (ok ? 'MET' : 'NOT MET');
process.stdout.write(`goal 0 leader changes and 0 no_leader in every case: ${verdict(held)}\n`);
process.stdout.write(`goal consensus loop delay p99 < 20 ms in every case (worst ${loopWorst.toFixed(1)} ms): ${verdict(loopWorst < 20)}\n`);
process.stdout.write(`goal heartbeat RTT p99 < 50 ms in every case (worst ${rttWorst.toFixed(1)} ms): ${verdict(rttWorst < 50)}\n`);
process.stdout.write(`done in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
