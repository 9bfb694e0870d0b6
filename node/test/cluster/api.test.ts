// Three real node processes: election, the /cluster/status contract, replicated objects, forwarding,
// bad input, admin auth, leadership transfer, and the 503 a client gets when there is no quorum.

import { request as httpRequest } from 'node:http';
import { expect } from 'chai';
import { Cluster, dumpOnFailure, pollUntil, sha256, type ClusterStatus, type ObjectAck } from './harness.js';
import { makeCover } from './fixtures.js';

const ROLES = ['Leader', 'Follower', 'Candidate', 'PreCandidate', 'Learner', 'Unknown'];
const MAX_OBJECT = 256 * 1024;
const BODY_LIMIT = 1024 * 1024;

function expectErrorJson(r: { status: number; body: unknown; headers: Headers }, what: string): void {
  expect(r.status, `${what}: status`).to.be.within(400, 499);
  expect(r.headers.get('content-type') ?? '', `${what}: content-type`).to.contain('json');
  const err = (r.body as { error?: { code?: unknown; message?: unknown } }).error;
  expect(err, `${what}: error object in ${JSON.stringify(r.body)}`).to.be.an('object');
  expect(err!.code, `${what}: error.code`).to.be.a('string').and.not.equal('');
  expect(err!.message, `${what}: error.message`).to.be.a('string').and.not.equal('');
}

/**
 * POSTs an oversized multipart body with node:http, which (unlike fetch) still delivers the server's early
 * answer when the server stops reading and closes the socket mid-upload.
 */
function rawPost(url: string, bytes: number): Promise<{ status: number; body: unknown; headers: Headers }> {
  return new Promise((resolve, reject) => {
    const boundary = 'stegotestboundary';
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.png"\r\nContent-Type: image/png\r\n\r\n`,
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const body = Buffer.concat([head, Buffer.alloc(bytes, 7), tail]);
    const req = httpRequest(url, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length },
    });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: the assertion on the body will say so
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, headers });
      });
    });
    req.on('error', (err) => {
      // EPIPE/ECONNRESET after the answer arrived is the server refusing the rest of the upload.
      if (!answered) setTimeout(() => (answered ? undefined : reject(err)), 200);
    });
    req.end(body);
  });
}

describe('cluster (3 processes): election and API contract', function () {
  this.timeout(60_000);
  let cluster: Cluster;
  const cover = makeCover(16, 16, 3);

  before(async function () {
    this.timeout(60_000);
    cluster = await Cluster.start({
      size: 3,
      env: { STEGO_MAX_OBJECT_BYTES: String(MAX_OBJECT), STEGO_BODY_LIMIT_BYTES: String(BODY_LIMIT) },
    });
  });
  afterEach(function () {
    dumpOnFailure(this, cluster);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('elects exactly one leader that every node names, in one term', async () => {
    const { leaderId, term, statuses } = await cluster.waitForLeader();
    expect(term).to.be.greaterThan(0);
    for (const [id, s] of statuses) {
      expect(s.node_id).to.equal(id);
      const leaders = s.nodes.filter((n) => n.role === 'Leader');
      expect(leaders.map((n) => n.id), `${id}'s view of leaders`).to.deep.equal([leaderId]);
    }
  });

  it('/healthz and /readyz answer 200 on every node', async () => {
    await cluster.waitReady();
    for (const id of cluster.allIds()) {
      expect((await cluster.request(id, '/healthz')).status).to.equal(200);
      expect((await cluster.request(id, '/readyz')).status).to.equal(200);
    }
  });

  it('/cluster/status has the contract shape on every node', async () => {
    const { leaderId } = await cluster.waitForLeader();
    for (const id of cluster.allIds()) {
      const s: ClusterStatus = await cluster.status(id);
      expect(s).to.include.keys('node_id', 'term', 'leader_id', 'commit_index', 'applied_index', 'nodes');
      expect(s.term).to.be.a('number');
      expect(s.commit_index).to.be.a('number').and.to.be.greaterThan(0);
      expect(s.applied_index).to.be.a('number').and.to.be.at.most(s.commit_index);
      expect(s.nodes.map((n) => n.id).sort()).to.deep.equal(['n1', 'n2', 'n3']);
      for (const n of s.nodes) {
        expect(ROLES).to.include(n.role);
        expect(n.healthy, `${id} sees ${n.id}`).to.equal(true);
        expect(n.voter).to.equal(true);
        expect(n.raft_address).to.equal(cluster.node(n.id).raftAddress);
        if (n.last_contact_ms !== undefined) expect(n.last_contact_ms).to.be.a('number').at.least(0);
      }
      if (id === leaderId) {
        for (const n of s.nodes.filter((x) => x.id !== leaderId)) {
          expect(n.match_index, `leader's match_index for ${n.id}`).to.be.a('number');
          expect(n.next_index, `leader's next_index for ${n.id}`).to.be.a('number');
        }
      }
    }
  });

  it('/metrics is Prometheus text that includes the raft term', async () => {
    const r = await cluster.request('n1', '/metrics');
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type') ?? '').to.contain('text/plain');
    expect(String(r.body)).to.match(/^[a-z_]*term[a-z_]*(\{[^}]*\})? \d+/m);
  });

  it('commits an object and serves the same bytes from every node', async () => {
    const { leaderId } = await cluster.waitForLeader();
    const w = await cluster.putObject(leaderId, { cover, message: 'hello from the leader' });
    expect(w.status, JSON.stringify(w.body)).to.equal(201);
    const ack = w.body as ObjectAck;
    expect(ack.id).to.be.a('string').and.not.equal('');
    expect(ack.sha256).to.match(/^[0-9a-f]{64}$/);
    expect(ack.size).to.be.a('number').greaterThan(0);
    // On a loaded machine an election may slip in between; the header must name a leader of that moment.
    const leaderAfter = (await cluster.waitForLeader()).leaderId;
    expect([leaderId, leaderAfter]).to.include(w.headers.get('x-stego-leader'));
    expect(w.headers.get('x-stego-node')).to.equal(leaderId);
    for (const id of cluster.allIds()) {
      const r = await cluster.getObject(id, ack.id);
      expect(r.status, `linearizable read on ${id}`).to.equal(200);
      expect(r.headers.get('content-type')).to.contain('image/png');
      expect(r.headers.get('x-stego-node')).to.equal(id);
      expect(sha256(r.bytes!)).to.equal(ack.sha256);
      expect(r.bytes!.length).to.equal(ack.size);
      const list = await cluster.request<{ objects: { id: string; sha256: string; size: number; created_at: unknown }[] }>(
        id,
        '/api/objects',
      );
      expect(list.status).to.equal(200);
      const entry = list.body.objects.find((o) => o.id === ack.id);
      expect(entry, `${id} lists ${ack.id}`).to.include({ sha256: ack.sha256, size: ack.size });
      expect(entry!.created_at).to.not.equal(undefined);
    }
    // The stored object is a stego PNG: the embedded message comes back out.
    const form = new FormData();
    form.append('file', new Blob([(await cluster.getObject('n1', ack.id)).bytes!]), 'o.png');
    const x = await cluster.request<{ message: string }>('n1', '/api/extract', { method: 'POST', body: form });
    expect(x.status).to.equal(200);
    expect(x.body.message).to.equal('hello from the leader');
  });

  it('forwards a write sent to a follower to the leader', async () => {
    const { leaderId } = await cluster.waitForLeader();
    for (const follower of cluster.allIds().filter((id) => id !== leaderId)) {
      const w = await cluster.putObject(follower, { cover, message: `via ${follower}` });
      expect(w.status, JSON.stringify(w.body)).to.equal(201);
      const leaderAfter = (await cluster.waitForLeader()).leaderId;
      expect([leaderId, leaderAfter], 'X-Stego-Leader').to.include(w.headers.get('x-stego-leader'));
      expect(w.headers.get('x-stego-node')).to.equal(follower);
      const ack = w.body as ObjectAck;
      const r = await cluster.getObject(leaderAfter, ack.id);
      expect(r.status).to.equal(200);
      expect(sha256(r.bytes!)).to.equal(ack.sha256);
    }
  });

  it('DELETE removes an object on every node, and a second DELETE is 404', async () => {
    const { leaderId } = await cluster.waitForLeader();
    const follower = cluster.allIds().find((id) => id !== leaderId)!;
    const ack = (await cluster.putObject(leaderId, { cover, message: 'short-lived' })).body as ObjectAck;
    const d = await cluster.request(follower, `/api/objects/${ack.id}`, { method: 'DELETE' });
    expect(d.status, JSON.stringify(d.body)).to.equal(204);
    for (const id of cluster.allIds()) {
      expect((await cluster.getObject(id, ack.id)).status, `read on ${id} after delete`).to.equal(404);
    }
    expectErrorJson(await cluster.request(leaderId, `/api/objects/${ack.id}`, { method: 'DELETE' }), 'second delete');
  });

  it('answers bad input with 4xx JSON errors and stays healthy', async () => {
    const before = await cluster.waitForLeader();
    const target = cluster.allIds().find((id) => id !== before.leaderId)!;
    const post = (form: FormData | string, headers: Record<string, string> = {}) =>
      cluster.request(target, '/api/objects', { method: 'POST', body: form, headers });
    const formWith = (parts: [string, Blob | string, string?][]) => {
      const f = new FormData();
      for (const [k, v, name] of parts) {
        if (typeof v === 'string') f.append(k, v);
        else f.append(k, v, name);
      }
      return f;
    };
    const big = makeCover(300, 300, 9); // noise: ~360 KB of PNG, over STEGO_MAX_OBJECT_BYTES
    expect(big.length).to.be.greaterThan(MAX_OBJECT);
    const cases: [string, () => Promise<{ status: number; body: unknown; headers: Headers }>, number?][] = [
      ['empty multipart', () => post(formWith([]))],
      ['cover without message or payload', () => post(formWith([['file', new Blob([cover]), 'c.png']]))],
      ['not a PNG', () => post(formWith([['file', new Blob([Buffer.from('GIF89a not a png at all')]), 'x.png'], ['message', 'm']]))],
      ['truncated PNG', () => post(formWith([['file', new Blob([cover.subarray(0, 60)]), 'x.png'], ['message', 'm']]))],
      ['message over capacity', () => post(formWith([['file', new Blob([cover]), 'c.png'], ['message', 'x'.repeat(5000)]]))],
      ['object over STEGO_MAX_OBJECT_BYTES', () => post(formWith([['file', new Blob([big]), 'big.png'], ['message', 'm']])), 413],
      ['body over STEGO_BODY_LIMIT_BYTES', () => rawPost(cluster.node(target).url + '/api/objects', BODY_LIMIT + 300_000), 413],
      ['JSON instead of multipart', () => post(JSON.stringify({ message: 'm' }), { 'content-type': 'application/json' })],
      ['unknown object id', () => cluster.getObject(target, 'no-such-object'), 404],
      ['unknown object id, stale read', () => cluster.getObject(target, 'no-such-object', { stale: true }), 404],
      ['DELETE unknown id', () => cluster.request(target, '/api/objects/no-such-object', { method: 'DELETE' }), 404],
      ['path traversal id', () => cluster.request(target, '/api/objects/..%2F..%2Fetc%2Fpasswd')],
    ];
    for (const [what, run, status] of cases) {
      const r = await run();
      expectErrorJson(r, what);
      if (status) expect(r.status, what).to.equal(status);
    }
    for (const n of cluster.nodes.values()) expect(n.state, `${n.id} still running`).to.equal('running');
    await cluster.waitReady();
    const after = await cluster.waitForLeader();
    const w = await cluster.putObject(after.leaderId, { cover, message: 'still writable' });
    expect(w.status).to.equal(201);
  });

  it('refuses admin calls without the right bearer token (401)', async () => {
    const { leaderId } = await cluster.waitForLeader();
    const calls: [string, string, unknown][] = [
      ['POST', '/admin/members', { id: 'n9', raft_address: '127.0.0.1:1' }],
      ['DELETE', '/admin/members/n2', undefined],
      ['POST', '/admin/transfer-leadership', {}],
    ];
    for (const token of [null, 'wrong-token']) {
      for (const [method, path, body] of calls) {
        const r = await cluster.request(leaderId, path, {
          method,
          headers: { ...cluster.adminHeaders(token), 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        expect(r.status, `${method} ${path} with token ${token}`).to.equal(401);
        expectErrorJson(r, `${method} ${path}`);
      }
    }
    const s = await cluster.status(leaderId);
    expect(s.nodes.map((n) => n.id).sort()).to.deep.equal(['n1', 'n2', 'n3']);
  });

  it('transfers leadership to the requested follower', async () => {
    const before = await cluster.waitForLeader();
    const to = cluster.allIds().find((id) => id !== before.leaderId)!;
    const r = await cluster.request(before.leaderId, '/admin/transfer-leadership', {
      method: 'POST',
      headers: { ...cluster.adminHeaders(), 'content-type': 'application/json' },
      body: JSON.stringify({ to }),
    });
    expect(r.status, JSON.stringify(r.body)).to.be.within(200, 299);
    const after = await cluster.waitForLeader({ notId: before.leaderId, minTerm: before.term + 1 });
    expect(after.leaderId).to.equal(to);
    const w = await cluster.putObject(before.leaderId, { cover, message: 'after transfer' });
    expect(w.status).to.equal(201);
    expect(w.headers.get('x-stego-leader')).to.equal(to);
  });

  // Destructive: leaves the cluster healed, but runs last in this file.
  it('answers 503 + Retry-After without a quorum, and recovers when nodes return', async () => {
    const { leaderId } = await cluster.waitForLeader();
    const survivor = cluster.allIds().find((id) => id !== leaderId)!;
    const victims = cluster.allIds().filter((id) => id !== survivor);
    await Promise.all(victims.map((id) => cluster.kill(id, 'SIGKILL')));
    const refused = await pollUntil(
      'a 503 from the lone survivor',
      async () => {
        const r = await cluster.putObject(survivor, { cover, message: 'no quorum' }, 5_000);
        expect(r.status, 'a write must never be acknowledged without a quorum').to.not.equal(201);
        return r.status === 503 ? r : undefined;
      },
      { deadlineMs: 10_000, intervalMs: 50 },
    );
    expect(Number(refused.headers.get('retry-after')), 'Retry-After seconds').to.be.greaterThan(0);
    expect((refused.body as { error?: { code?: string } }).error?.code).to.be.a('string');
    expect((await cluster.request(survivor, '/readyz')).status).to.equal(503);
    const s = await cluster.status(survivor);
    for (const v of victims) {
      const n = s.nodes.find((x) => x.id === v)!;
      expect(n.healthy, `${v} is down`).to.equal(false);
      expect(n.role).to.equal('Unknown');
    }
    for (const v of victims) await cluster.restart(v);
    await cluster.waitForLeader({ deadlineMs: 15_000 });
    const w = await cluster.putObject(survivor, { cover, message: 'quorum is back' });
    expect(w.status).to.equal(201);
  });
});
