// Regression for a bug found by the chaos runs (docs/reliability.md, B1): the answer to
// `POST /api/objects` with an Idempotency-Key is read from the store *after* the put was applied
// (`ClusterService.putObject`: `store.get(id) ?? own metadata`). When the put was a no-op (the id already
// existed: first write wins) and a delete of that id is applied before the answer is built, the node
// answers 201 with the sha256 of the bytes *it was sent* — an object that was never stored. No fault is
// needed: contended puts and deletes of a few keys on a healthy 3-node cluster (loopback, no root).
// The history is checked with the linearizability checker; the test fails while the bug is open.

import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { objectIdForKey } from '../../src/cluster/service.js';
import { SeededRandom } from '../../src/raft/rand.js';
import { Cluster, dumpOnFailure } from '../cluster/harness.js';
import type { Op } from './history.js';
import { checkHistory, formatCounterExample } from './linearizability.js';
import { valuePng } from './client.js';

describe('chaos regression: put answers reflect the stored object (B1)', function () {
  this.timeout(180_000);
  let cluster: Cluster;
  before(async () => {
    cluster = await Cluster.start({ size: 3, startDeadlineMs: 90_000, logLevel: 'warn', env: { STEGO_WORKERS: '1' } });
  });
  after(async () => {
    await cluster?.stop();
  });
  afterEach(function () {
    dumpOnFailure(this, cluster);
  });

  it('contended put/delete/get on 2 keys for 20 s: the history is linearizable, put answers included', async () => {
    const history: Op[] = [];
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    const prefix = `b1-${Date.now()}`;
    const ids = cluster.allIds();
    let nextId = 0;
    const end = Date.now() + 20_000;
    await Promise.all(Array.from({ length: 8 }, async (_, c) => {
      const rnd = new SeededRandom(1000 + c);
      while (Date.now() < end) {
        const key = `k${rnd.int(2)}`;
        const node = cluster.node(ids[(c + rnd.int(3)) % ids.length]!);
        const roll = rnd.next();
        const op: Op = { id: nextId++, client: c, key, kind: roll < 0.5 ? 'put' : roll < 0.8 ? 'delete' : 'get', call: now(), ret: Infinity, outcome: 'unknown', node: node.id };
        history.push(op);
        const url = `${node.url}/api/objects${op.kind === 'put' ? '' : `/${objectIdForKey(`${prefix}-${key}`)}`}`;
        try {
          if (op.kind === 'put') {
            const png = valuePng(rnd);
            op.value = createHash('sha256').update(png).digest('hex');
            const res = await fetch(url, { method: 'POST', body: png, headers: { 'content-type': 'image/png', 'idempotency-key': `${prefix}-${key}` }, signal: AbortSignal.timeout(10_000) });
            const body = (await res.json()) as { sha256?: string };
            if (res.status === 201) Object.assign(op, { outcome: 'ok', result: body.sha256, ret: now() });
            else if (res.status < 500) Object.assign(op, { outcome: 'fail', ret: now() });
          } else if (op.kind === 'delete') {
            const res = await fetch(url, { method: 'DELETE', signal: AbortSignal.timeout(10_000) });
            await res.arrayBuffer();
            if (res.status === 204 || res.status === 404) Object.assign(op, { outcome: 'ok', result: res.status === 204, ret: now() });
            else if (res.status < 500) Object.assign(op, { outcome: 'fail', ret: now() });
          } else {
            const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
            const bytes = Buffer.from(await res.arrayBuffer());
            if (res.status === 200) Object.assign(op, { outcome: 'ok', result: createHash('sha256').update(bytes).digest('hex'), ret: now() });
            else if (res.status === 404) Object.assign(op, { outcome: 'ok', result: null, ret: now() });
            else Object.assign(op, { outcome: 'fail', ret: now() });
          }
        } catch {
          if (op.kind === 'get') Object.assign(op, { outcome: 'fail', ret: now() });
        }
      }
    }));
    const strict = checkHistory(history);
    const effects = checkHistory(history, { ignorePutResult: true });
    console.log(`      ${history.length} ops; anomalies: ${strict.anomalies.length} (stored state: ${effects.anomalies.length})`);
    for (const a of strict.anomalies.slice(0, 2)) console.log(formatCounterExample(a).replace(/^/gm, '      '));
    expect(effects.anomalies.map(formatCounterExample), 'the stored state is linearizable').to.deep.equal([]);
    expect(strict.anomalies.map(formatCounterExample), 'every put answer names the object actually stored').to.deep.equal([]);
  });
});
