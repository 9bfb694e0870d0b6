// `node dist/node/test/chaos/summarize.js DIR...`: totals over the JSON files `npm run chaos -- --out DIR`
// wrote (one per run), as the markdown table docs/reliability.md records. Every history is checked again
// with the current checker, so a table is never older than the checker it claims.

import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Op } from './history.js';
import { checkHistory } from './linearizability.js';
import type { RunResult } from './run.js';

interface RunFile {
  result: RunResult;
  schedule: { kind: string }[];
  history: (Omit<Op, 'ret'> & { ret: number | null })[];
}

function main(): void {
  const dirs = process.argv.slice(2);
  const rows: string[] = [];
  const totals = { runs: 0, seconds: 0, ops: 0, checked: 0, ok: 0, unknown: 0, fail: 0, anomalies: 0, state: 0, acked: 0, ackedPuts: 0, lost: 0, timeouts: 0 };
  const faults: Record<string, number> = {};
  const findings: Record<string, number> = {};
  for (const dir of dirs) {
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
      const run = JSON.parse(readFileSync(join(dir, f), 'utf8')) as RunFile;
      const history: Op[] = run.history.map((o) => ({ ...o, ret: o.ret ?? Infinity }));
      const strict = checkHistory(history);
      const effects = checkHistory(history, { ignorePutResult: true });
      const r = run.result;
      const count = (o: Op['outcome']) => history.filter((h) => h.outcome === o).length;
      totals.runs++;
      totals.seconds += r.seconds;
      totals.ops += history.length;
      totals.checked += strict.opsChecked;
      totals.ok += count('ok');
      totals.unknown += count('unknown');
      totals.fail += count('fail');
      totals.anomalies += strict.anomalies.length;
      totals.state += effects.anomalies.length;
      totals.timeouts += strict.timeouts.length + effects.timeouts.length;
      totals.acked += r.ackedOnce;
      totals.ackedPuts += r.ackedPuts ?? 0;
      totals.lost += r.lost;
      for (const [k, v] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + v;
      const other = r.findings.filter((x) => x.check !== 'linearizability' && x.check !== 'put-response');
      for (const x of other) findings[x.check] = (findings[x.check] ?? 0) + 1;
      rows.push(`| ${basename(dir)} | ${r.nodes} | ${r.seed} | ${Object.keys(r.faults).length > 3 ? 'all' : Object.keys(r.faults).join(', ')} | ${history.length} | ${count('ok')} / ${count('unknown')} / ${count('fail')} | ${strict.opsChecked} | ${effects.anomalies.length} | ${strict.anomalies.length} | ${r.ackedOnce} | ${r.ackedPuts ?? '–'} | ${r.lost} | ${Object.values(r.faults).reduce((a, b) => a + b, 0)} | ${other.map((x) => x.check).join(', ') || '–'} |`);
    }
  }
  console.log('| set | nodes | seed | faults | ops | ok / unknown / fail | checked | anomalies (stored state) | anomalies (incl. put answers) | acked write-once | acked puts checked present | lost | faults injected | other findings |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(`\nTotals: ${totals.runs} runs, ${(totals.seconds / 60).toFixed(0)} min, ${totals.ops} operations (${totals.ok} ok, ${totals.unknown} unknown, ${totals.fail} failed), ${totals.checked} checked; ` +
    `anomalies of the stored state ${totals.state}, anomalies including put answers ${totals.anomalies}, checker budget exhausted ${totals.timeouts}; ` +
    `acknowledged write-once puts ${totals.acked}, acknowledged puts checked present at the end ${totals.ackedPuts}, lost ${totals.lost}.`);
  console.log(`Faults by kind: ${Object.entries(faults).sort().map(([k, v]) => `${k} ${v}`).join(', ')}.`);
  console.log(`Other findings: ${Object.entries(findings).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}.`);
}

main();
