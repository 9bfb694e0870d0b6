// The cluster routes mounted in the HTTP app, over an in-process 3-node cluster (real core, log, transport
// twin, worker pool): what a client sees over HTTP.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { PNG } from 'pngjs';
import { createRegistry } from '../../metrics/registry.js';
import { silentLogger } from '../../log.js';
import { StegoPool } from '../../workers/stego-pool.js';
import { createApp } from '../app.js';
import { httpConfig } from '../http-config.js';
import { pollUntil, TestCluster } from '../../cluster/test-cluster.js';
import { adminRouter } from './admin.js';
import { clusterFront, clusterRouter } from './cluster.js';
import { objectsRouter } from './objects.js';

const TOKEN = 'admin-secret';

function coverPng(): Buffer {
  const png = new PNG({ width: 64, height: 64 });
  for (let i = 0; i < png.data.length; i++) png.data[i] = (i * 7) & 0xff;
  return PNG.sync.write(png);
}

function form(fields: Record<string, string>, file?: Buffer): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  if (file) f.append('file', new Blob([file], { type: 'image/png' }), 'cover.png');
  return f;
}

describe('http: /api/objects, /cluster/status, /readyz, /admin over an in-process cluster', function () {
  let c: TestCluster;
  let pool: StegoPool;
  const servers = new Map<string, Server>();
  const url = (id: string): string => `http://127.0.0.1:${(servers.get(id)!.address() as AddressInfo).port}`;

  before(async () => {
    c = await TestCluster.start({ maxObjectBytes: 64 * 1024 });
    pool = new StegoPool({ size: 1 });
    for (const m of c.members.values()) {
      const config = httpConfig({ bodyLimitBytes: 1 << 20 });
      const app = createApp({
        pool,
        config,
        logger: silentLogger(),
        registry: createRegistry({ defaultMetrics: false }),
        extraRouters: [clusterRouter(m.service), objectsRouter({ service: m.service, pool, config }), adminRouter(m.service, TOKEN)],
      });
      const s = createServer(clusterFront(m.node, app.callback())).listen(0, '127.0.0.1');
      await new Promise((r) => s.once('listening', r));
      servers.set(m.id, s);
    }
    await c.waitForLeader();
  });

  after(async () => {
    for (const s of servers.values()) s.close();
    await pool.close();
    await c.stop();
  });

  it('POST image/png stores a finished stego image byte for byte; truncated, non-PNG and oversized bodies are 4xx', async () => {
    const leader = await c.waitForLeader();
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    const png = coverPng();
    const post = (body: Buffer): Promise<Response> =>
      fetch(`${url(follower)}/api/objects`, { method: 'POST', headers: { 'content-type': 'image/png' }, body });
    const res = await post(png);
    expect(res.status).to.equal(201);
    const body = (await res.json()) as { id: string; sha256: string; size: number };
    expect(body.size).to.equal(png.length);
    expect(body.sha256).to.equal(createHash('sha256').update(png).digest('hex'));
    const got = await fetch(`${url(leader)}/api/objects/${body.id}`);
    expect(Buffer.from(await got.arrayBuffer()).equals(png)).to.equal(true);

    const truncated = await post(png.subarray(0, png.length - 20));
    expect(truncated.status).to.equal(422);
    expect(((await truncated.json()) as { error: { code: string } }).error.code).to.equal('corrupt_png');
    const notPng = await post(Buffer.from('definitely not a png'));
    expect(notPng.status).to.equal(415);
    const big = Buffer.concat([png, randomBytes(64 * 1024)]);
    const tooBig = await post(big);
    expect(tooBig.status).to.equal(413);
    expect(((await tooBig.json()) as { error: { code: string } }).error.code).to.equal('object_too_large');
  });

  it('an Idempotency-Key makes a retried write answer with the first object instead of storing a duplicate', async () => {
    const leader = await c.waitForLeader();
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    const key = `retry-${randomBytes(6).toString('hex')}`;
    const post = async (node: string, message: string): Promise<{ id: string; sha256: string }> => {
      const res = await fetch(`${url(node)}/api/objects`, { method: 'POST', body: form({ message }, coverPng()), headers: { 'Idempotency-Key': key } });
      expect(res.status).to.equal(201);
      return (await res.json()) as { id: string; sha256: string };
    };
    const first = await post(follower, 'first attempt');
    const retry = await post(leader, 'second attempt, other node');
    expect(retry).to.deep.equal(first);
    const list = (await (await fetch(`${url(leader)}/api/objects`)).json()) as { objects: { id: string }[] };
    expect(list.objects.filter((o) => o.id === first.id)).to.have.length(1);
    const bad = await fetch(`${url(leader)}/api/objects`, { method: 'POST', body: form({ message: 'x' }, coverPng()), headers: { 'Idempotency-Key': 'sp ace' } });
    expect(bad.status).to.equal(400);
  });

  it('POST on a follower embeds there, commits through the leader and answers 201 {id, sha256, size}', async () => {
    const leader = await c.waitForLeader();
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    const res = await fetch(`${url(follower)}/api/objects`, { method: 'POST', body: form({ message: 'hello cluster' }, coverPng()) });
    expect(res.status).to.equal(201);
    expect(res.headers.get('x-stego-node')).to.equal(follower);
    expect(res.headers.get('x-stego-leader')).to.equal(leader);
    const body = (await res.json()) as { id: string; sha256: string; size: number };
    expect(body.id).to.match(/^[0-9a-f-]{36}$/);
    expect(body.sha256).to.match(/^[0-9a-f]{64}$/);

    for (const id of ['n1', 'n2', 'n3']) {
      const got = await fetch(`${url(id)}/api/objects/${body.id}`);
      expect(got.status).to.equal(200);
      expect(got.headers.get('content-type')).to.equal('image/png');
      const bytes = Buffer.from(await got.arrayBuffer());
      expect(bytes.length).to.equal(body.size);
      const stale = await fetch(`${url(id)}/api/objects/${body.id}?stale=true`);
      expect(stale.status).to.equal(200);
    }
    // the stored object really carries the message
    const png = Buffer.from(await (await fetch(`${url(leader)}/api/objects/${body.id}`)).arrayBuffer());
    const extracted = await fetch(`${url(leader)}/api/extract`, { method: 'POST', body: form({}, png) });
    expect(await extracted.json()).to.deep.equal({ message: 'hello cluster' });

    const list = (await (await fetch(`${url(follower)}/api/objects`)).json()) as { objects: { id: string; created_at: string }[] };
    expect(list.objects.map((o) => o.id)).to.include(body.id);
    expect(Number.isNaN(Date.parse(list.objects[0]!.created_at))).to.equal(false);

    const del = await fetch(`${url(follower)}/api/objects/${body.id}`, { method: 'DELETE' });
    expect(del.status).to.equal(204);
    const again = await fetch(`${url(leader)}/api/objects/${body.id}`, { method: 'DELETE' });
    expect(again.status).to.equal(404);
    expect(((await again.json()) as { error: { code: string } }).error.code).to.equal('not_found');
  });

  it('refuses an object over STEGO_MAX_OBJECT_BYTES with 413 JSON, and bad input with 4xx', async () => {
    const big = new PNG({ width: 256, height: 256 });
    randomBytes(big.data.length).copy(big.data);
    const res = await fetch(`${url('n1')}/api/objects`, { method: 'POST', body: form({ message: 'x' }, PNG.sync.write(big)) });
    expect(res.status).to.equal(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('object_too_large');
    const notPng = await fetch(`${url('n1')}/api/objects`, { method: 'POST', body: form({ message: 'x' }, Buffer.from('hello')) });
    expect(notPng.status).to.equal(415);
    const missing = await fetch(`${url('n1')}/api/objects/does-not-exist`);
    expect(missing.status).to.equal(404);
  });

  it('/cluster/status has the contract shape and /readyz is 200 on a caught-up member', async () => {
    const leader = await c.waitForLeader();
    const st = (await (await fetch(`${url('n2')}/cluster/status`)).json()) as Record<string, unknown> & { nodes: Record<string, unknown>[] };
    expect(st).to.include.keys('node_id', 'term', 'leader_id', 'commit_index', 'applied_index', 'nodes');
    expect(st.leader_id).to.equal(leader);
    expect(st.nodes.map((n) => n.id)).to.deep.equal(['n1', 'n2', 'n3']);
    for (const n of st.nodes) expect(n).to.include.keys('id', 'role', 'healthy', 'voter', 'raft_address');
    const lst = (await (await fetch(`${url(leader)}/cluster/status`)).json()) as { nodes: Record<string, unknown>[] };
    expect(lst.nodes.filter((n) => n.id !== leader).every((n) => typeof n.match_index === 'number')).to.equal(true);
    await pollUntil('readyz', 5000, async () => (await fetch(`${url('n3')}/readyz`)).status === 200);
  });

  it('admin endpoints need the bearer token', async () => {
    const none = await fetch(`${url('n1')}/admin/transfer-leadership`, { method: 'POST' });
    expect(none.status).to.equal(401);
    const wrong = await fetch(`${url('n1')}/admin/members/n2`, { method: 'DELETE', headers: { Authorization: 'Bearer nope' } });
    expect(wrong.status).to.equal(401);
    const bad = await fetch(`${url('n1')}/admin/members`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'n4' }),
    });
    expect(bad.status).to.equal(400);
    const leader = await c.waitForLeader();
    const target = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    const moved = await fetch(`${url(target)}/admin/transfer-leadership`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: target }),
    });
    expect(moved.status).to.equal(200);
    expect(await moved.json()).to.deep.equal({ leader_id: target });
  });

  it('without a quorum: 503 with Retry-After, and /readyz 503', async () => {
    const leader = await c.waitForLeader();
    const others = ['n1', 'n2', 'n3'].filter((id) => id !== leader);
    c.net.partition([leader], others);
    try {
      await pollUntil('isolated leader to step down', 5000, () => !c.member(leader).node.isLeader);
      const res = await fetch(`${url(leader)}/api/objects/whatever`);
      expect(res.status).to.equal(503);
      expect(res.headers.get('retry-after')).to.equal('1');
      expect((await fetch(`${url(leader)}/readyz`)).status).to.equal(503);
    } finally {
      c.net.heal();
    }
  });

  it('every response names node and leader; after a storage failure /healthz is 503 on that node only', async () => {
    const leader = await c.waitForLeader();
    const embed = await fetch(`${url(leader)}/healthz`);
    expect(embed.headers.get('x-stego-node')).to.equal(leader);
    expect(embed.headers.get('x-stego-leader')).to.equal(leader);
    const sick = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    c.member(sick).faults.fail = true;
    await fetch(`${url(leader)}/api/objects`, { method: 'POST', body: form({ message: 'trigger a save' }, coverPng()) });
    await pollUntil('follower to step down', 5000, () => c.member(sick).node.storageFailure !== undefined);
    const h = await fetch(`${url(sick)}/healthz`);
    expect(h.status).to.equal(503);
    expect(((await h.json()) as { error: { code: string } }).error.code).to.equal('storage_failed');
    expect((await fetch(`${url(sick)}/readyz`)).status).to.equal(503);
    expect((await fetch(`${url(leader)}/healthz`)).status).to.equal(200);
    const st = (await (await fetch(`${url(sick)}/cluster/status`)).json()) as { storage_failed: string | null };
    expect(st.storage_failed).to.be.a('string');
  });
});
