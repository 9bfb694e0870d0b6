// The documented memory bound of a node holds under the attacks that used to break it: uploads that
// declare 45 MB, send part of it and stall, and clients that ask for a big object and never read it.
// A real node process; its RSS is sampled from /proc while the attack runs.
import { expect } from 'chai';
import { Cluster } from '../cluster/harness.js';
import { worstCaseMemoryBytes } from '../../src/http/http-config.js';
import { bigRandomPng, neverReadingDownload, RssSampler, rssOf, stalledUpload, targetOf } from './attacks.js';

const MiB = 1024 * 1024;
const BUDGET = 64 * MiB;
/** Allocator and GC slack on top of the formula (heap growth, socket buffers). */
const SLACK = 48 * MiB;

describe('memory bound of a node under stalled uploads and never-reading downloads', function () {
  this.timeout(120_000);
  let cluster: Cluster | undefined;

  after(async () => {
    await cluster?.stop();
  });

  it('stays within baseline + body budget: refusals are 503 memory_budget + Retry-After before the body, stalls are cut', async () => {
    cluster = await Cluster.start({
      size: 1,
      // a snapshot right after the put, so downloads read the object from the snapshot file (as any
      // object older than the last snapshot is), not from the log's buffer
      env: { STEGO_INFLIGHT_BODY_BYTES: String(BUDGET), STEGO_BODY_IDLE_TIMEOUT_MS: '3000', STEGO_WORKERS: '1', STEGO_SNAPSHOT_BYTES: '1024' },
    });
    const { leaderId } = await cluster.waitForLeader();
    const node = cluster.node(leaderId);
    const auth = { authorization: `Bearer ${cluster.apiToken}` };
    const png = await bigRandomPng(12 * MiB);
    const put = await cluster.request<{ id: string }>(leaderId, '/api/objects', { method: 'POST', body: png, headers: { 'content-type': 'image/png' }, timeoutMs: 30_000 });
    expect(put.status, JSON.stringify(put.body)).to.equal(201);
    const id = put.body.id;
    // warm up: one full download, then the idle baseline
    expect((await cluster.getObject(leaderId, id, { timeoutMs: 30_000 })).bytes!.length).to.equal(png.length);
    const pid = node.pid!;
    const baseline = rssOf(pid);
    const sampler = new RssSampler(() => [pid], 25);
    const target = targetOf(node.url);
    try {
      sampler.reset();
      const uploads = Array.from({ length: 16 }, () =>
        stalledUpload(target, { path: '/api/embed', declared: 45 * 1000 * 1000, send: 2_800_000, giveUpMs: 20_000 }),
      );
      const readers = Array.from({ length: 40 }, () => neverReadingDownload(target, `/api/objects/${id}`, auth, 8_000));
      const [up, down] = await Promise.all([Promise.all(uploads), Promise.all(readers)]);
      const peak = sampler.peak();
      const bound = worstCaseMemoryBytes({ baselineBytes: baseline, inflightBudgetBytes: BUDGET, workers: 0, maxPixels: 0 });
      const refused = up.filter((o) => o.status === 503);
      expect(refused.length, JSON.stringify(up)).to.be.at.least(14);
      for (const r of refused) {
        expect(r).to.include({ code: 'memory_budget' });
        expect(r.retryAfter).to.match(/^\d+$/);
      }
      const cut = up.filter((o) => o.status === 0);
      for (const c of cut) expect(c.ended, JSON.stringify(c)).to.not.equal('still open');
      const served = down.filter((d) => d.status === 200);
      expect(served.length).to.be.at.least(1);
      // each served reader held at most a window while it read nothing; whether it was cut (idle for the
      // timeout) or still being fed slowly depends on the machine: idle-download.test.ts checks the cut
      for (const d of served) expect(d.ended, JSON.stringify(d)).to.be.oneOf(['cut', 'complete']);
      expect(down.every((d) => d.status === 200 || d.status === 503)).to.equal(true);
      expect(peak, `peak ${(peak / MiB).toFixed(0)} MiB vs bound ${(bound / MiB).toFixed(0)} MiB (+${SLACK / MiB} slack), baseline ${(baseline / MiB).toFixed(0)} MiB`).to.be.at.most(bound + SLACK);
    } finally {
      sampler.stop();
    }
  });
});
