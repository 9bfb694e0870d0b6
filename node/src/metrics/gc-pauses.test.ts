import { expect } from 'chai';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { observeGcPauses } from './gc-pauses.js';

describe('metrics: garbage-collection pauses', function () {
  it('records every collection of the thread by kind, and warns of none when they are short', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (opts?: { type: 'major' | 'minor' }) => void;
    const seen: { kind: string; seconds: number }[] = [];
    const warned: object[] = [];
    const observer = observeGcPauses({ observe: ({ kind }, seconds) => void seen.push({ kind, seconds }) }, { warn: (o) => void warned.push(o) });
    try {
      gc({ type: 'major' });
      gc({ type: 'minor' });
      // entries are delivered asynchronously
      for (let i = 0; i < 50 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    } finally {
      observer.disconnect();
    }
    expect(seen.map((s) => s.kind)).to.include.members(['major', 'minor']);
    for (const s of seen) expect(s.seconds).to.be.at.least(0).and.below(1);
    expect(warned.length).to.equal(seen.filter((s) => s.seconds >= 0.05).length);
  });
});
