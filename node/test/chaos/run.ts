// `npm run chaos -- --nodes 5 --duration 120 --seed 7`: one or more chaos runs on real node processes in
// network namespaces. Prints a report per run and a total; exits 1 when any check fails.
//
//   --nodes N           cluster size (3 or 5; default 3)
//   --duration S        seconds of faults per run (default 60)
//   --seed S | --seeds A..B   schedule and workload seed(s) (default 1)
//   --faults k1,k2      fault kinds (default: all; see nemesis.ts FAULT_KINDS)
//   --clients C         concurrent clients (default 2 × nodes)
//   --keys K            contended register keys (default 6)
//   --fault-ms A..B     fault window length (default 2000..7000)
//   --quiet-ms A..B     quiet window after each heal (default 1500..4000)
//   --out DIR           write each run's history, schedule and findings as JSON into DIR
//   --keep              keep data dirs of failing runs (paths printed)
// Environment: CHAOS_VERBOSE=1 (print nemesis events); any STEGO_* variable is passed to the nodes. The
// cluster generates its API token (scopes read, write, delete; no rate limit or quota), hands it to the
// nodes in a token file and to every client as a bearer token.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ChaosCluster } from './cluster.js';
import { Workload } from './client.js';
import { describeOp } from './history.js';
import { checkDisk, checkState, Monitor, type Finding } from './invariants.js';
import { checkHistory, formatCounterExample } from './linearizability.js';
import { FAULT_KINDS, makeSchedule, Nemesis, type FaultKind } from './nemesis.js';

export interface RunOptions {
  nodes: number;
  durationS: number;
  seed: number;
  faults: FaultKind[];
  clients: number;
  keys: number;
  out?: string;
  keep?: boolean;
  /** Seconds of fault-free load after the last fault. */
  settleS?: number;
  faultMs?: [number, number];
  quietMs?: [number, number];
}

export interface RunResult {
  seed: number;
  nodes: number;
  ok: boolean;
  ops: Record<string, number>;
  opsTotal: number;
  faults: Record<string, number>;
  anomalies: number;
  /** Anomalies that remain when put answers are ignored: the stored state itself is not linearizable. */
  stateAnomalies: number;
  findings: Finding[];
  lost: number;
  ackedOnce: number;
  /** Acknowledged puts found present at the end (write-once, and register puts no delete touched). */
  ackedPuts: number;
  objects: number;
  checkedOps: number;
  hardStates: number;
  livenessRestarts: number;
  seconds: number;
}

export async function chaosRun(o: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const schedule = makeSchedule({ seed: o.seed, durationMs: o.durationS * 1000, kinds: o.faults, faultMs: o.faultMs, quietMs: o.quietMs });
  const cluster = await ChaosCluster.start({
    nodes: o.nodes,
    // small snapshot thresholds, by size and by time, so snapshots (and their streaming) happen under faults
    env: { STEGO_SNAPSHOT_ENTRIES: '400', STEGO_SNAPSHOT_TRAILING_ENTRIES: '100', STEGO_SNAPSHOT_INTERVAL_MS: '5000' },
  });
  const findings: Finding[] = [];
  const workload = new Workload(cluster, { clients: o.clients, registerKeys: o.keys, seed: o.seed, keyPrefix: `chaos-${o.seed}-${started}` });
  const now = () => workload.now();
  const monitor = new Monitor(cluster, findings, now);
  const nemesis = new Nemesis(cluster, schedule, now);
  let failed = false;
  try {
    monitor.start();
    workload.start();
    await nemesis.run();
    await nemesis.healAll();
    // load continues while the cluster recovers from the last fault
    await new Promise((r) => setTimeout(r, (o.settleS ?? 3) * 1000));
    await workload.stop();
    // final linearizable read of every register key's current object, part of the checked history
    // generous: on a shared machine at load 40, a restarted node takes tens of seconds to answer HTTP
    const { leader } = await cluster.waitForLeader(120_000);
    for (const key of workload.registerKeyNames()) {
      const op = await workload.get(-1, cluster.member(leader), key);
      if (op.outcome !== 'ok') findings.push({ check: 'final-read', detail: `final read of ${key} failed: ${op.detail}` });
    }
    const state = await checkState(cluster, workload, findings);
    await monitor.stop();
    const lin = checkHistory(workload.history);
    // an anomaly that disappears when put answers are not checked is in the put response alone (the
    // state stayed linearizable): reported apart, so it cannot hide an anomaly of the stored state
    const effects = lin.ok ? lin : checkHistory(workload.history, { ignorePutResult: true });
    const stateKeys = new Set(effects.anomalies.map((a) => a.key));
    for (const a of lin.anomalies) {
      const check = stateKeys.has(a.key) ? 'linearizability' : 'put-response';
      findings.push({ check, detail: `${formatCounterExample(a)}\n${scheduleAround(nemesis.events, a.ops)}` });
    }
    for (const a of effects.anomalies) {
      if (!lin.anomalies.some((x) => x.key === a.key)) findings.push({ check: 'linearizability', detail: formatCounterExample(a) });
    }
    for (const k of new Set([...lin.timeouts, ...effects.timeouts])) findings.push({ check: 'linearizability', detail: `key ${k}: search budget exhausted (not a pass)` });
    await cluster.stop();
    const disk = checkDisk([...cluster.members.values(), ...cluster.retired], findings);
    const result: RunResult = {
      seed: o.seed,
      nodes: o.nodes,
      ok: findings.length === 0,
      ops: workload.summary(),
      opsTotal: workload.history.length,
      faults: Object.fromEntries(nemesis.counts),
      anomalies: lin.anomalies.length,
      stateAnomalies: effects.anomalies.length,
      findings,
      lost: state.lost,
      ackedOnce: state.ackedOnce,
      ackedPuts: state.ackedPuts,
      objects: state.objects,
      checkedOps: lin.opsChecked,
      hardStates: disk.hardStates,
      livenessRestarts: monitor.livenessRestarts,
      seconds: (Date.now() - started) / 1000,
    };
    failed = !result.ok;
    if (o.out) {
      mkdirSync(o.out, { recursive: true });
      const history = workload.history.map(({ ...op }) => ({ ...op, body: undefined, ret: Number.isFinite(op.ret) ? op.ret : null }));
      writeFileSync(join(o.out, `chaos-n${o.nodes}-seed${o.seed}.json`), JSON.stringify({ result, schedule, events: nemesis.events, history }, null, 1));
    }
    return result;
  } catch (err) {
    failed = true;
    throw new Error(`seed ${o.seed}: ${(err as Error).message}\nnemesis events:\n${nemesis.events.slice(-15).map((e) => `  ${e.t.toFixed(0)} ${e.kind} ${e.detail}`).join('\n')}\n${cluster.dumpLogs()}`, { cause: err });
  } finally {
    nemesis.stop();
    // after a failure the clients are still looping: stop them before the nodes go
    await Promise.race([workload.stop(), new Promise((r) => setTimeout(r, 10_000))]);
    await monitor.stop();
    await cluster.stop();
    if (failed && o.keep) console.error(`data dirs kept in ${cluster.root}`);
    cluster.destroySync(failed && o.keep);
  }
}

function scheduleAround(events: Nemesis['events'], ops: { call: number; ret: number }[]): string {
  if (ops.length === 0) return '';
  const from = Math.min(...ops.map((o) => o.call)) - 5_000;
  const to = Math.max(...ops.map((o) => (Number.isFinite(o.ret) ? o.ret : o.call))) + 1_000;
  const lines = events.filter((e) => e.t >= from && e.t <= to).map((e) => `    ${e.t.toFixed(0)} ms ${e.kind} ${e.detail}`);
  return lines.length ? `  nemesis during the witness:\n${lines.join('\n')}` : '  no nemesis event during the witness';
}

export function printResult(r: RunResult): void {
  const faults = Object.entries(r.faults).map(([k, v]) => `${k}×${v}`).join(' ');
  console.log(`seed ${r.seed} (${r.nodes} nodes, ${r.seconds.toFixed(0)} s): ${r.ok ? 'OK' : 'FAILED'} — ${r.opsTotal} ops (${Object.entries(r.ops).map(([k, v]) => `${k} ${v}`).join(', ')}), ` +
    `${r.checkedOps} checked, anomalies ${r.anomalies} (of the stored state ${r.stateAnomalies}), acked write-once ${r.ackedOnce}, acked puts checked present ${r.ackedPuts}, lost ${r.lost}, objects ${r.objects}, hard states read ${r.hardStates}, liveness restarts ${r.livenessRestarts}; faults: ${faults}`);
  for (const f of r.findings) console.log(`  [${f.check}] ${f.detail}`);
}

function range(v: string | undefined): [number, number] | undefined {
  const m = v ? /^(\d+)\.\.(\d+)$/.exec(v) : null;
  if (v && !m) throw new Error(`expected MIN..MAX milliseconds, got ${v}`);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function parseSeeds(v: string | undefined, single: string | undefined): number[] {
  if (v) {
    const m = /^(\d+)\.\.(\d+)$/.exec(v);
    if (m) return Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, (_, i) => Number(m[1]) + i);
    return v.split(',').map(Number);
  }
  return [Number(single ?? 1)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '3' },
      duration: { type: 'string', default: '60' },
      seed: { type: 'string' },
      seeds: { type: 'string' },
      faults: { type: 'string' },
      clients: { type: 'string' },
      keys: { type: 'string', default: '6' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      settle: { type: 'string', default: '3' },
      'fault-ms': { type: 'string' },
      'quiet-ms': { type: 'string' },
    },
  });
  const nodes = Number(values.nodes);
  const faults = (values.faults ? values.faults.split(',') : [...FAULT_KINDS]) as FaultKind[];
  for (const f of faults) if (!FAULT_KINDS.includes(f)) throw new Error(`unknown fault kind ${f}; known: ${FAULT_KINDS.join(', ')}`);
  const results: RunResult[] = [];
  for (const seed of parseSeeds(values.seeds, values.seed)) {
    const r = await chaosRun({
      nodes,
      durationS: Number(values.duration),
      seed,
      faults,
      clients: Number(values.clients ?? nodes * 2),
      keys: Number(values.keys),
      out: values.out,
      keep: values.keep,
      settleS: Number(values.settle),
      faultMs: range(values['fault-ms']),
      quietMs: range(values['quiet-ms']),
    });
    printResult(r);
    results.push(r);
  }
  const sum = (f: (r: RunResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const faultTotals: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.faults)) faultTotals[k] = (faultTotals[k] ?? 0) + v;
  console.log(`TOTAL ${results.length} runs, ${sum((r) => r.opsTotal)} ops, ${sum((r) => r.checkedOps)} checked, anomalies ${sum((r) => r.anomalies)}, ` +
    `findings ${sum((r) => r.findings.length)}, acknowledged write-once ${sum((r) => r.ackedOnce)}, lost ${sum((r) => r.lost)}; faults ${JSON.stringify(faultTotals)}`);
  process.exitCode = results.every((r) => r.ok) ? 0 : 1;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().then(
    () => process.exit(),
    (err) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
export { describeOp };
