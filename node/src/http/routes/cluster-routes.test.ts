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
import { parseTokens } from '../../auth/tokens.js';

const TOKEN = 'admin-secret';
const API_TOKEN = 'test-api-token-with-every-scope';
const OTHER_TOKEN = 'another-tenant-token-0123456789';
const READ_TOKEN = 'read-only-token-0123456789';
const SMALL_TOKEN = 'small-quota-token-0123456789';
const SLOW_TOKEN = 'slow-rate-token-0123456789';
const tokens = parseTokens(
  [
    `tester ${API_TOKEN} read,write,delete rate=0 quota=0`,
    `other ${OTHER_TOKEN} read,write,delete rate=0`,
    `reader ${READ_TOKEN} read rate=0`,
    `small ${SMALL_TOKEN} read,write rate=0 quota=10`,
    `slow ${SLOW_TOKEN} read rate=1`,
  ].join('\n'),
);

/** fetch with the test API token (object routes need one). */
function api(input: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has('authorization')) headers.set('authorization', `Bearer ${API_TOKEN}`);
  return fetch(input, { ...init, headers });
}

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
        tokens,
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
      api(`${url(follower)}/api/objects`, { method: 'POST', headers: { 'content-type': 'image/png' }, body });
    const res = await post(png);
    expect(res.status).to.equal(201);
    const body = (await res.json()) as { id: string; sha256: string; size: number };
    expect(body.size).to.equal(png.length);
    expect(body.sha256).to.equal(createHash('sha256').update(png).digest('hex'));
    const got = await api(`${url(leader)}/api/objects/${body.id}`);
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

  it('many concurrent small image/png writes are validated on the HTTP thread, never refused with pool_saturated', async () => {
    // pool of 1 worker: its queue holds 2 jobs, so 48 concurrent writes through the pool would mostly be refused
    const leader = await c.waitForLeader();
    const bodies = Array.from({ length: 48 }, (_, i) => {
      const png = new PNG({ width: 16, height: 16 });
      for (let j = 0; j < png.data.length; j++) png.data[j] = (i * 31 + j * 7) & 0xff;
      return PNG.sync.write(png);
    });
    const answers = await Promise.all(
      bodies.map((body) => api(`${url(leader)}/api/objects`, { method: 'POST', headers: { 'content-type': 'image/png' }, body })),
    );
    const statuses = await Promise.all(answers.map(async (r) => (r.status === 201 ? 201 : `${r.status} ${await r.text()}`)));
    expect(statuses.filter((s) => s !== 201)).to.deep.equal([]);
  });

  it('Idempotency-Key: same key + same body replays the original answer, another body is 422 idempotency_key_reused, keys are per token', async () => {
    const leader = await c.waitForLeader();
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    const key = `retry-${randomBytes(6).toString('hex')}`;
    const post = (node: string, message: string, token = API_TOKEN): Promise<Response> =>
      api(`${url(node)}/api/objects`, { method: 'POST', body: form({ message }, coverPng()), headers: { 'Idempotency-Key': key, authorization: `Bearer ${token}` } });
    const first = await post(follower, 'first attempt');
    expect(first.status).to.equal(201);
    const firstBody = (await first.json()) as { id: string; sha256: string };
    // a retry of the same request, on another node: the original answer, no duplicate
    const retry = await post(leader, 'first attempt');
    expect(retry.status).to.equal(201);
    expect(retry.headers.get('idempotent-replayed')).to.equal('true');
    expect(await retry.json()).to.deep.equal(firstBody);
    // the same key with another body: refused, never silently answered with the first object
    const reused = await post(leader, 'second attempt, other data');
    expect(reused.status).to.equal(422);
    expect(((await reused.json()) as { error: { code: string } }).error.code).to.equal('idempotency_key_reused');
    // another token's key space is its own
    const other = await post(follower, 'second attempt, other data', OTHER_TOKEN);
    expect(other.status).to.equal(201);
    const otherBody = (await other.json()) as { id: string };
    expect(otherBody.id).to.not.equal(firstBody.id);
    const list = (await (await api(`${url(leader)}/api/objects`)).json()) as { objects: { id: string }[] };
    expect(list.objects.filter((o) => o.id === firstBody.id)).to.have.length(1);
    const bad = await api(`${url(leader)}/api/objects`, { method: 'POST', body: form({ message: 'x' }, coverPng()), headers: { 'Idempotency-Key': 'sp ace' } });
    expect(bad.status).to.equal(400);
  });

  it('access control: no token 401, wrong token 401, missing scope 403, another token\'s object 403, quota 413, rate 429 + Retry-After', async () => {
    const leader = await c.waitForLeader();
    const noToken = await fetch(`${url(leader)}/api/objects`);
    expect(noToken.status).to.equal(401);
    const wrong = await fetch(`${url(leader)}/api/objects`, { headers: { authorization: 'Bearer not-a-real-token-at-all' } });
    expect(wrong.status).to.equal(401);
    const put = await api(`${url(leader)}/api/objects`, { method: 'POST', body: form({ message: 'mine' }, coverPng()) });
    const { id } = (await put.json()) as { id: string };
    const anonymousDelete = await fetch(`${url(leader)}/api/objects/${id}`, { method: 'DELETE' });
    expect(anonymousDelete.status).to.equal(401);
    const readerDelete = await fetch(`${url(leader)}/api/objects/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${READ_TOKEN}` } });
    expect(readerDelete.status).to.equal(403);
    const othersDelete = await fetch(`${url(leader)}/api/objects/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${OTHER_TOKEN}` } });
    expect(othersDelete.status).to.equal(403);
    expect((await api(`${url(leader)}/api/objects/${id}`)).status).to.equal(200);
    // stateless routes stay open by default
    const cap = await fetch(`${url(leader)}/api/capacity`, { method: 'POST', body: form({}, coverPng()) });
    expect(cap.status).to.equal(200);
    // quota: the small token's 10 bytes do not hold a cover-sized object (others' objects do not count)
    const over = await fetch(`${url(leader)}/api/objects`, { method: 'POST', body: form({ message: 'too big' }, coverPng()), headers: { authorization: `Bearer ${SMALL_TOKEN}` } });
    expect(over.status).to.equal(413);
    expect(((await over.json()) as { error: { code: string } }).error.code).to.equal('quota_exceeded');
    // rate: 1 request/s with a burst of 2
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${url(leader)}/api/objects`, { headers: { authorization: `Bearer ${SLOW_TOKEN}` } });
      codes.push(r.status);
      if (r.status === 429) expect(r.headers.get('retry-after')).to.match(/^\d+$/);
    }
    expect(codes).to.include(429);
  });

  it('POST on a follower embeds there, commits through the leader and answers 201 {id, sha256, size}', async () => {
    const leader = await c.waitForLeader();
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    const res = await api(`${url(follower)}/api/objects`, { method: 'POST', body: form({ message: 'hello cluster' }, coverPng()) });
    expect(res.status).to.equal(201);
    expect(res.headers.get('x-stego-node')).to.equal(follower);
    expect(res.headers.get('x-stego-leader')).to.equal(leader);
    const body = (await res.json()) as { id: string; sha256: string; size: number };
    expect(body.id).to.match(/^[0-9a-f-]{36}$/);
    expect(body.sha256).to.match(/^[0-9a-f]{64}$/);

    for (const id of ['n1', 'n2', 'n3']) {
      const got = await api(`${url(id)}/api/objects/${body.id}`);
      expect(got.status).to.equal(200);
      expect(got.headers.get('content-type')).to.equal('image/png');
      const bytes = Buffer.from(await got.arrayBuffer());
      expect(bytes.length).to.equal(body.size);
      const stale = await api(`${url(id)}/api/objects/${body.id}?stale=true`);
      expect(stale.status).to.equal(200);
    }
    // the stored object really carries the message
    const png = Buffer.from(await (await api(`${url(leader)}/api/objects/${body.id}`)).arrayBuffer());
    const extracted = await api(`${url(leader)}/api/extract`, { method: 'POST', body: form({}, png) });
    expect(await extracted.json()).to.deep.equal({ message: 'hello cluster' });

    const list = (await (await api(`${url(follower)}/api/objects`)).json()) as { objects: { id: string; created_at: string }[] };
    expect(list.objects.map((o) => o.id)).to.include(body.id);
    expect(Number.isNaN(Date.parse(list.objects[0]!.created_at))).to.equal(false);

    const del = await api(`${url(follower)}/api/objects/${body.id}`, { method: 'DELETE' });
    expect(del.status).to.equal(204);
    const again = await api(`${url(leader)}/api/objects/${body.id}`, { method: 'DELETE' });
    expect(again.status).to.equal(404);
    expect(((await again.json()) as { error: { code: string } }).error.code).to.equal('not_found');
  });

  it('refuses an object over STEGO_MAX_OBJECT_BYTES with 413 JSON, and bad input with 4xx', async () => {
    const big = new PNG({ width: 256, height: 256 });
    randomBytes(big.data.length).copy(big.data);
    const res = await api(`${url('n1')}/api/objects`, { method: 'POST', body: form({ message: 'x' }, PNG.sync.write(big)) });
    expect(res.status).to.equal(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('object_too_large');
    const notPng = await api(`${url('n1')}/api/objects`, { method: 'POST', body: form({ message: 'x' }, Buffer.from('hello')) });
    expect(notPng.status).to.equal(415);
    const missing = await api(`${url('n1')}/api/objects/does-not-exist`);
    expect(missing.status).to.equal(404);
  });

  it('/cluster/status has the contract shape and /readyz is 200 on a caught-up member', async () => {
    const leader = await c.waitForLeader();
    const st = (await (await api(`${url('n2')}/cluster/status`)).json()) as Record<string, unknown> & { nodes: Record<string, unknown>[] };
    expect(st).to.include.keys('node_id', 'term', 'leader_id', 'commit_index', 'applied_index', 'nodes');
    expect(st.leader_id).to.equal(leader);
    expect(st.nodes.map((n) => n.id)).to.deep.equal(['n1', 'n2', 'n3']);
    for (const n of st.nodes) expect(n).to.include.keys('id', 'role', 'healthy', 'voter', 'raft_address');
    const lst = (await (await api(`${url(leader)}/cluster/status`)).json()) as { nodes: Record<string, unknown>[] };
    expect(lst.nodes.filter((n) => n.id !== leader).every((n) => typeof n.match_index === 'number')).to.equal(true);
    await pollUntil('readyz', 5000, async () => (await api(`${url('n3')}/readyz`)).status === 200);
  });

  it('admin endpoints need the bearer token', async () => {
    const none = await api(`${url('n1')}/admin/transfer-leadership`, { method: 'POST' });
    expect(none.status).to.equal(401);
    const wrong = await api(`${url('n1')}/admin/members/n2`, { method: 'DELETE', headers: { Authorization: 'Bearer nope' } });
    expect(wrong.status).to.equal(401);
    const bad = await api(`${url('n1')}/admin/members`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'n4' }),
    });
    expect(bad.status).to.equal(400);
    const leader = await c.waitForLeader();
    const target = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    const moved = await api(`${url(target)}/admin/transfer-leadership`, {
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
      const res = await api(`${url(leader)}/api/objects/whatever`);
      expect(res.status).to.equal(503);
      expect(res.headers.get('retry-after')).to.equal('1');
      expect((await api(`${url(leader)}/readyz`)).status).to.equal(503);
    } finally {
      c.net.heal();
    }
  });

  it('every response names node and leader; after a storage failure /healthz is 503 on that node only', async () => {
    const leader = await c.waitForLeader();
    const embed = await api(`${url(leader)}/healthz`);
    expect(embed.headers.get('x-stego-node')).to.equal(leader);
    expect(embed.headers.get('x-stego-leader')).to.equal(leader);
    const sick = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    c.member(sick).faults.fail = true;
    await api(`${url(leader)}/api/objects`, { method: 'POST', body: form({ message: 'trigger a save' }, coverPng()) });
    await pollUntil('follower to step down', 5000, () => c.member(sick).node.haltCause !== undefined);
    const h = await api(`${url(sick)}/healthz`);
    expect(h.status).to.equal(503);
    expect(((await h.json()) as { error: { code: string } }).error.code).to.equal('storage_failed');
    expect((await api(`${url(sick)}/readyz`)).status).to.equal(503);
    expect((await api(`${url(leader)}/healthz`)).status).to.equal(200);
    const st = (await (await api(`${url(sick)}/cluster/status`)).json()) as { storage_failed: string | null };
    expect(st.storage_failed).to.be.a('string');
  });
});
