// `npm run reliability:ci`: the bounded reliability run for CI (a few minutes, fixed seeds). Needs root
// (network namespaces, iptables, mounts) and the schemathesis venv (`npm run fuzz:setup`).
//   1. chaos: a 3-node and a 5-node run with every fault kind, and kill-all durability runs
//   2. regression schedules of bugs found by chaos runs (docs/reliability.md, "Bugs found")
//   3. disk faults (full disk, frozen filesystem: *.chaos.ts)
//   4. fuzzers on a short budget: HTTP (fast-check), PNG/frame, Raft port, schemathesis
// Prints one line per step and exits 1 if any failed. CI_CHAOS_SCALE multiplies the chaos durations.
// Every cluster generates its API token and every client sends it (cluster.ts), so the object routes are
// exercised, not answered 401. About 7 minutes on 2 cores (docs/reliability.md, "CI").

import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from './cluster.js';
import { FAULT_KINDS, type FaultKind } from './nemesis.js';
import { chaosRun, printResult } from './run.js';

const scale = Number(process.env.CI_CHAOS_SCALE ?? 1);

interface ChaosStep {
  name: string;
  nodes: number;
  durationS: number;
  seeds: number[];
  faults: readonly FaultKind[];
  faultMs?: [number, number];
  quietMs?: [number, number];
}

export const CI_CHAOS: ChaosStep[] = [
  { name: 'chaos 3 nodes, all faults', nodes: 3, durationS: 40, seeds: [1], faults: FAULT_KINDS },
  { name: 'chaos 5 nodes, all faults', nodes: 5, durationS: 40, seeds: [2], faults: FAULT_KINDS },
  // short outages, long quiet windows: most writes land between crashes, every crash hits writes in flight
  { name: 'durability: SIGKILL every node mid-write', nodes: 3, durationS: 30, seeds: [11, 12], faults: ['kill-all'], faultMs: [300, 1_000], quietMs: [4_000, 7_000] },
  // regression schedule: leader paused across its fsync deadline, put answers raced by deletes (open bugs)
  { name: 'regression: pause-leader seed 2', nodes: 3, durationS: 30, seeds: [2], faults: ['pause-leader'] },
];

async function main(): Promise<void> {
  const outcomes: { name: string; ok: boolean; detail: string }[] = [];
  for (const step of CI_CHAOS) {
    for (const seed of step.seeds) {
      try {
        const r = await chaosRun({ nodes: step.nodes, durationS: Math.round(step.durationS * scale), seed, faults: [...step.faults], clients: step.nodes * 2, keys: 6, faultMs: step.faultMs, quietMs: step.quietMs });
        printResult(r);
        outcomes.push({ name: `${step.name} (seed ${seed})`, ok: r.ok, detail: r.findings.map((f) => f.check).join(', ') });
      } catch (err) {
        console.error((err as Error).message.split('\n').slice(0, 30).join('\n'));
        outcomes.push({ name: `${step.name} (seed ${seed})`, ok: false, detail: (err as Error).message.split('\n')[0]! });
      }
    }
  }
  const mocha = (name: string, files: string[], env: Record<string, string>) => {
    const r = spawnSync(process.execPath, [`${REPO_ROOT}/node_modules/mocha/bin/mocha.js`, ...files], { cwd: REPO_ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
    outcomes.push({ name, ok: r.status === 0, detail: r.status === 0 ? '' : `mocha exited ${r.status}` });
  };
  mocha('disk faults and chaos regressions', ['dist/node/test/chaos/*.chaos.js'], {});
  mocha('fuzz (short budget)', ['dist/node/test/fuzz/*.fuzz.js'], { FUZZ_RUNS: '200', SCHEMATHESIS_SECONDS: '30' });
  console.log('\nreliability:ci summary');
  for (const o of outcomes) console.log(`  ${o.ok ? 'ok  ' : 'FAIL'} ${o.name}${o.detail ? ` — ${o.detail}` : ''}`);
  // the closing line CI sums (each step counts once: a chaos run, or a whole mocha file set)
  const passed = outcomes.filter((o) => o.ok).length;
  console.log(`${passed} passed, ${outcomes.length - passed} failed`);
  process.exitCode = outcomes.every((o) => o.ok) ? 0 : 1;
}

main().then(
  () => process.exit(),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
