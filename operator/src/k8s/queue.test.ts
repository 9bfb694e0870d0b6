import { expect } from 'chai';
import { WorkQueue } from './queue.js';

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('operator/k8s: work queue', () => {
  it('queues a key once and never runs it twice at the same time; an add while running re-runs it after', async () => {
    const q = new WorkQueue({ workers: 4 });
    let concurrent = 0;
    let maxConcurrent = 0;
    const runs: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    q.start(async (key) => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      runs.push(key);
      if (runs.length === 1) await gate;
      concurrent--;
    });
    q.add('a');
    await until(() => runs.length === 1);
    q.add('a');
    q.add('a');
    expect(q.depth).to.equal(0);
    release();
    await until(() => runs.length === 2);
    await new Promise((r) => setTimeout(r, 30));
    expect(runs).to.deep.equal(['a', 'a']);
    expect(maxConcurrent).to.equal(1);
    await q.shutdown();
  });

  it('backs off exponentially per key and forget resets it', () => {
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000 });
    expect([1, 2, 3, 4, 5].map(() => q.addRateLimited('k'))).to.deep.equal([100, 200, 400, 800, 1000]);
    expect(q.addRateLimited('other')).to.equal(100);
    q.forget('k');
    expect(q.addRateLimited('k')).to.equal(100);
    void q.shutdown();
  });

  it('addAfter keeps the earliest pending time', async () => {
    const q = new WorkQueue();
    const runs: number[] = [];
    const t0 = Date.now();
    q.start(async () => {
      runs.push(Date.now() - t0);
    });
    q.addAfter('k', 40);
    q.addAfter('k', 5000);
    await until(() => runs.length === 1);
    expect(runs[0]).to.be.below(1000);
    await q.shutdown();
  });

  it('shutdown waits for the running handler', async () => {
    const q = new WorkQueue();
    let finished = false;
    q.start(async () => {
      await new Promise((r) => setTimeout(r, 50));
      finished = true;
    });
    q.add('k');
    await until(() => q.depth === 0);
    await q.shutdown();
    expect(finished).to.equal(true);
  });
});
