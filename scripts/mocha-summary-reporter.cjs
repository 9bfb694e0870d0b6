// Spec output while running, then one closing line "N passed, N failed" that CI reads.
'use strict';
const Mocha = require('mocha');
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      // Printed after Spec's epilogue so it is the last line of the run.
      process.nextTick(() => {
        const skipped = s.pending ? `, ${s.pending} skipped` : '';
        console.log(`${s.passes} passed, ${s.failures} failed${skipped}`);
      });
    });
  }
}
module.exports = SpecWithSummary;
