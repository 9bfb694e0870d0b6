// kill -9 of every node at once, in the middle of a write load, then a cold restart from disk:
// every write the cluster acknowledged must still be there (fsync before acknowledging).

import { expect } from 'chai';
import { Cluster, dumpOnFailure } from './harness.js';
import { BackgroundWriter, verifyObjects } from './workload.js';

describe('cluster (3 processes): kill -9 of all nodes and restart', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  let writer: BackgroundWriter | undefined;

  before(async function () {
    this.timeout(60_000);
    cluster = await Cluster.start({ size: 3, env: { STEGO_SNAPSHOT_ENTRIES: '40' } });
  });
  afterEach(function () {
    dumpOnFailure(this, cluster);
  });
  after(async () => {
    await writer?.stop();
    await cluster?.stop();
  });

  for (const round of [1, 2]) {
    it(`round ${round}: keeps every acknowledged object across a simultaneous SIGKILL of all nodes`, async () => {
      await cluster.waitForLeader({ deadlineMs: 15_000 });
      const previous = writer ? [...writer.acked.values()] : [];
      writer = new BackgroundWriter(cluster, { concurrency: 6, tag: `crash${round}` }).start();
      await writer.waitForMoreAcks(30, 30_000);
      // Kill while requests are in flight: some writes die unacknowledged, which is allowed.
      const ids = cluster.allIds();
      await Promise.all(ids.map((id) => cluster.kill(id, 'SIGKILL')));
      await writer.stop();
      const acked = [...previous, ...writer.acked.values()];

      for (const id of ids) await cluster.restart(id);
      const { leaderId } = await cluster.waitForLeader({ deadlineMs: 20_000 });
      expect(await verifyObjects(cluster, leaderId, acked), `acknowledged objects on ${leaderId}`).to.deep.equal([]);
      for (const id of ids) {
        expect(await verifyObjects(cluster, id, acked), `linearizable reads on ${id}`).to.deep.equal([]);
        expect(await verifyObjects(cluster, id, acked, { stale: true }), `stale reads on ${id}`).to.deep.equal([]);
      }
      const list = await cluster.request<{ objects: { id: string }[] }>(leaderId, '/api/objects');
      const listed = new Set(list.body.objects.map((o) => o.id));
      const unlisted = acked.filter((a) => !listed.has(a.id)).map((a) => a.id);
      expect(unlisted, 'acknowledged objects missing from GET /api/objects').to.deep.equal([]);
      // Same state machine everywhere: every node lists exactly the same objects with the same metadata
      // (including writes that committed but whose acknowledgement died with the processes).
      const canonical = (objects: unknown[]) => JSON.stringify([...objects].sort((a, b) => ((a as { id: string }).id < (b as { id: string }).id ? -1 : 1)));
      const reference = canonical(list.body.objects);
      for (const id of ids) {
        const other = await cluster.request<{ objects: unknown[] }>(id, '/api/objects');
        expect(canonical(other.body.objects), `${id}'s object list equals ${leaderId}'s`).to.equal(reference);
      }
      await cluster.waitReady(ids, 15_000);
    });
  }
});
