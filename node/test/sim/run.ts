// CLI: npm run sim -- --seeds N [--start S] [--steps K] [--voters 3|5]
// Runs N seeded schedules and prints a summary; on a violation prints the seed and how to replay it.
import { votersFor } from './seeds.js';
import { runSeed, type SimResult } from './sim.js';

interface Args {
  seeds: number;
  start: number;
  steps: number;
  voters: number | undefined;
  /** A deliberate bug (UnsafeTestingKnobs key) to show the checker catching it. */
  inject: string | undefined;
}

const KNOBS = ['voteTwice', 'ignoreLogUpToDate', 'readWithoutQuorum'];

function parseArgs(argv: string[]): Args {
  const args: Args = { seeds: 100, start: 1, steps: 400, voters: undefined, inject: undefined };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = Number(argv[i + 1]);
    if (flag === '--help' || flag === '-h') {
      console.log(`usage: npm run sim -- [--seeds N (100)] [--start S (1)] [--steps K (400)] [--voters 3|5 (odd seeds 3, even 5)] [--inject ${KNOBS.join('|')}]`);
      process.exit(0);
    }
    if (flag === '--inject') {
      const knob = argv[i + 1] ?? '';
      if (!KNOBS.includes(knob)) throw new Error(`--inject needs one of ${KNOBS.join(', ')}`);
      args.inject = knob;
      i++;
      continue;
    }
    if (!Number.isInteger(value) || value < 0) throw new Error(`${flag} needs a non-negative integer`);
    if (flag === '--seeds') args.seeds = value;
    else if (flag === '--start') args.start = value;
    else if (flag === '--steps') args.steps = value;
    else if (flag === '--voters') args.voters = value;
    else throw new Error(`unknown flag ${flag}`);
    i++;
  }
  return args;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const total: Omit<SimResult, 'seed'> = { steps: 0, elections: 0, commits: 0, crashes: 0, snapshotsSent: 0, confChanges: 0, reads: 0, transfers: 0 };
  const started = Date.now();
  for (let seed = args.start; seed < args.start + args.seeds; seed++) {
    const voters = args.voters ?? votersFor(seed);
    let r: SimResult;
    try {
      r = runSeed({ seed, voters, steps: args.steps, ...(args.inject ? { knobs: { [args.inject]: true } } : {}) });
    } catch (e) {
      console.error(`FAILED seed ${seed} (${voters} voters, ${args.steps} steps): ${(e as Error).stack ?? String(e)}`);
      const inject = args.inject ? ` --inject ${args.inject}` : '';
      console.error(`replay: npm run sim -- --seeds 1 --start ${seed} --steps ${args.steps} --voters ${voters}${inject}`);
      process.exitCode = 1;
      return;
    }
    for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += r[k];
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `sim: ${args.seeds} seeds (${args.start}..${args.start + args.seeds - 1}) passed in ${secs}s: ${total.steps} steps, ` +
      `${total.elections} elections, ${total.commits} acknowledged writes, ${total.reads} linearizable reads, ${total.crashes} crashes, ` +
      `${total.snapshotsSent} snapshots sent, ${total.confChanges} conf changes, ${total.transfers} transfers`,
  );
}

main();
