// Issue 4: `npm start`'s cluster behind a real nginx, proven the way the design guide's integration tests
// describe (guide tests 1 and 2), and stronger: no failed request across a leader crash and restart.
import { expect } from 'chai';
import { PNG } from 'pngjs';
import { findNginx } from '../../src/lb/nginx-process.js';
import { form, isAlive, LocalCluster, tryKill, until } from './local-cluster-harness.js';

function smallPng(seed: number): Buffer {
  const png = new PNG({ width: 96, height: 64, colorType: 2, inputColorType: 2, inputHasAlpha: false } as never);
  let x = seed * 2654435761;
  const data = Buffer.alloc(96 * 64 * 3);
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = (i % 251) ^ (x >>> 24);
  }
  png.data = data;
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false } as never);
}

async function status(url: string): Promise<{ leader_id: string | null; term: number }> {
  const res = await fetch(`${url}/cluster/status`, { signal: AbortSignal.timeout(1000) });
  return (await res.json()) as { leader_id: string | null; term: number };
}

describe('local cluster behind nginx (npm start)', function () {
  this.timeout(120000);
  const nginx = findNginx();
  let cluster: LocalCluster;

  before(async function () {
    if (!nginx) {
      console.log('    (skipped: nginx is not installed; .ci/run installs it)');
      return this.skip();
    }
    cluster = new LocalCluster(3);
    await cluster.start();
  });

  after(async () => {
    await cluster?.destroy();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(cluster?.dump());
  });

  async function settledLeader(): Promise<string> {
    return until('all nodes up and agreeing on a leader', async () => {
      const reports = await Promise.all(cluster.ids.map((id) => status(cluster.nodeUrl(id)).catch(() => null)));
      const leaders = new Set(reports.map((r) => r?.leader_id));
      if (reports.some((r) => !r) || leaders.size !== 1) return null;
      const [l] = [...leaders];
      return l ?? null;
    }, 30000);
  }

  it('announces its URLs once a leader is elected and serves nginx stub_status', async () => {
    await until('the announcement', async () => cluster.output.some((l) => l.includes('StegoCluster is up')));
    const res = await fetch(`${cluster.lb}/nginx_status`);
    expect(res.status).to.equal(200);
    expect(await res.text()).to.match(/Active connections: \d+/);
  });

  it('round-robin is real: requests through the LB reach every healthy node', async () => {
    await settledLeader();
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${cluster.lb}/healthz`);
      expect(res.status).to.equal(200);
      const up = res.headers.get('x-stego-upstream') ?? '';
      seen.set(up, (seen.get(up) ?? 0) + 1);
    }
    const expected = cluster.ids.map((id) => cluster.nodeUrl(id).replace('http://', ''));
    expect([...seen.keys()].sort()).to.deep.equal(expected.sort());
    for (const n of seen.values()) expect(n).to.be.within(5, 15);
  });

  it('guide test 1: SIGKILL the leader; within 1 s the LB reports a different leader with a higher term', async () => {
    const leader = await settledLeader();
    const before = await status(cluster.lb);
    expect(before.leader_id).to.equal(leader);
    const killedAt = Date.now();
    tryKill(cluster.pidOf(leader), 'SIGKILL');
    const after = await until(
      'a new leader through the LB',
      async () => {
        const s = await status(cluster.lb).catch(() => null);
        return s && s.leader_id && s.leader_id !== leader ? s : null;
      },
      1000,
      10,
    );
    expect(after.term).to.be.greaterThan(before.term);
    expect(Date.now() - killedAt).to.be.below(1000);
  });

  it('guide test 2: 10 requests through the LB, a node killed at request 5: all 10 succeed', async () => {
    await settledLeader();
    const victim = cluster.ids[0]!;
    for (let i = 1; i <= 10; i++) {
      if (i === 5) tryKill(cluster.pidOf(victim), 'SIGKILL');
      const res = await fetch(`${cluster.lb}/healthz`);
      expect(res.status, `request ${i}`).to.equal(200);
      await new Promise((r) => setTimeout(r, 100)); // the guide's pacing between requests
    }
  });

  // The supervisor reloads nginx when the leader changes, and a reloading nginx closes its idle keep-alive
  // connections: a POST sent on one at that instant meets a closed connection (undici: "fetch failed")
  // and is not retried by the client library. The client here does what the API asks of one (docs/http-api.md,
  // "Retries"): it sends such a request again once, an object write with the same Idempotency-Key. Every
  // HTTP answer counts as it is; resets are counted and may only come from the reloads.
  it('a client retrying connection resets sees no failure across a leader crash and restart; acknowledged objects are readable on every node', async () => {
    const leader = await settledLeader();
    const acked: string[] = [];
    const failures: string[] = [];
    let resets = 0;
    let stop = false;
    let n = 0;
    const post = async (url: string, init: () => RequestInit): Promise<Response | { status: 0; text(): Promise<string> }> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await fetch(url, { method: 'POST', ...init() });
        } catch (e) {
          if (attempt === 2) return { status: 0, text: async () => String(e) };
          resets++;
        }
      }
    };
    const writer = async (): Promise<void> => {
      while (!stop) {
        n++;
        const i = n;
        const img = smallPng(i);
        const embed = await post(`${cluster.lb}/api/embed`, () => ({ body: form({ file: img, message: `m${i}` }) }));
        if (embed.status !== 200) failures.push(`embed ${i}: ${embed.status} ${await embed.text()}`);
        const key = `continuous-${i}`;
        const put = await post(`${cluster.lb}/api/objects`, () => ({ headers: { ...cluster.auth(), 'idempotency-key': key }, body: form({ file: img, message: `obj${i}` }) }));
        if (put.status === 201) acked.push(((await (put as Response).json()) as { id: string }).id);
        else failures.push(`object ${i}: ${put.status} ${await put.text()}`);
      }
    };
    const running = [writer(), writer()];
    await until('some writes before the crash', async () => acked.length >= 5, 20000);
    const pid = cluster.pidOf(leader);
    tryKill(pid, 'SIGKILL');
    await until('the old leader restarted by the supervisor', async () => {
      const p = cluster.state().nodes.find((x) => x.id === leader)?.pid;
      return p && p !== pid && isAlive(p);
    }, 20000);
    await settledLeader();
    const target = acked.length + 10;
    await until('writes after the restart', async () => acked.length >= target, 30000);
    stop = true;
    await Promise.all(running);
    expect(failures, failures.join('\n')).to.deep.equal([]);
    // two writers, each with at most one request on an idle connection per reload (one per leader change)
    expect(resets, 'connection resets').to.be.at.most(4);
    for (const id of cluster.ids) {
      for (const obj of acked) {
        await until(`object ${obj} on ${id}`, async () => {
          const r = await fetch(`${cluster.nodeUrl(id)}/api/objects/${obj}?stale=true`, { headers: cluster.auth() });
          return r.status === 200;
        }, 20000);
      }
    }
  });

  it('restarting the whole cluster (all nodes killed) keeps every committed object', async () => {
    await settledLeader();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const put = await fetch(`${cluster.lb}/api/objects`, { method: 'POST', headers: cluster.auth(), body: form({ file: smallPng(1000 + i), message: `keep${i}` }) });
      expect(put.status).to.equal(201);
      ids.push(((await put.json()) as { id: string }).id);
    }
    await cluster.crashAll();
    await cluster.start();
    const list = (await (await fetch(`${cluster.lb}/api/objects`, { headers: cluster.auth() })).json()) as { objects: { id: string }[] };
    const have = new Set(list.objects.map((o) => o.id));
    for (const id of ids) expect(have.has(id), id).to.equal(true);
    for (const id of ids) {
      const r = await fetch(`${cluster.lb}/api/objects/${id}`, { headers: cluster.auth() });
      expect(r.status).to.equal(200);
      expect(r.headers.get('content-type')).to.match(/image\/png/);
    }
  });

  it('Ctrl-C (SIGINT) stops nginx and every node, leaving no process behind', async () => {
    const s = cluster.state();
    await cluster.stop('SIGINT');
    const pids = [...s.nodes.map((x) => x.pid), s.nginxPid].filter((p): p is number => !!p);
    await until('all processes gone', async () => pids.every((p) => !isAlive(p)), 10000);
  });
});
