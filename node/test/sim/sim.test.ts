import { expect } from 'chai';
import { votersFor } from './seeds.js';
import { InvariantViolation } from './checker.js';
import { runSeed, type SimResult } from './sim.js';

const CI_SEEDS = 1000;
const CI_STEPS = 400;

function runMany(first: number, count: number, steps: number): SimResult[] {
  const out: SimResult[] = [];
  for (let seed = first; seed < first + count; seed++) {
    try {
      out.push(runSeed({ seed, voters: votersFor(seed), steps }));
    } catch (e) {
      throw new Error(`seed ${seed} failed (replay: npm run sim -- --seeds 1 --start ${seed} --steps ${steps}): ${(e as Error).message}`, { cause: e });
    }
  }
  return out;
}

function sum(results: SimResult[], key: keyof SimResult): number {
  return results.reduce((s, r) => s + r[key], 0);
}

/** Runs seeds until one violates an invariant; returns its message, or null if all passed. */
function firstViolation(opts: { knobs: Record<string, boolean>; seeds: number }): string | null {
  for (let seed = 1; seed <= opts.seeds; seed++) {
    try {
      runSeed({ seed, voters: votersFor(seed), steps: 400, knobs: opts.knobs });
    } catch (e) {
      if (e instanceof InvariantViolation) return e.message;
      throw e;
    }
  }
  return null;
}

describe('deterministic simulation', function () {
  this.timeout(300_000);

  it(`keeps every safety invariant and recovers after healing over ${CI_SEEDS} seeded schedules`, () => {
    const results = runMany(1, CI_SEEDS, CI_STEPS);
    expect(results).to.have.length(CI_SEEDS);
    // The schedules must actually exercise the features, or passing means little.
    expect(sum(results, 'elections')).to.be.greaterThan(CI_SEEDS);
    expect(sum(results, 'commits')).to.be.greaterThan(CI_SEEDS * 10);
    expect(sum(results, 'crashes')).to.be.greaterThan(CI_SEEDS);
    expect(sum(results, 'snapshotsSent')).to.be.greaterThan(50);
    expect(sum(results, 'confChanges')).to.be.greaterThan(100);
    expect(sum(results, 'reads')).to.be.greaterThan(500);
    expect(sum(results, 'transfers')).to.be.greaterThan(50);
  });

  it('survives a few long schedules (3 and 5 voters, 4,000 steps)', () => {
    const results = runMany(100_001, 4, 4000);
    expect(sum(results, 'commits')).to.be.greaterThan(1000);
  });

  it('is deterministic: the same seed gives the same run', () => {
    expect(runSeed({ seed: 42, voters: 5, steps: 500 })).to.deep.equal(runSeed({ seed: 42, voters: 5, steps: 500 }));
  });

  it('catches a node that votes twice in a term (election safety)', () => {
    expect(firstViolation({ knobs: { voteTwice: true }, seeds: 200 })).to.match(/^election safety/);
  });

  it('catches ReadIndex answered without a heartbeat round (linearizability)', () => {
    expect(firstViolation({ knobs: { readWithoutQuorum: true }, seeds: 300 })).to.match(/not linearizable/);
  });

  it('catches votes granted to out-of-date candidates (leader completeness)', () => {
    expect(firstViolation({ knobs: { ignoreLogUpToDate: true }, seeds: 200 })).to.match(/leader completeness|state machine safety|log matching/);
  });
});
