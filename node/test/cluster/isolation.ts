// The five "leadership holds" load cases, shared by the bounded test (node/test/cluster/isolation.load.ts)
// and the full-size benchmark (node/bench/isolation.bench.ts). Each case runs client load against one
// node's HTTP port of a real 3-node cluster and reports what the nodes say about their consensus loop
// (from /metrics, as deltas over the case) and what the clients saw.

import http from 'node:http';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Cluster } from './harness.js';
import { makeCover } from './fixtures.js';
import { histogramDelta, histogramPercentileMs, parseHistogram, percentile, type HistogramScrape } from './stats.js';

export interface CaseSizes {
  /** (a) concurrent 1080p embeds, one burst per entry. */
  embedBursts: number[];
  embedWidth: number;
  embedHeight: number;
  /** (b) concurrent large object writes, their size, and the size of the one huge object. */
  bigWriters: number;
  bigObjectBytes: number;
  hugeObjectBytes: number;
  /** (c) clients writing 1 KiB objects, for how long. */
  smallWriters: number;
  smallSeconds: number;
  /** (d) stalled uploads and unread downloads. */
  stalledUploads: number;
  unreadDownloads: number;
  /** (e) bytes written while a follower is down, caught up on restart while (c) runs. */
  catchUpBytes: number;
}

export const FULL_SIZES: CaseSizes = {
  embedBursts: [64, 256],
  embedWidth: 1920,
  embedHeight: 1080,
  bigWriters: 16,
  bigObjectBytes: 16 * 1024 * 1024,
  hugeObjectBytes: 45 * 1000 * 1000,
  smallWriters: 256,
  smallSeconds: 60,
  stalledUploads: 32,
  unreadDownloads: 32,
  catchUpBytes: 1024 * 1024 * 1024,
};

export interface CaseResult {
  name: string;
  target: string;
  leaderChanges: number;
  noLeader: number;
  loopDelayP50Ms: number;
  loopDelayP99Ms: number;
  /** Upper bound of the highest non-empty bucket: the worst tick lateness seen. */
  loopDelayMaxMs: number;
  heartbeatRttP99Ms: number;
  clientP50Ms: number;
  clientP99Ms: number;
  rssPeakMiB: number;
  /**
   * The most one node's consensus thread waited, runnable, for a CPU during the case (ms, from
   * stego_consensus_thread_cpu_wait_seconds_total; NaN where the kernel does not say): time the machine,
   * not the node, took from consensus.
   */
  consensusCpuWaitMs: number;
  ok: number;
  refused: number;
  failed: number;
  notes: string;
}

export interface ClientOutcome {
  status: number;
  code?: string;
  ms: number;
}

/** One HTTP request through node:http (no keep-alive pool shared between cases). */
export function send(
  port: number,
  method: string,
  path: string,
  body?: Buffer,
  headers: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<ClientOutcome & { body: Buffer }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, agent: false, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          let code: string | undefined;
          if ((res.headers['content-type'] ?? '').includes('json') && (res.statusCode ?? 0) >= 400) {
            try {
              code = (JSON.parse(buf.toString('utf8')) as { error?: { code?: string } }).error?.code;
            } catch {
              code = undefined;
            }
          }
          resolve({ status: res.statusCode ?? 0, ...(code === undefined ? {} : { code }), ms: performance.now() - t0, body: buf });
        });
        res.on('error', () => resolve({ status: 0, code: 'response_error', ms: performance.now() - t0, body: Buffer.alloc(0) }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => resolve({ status: 0, code: `client: ${e.message}`, ms: performance.now() - t0, body: Buffer.alloc(0) }));
    req.end(body);
  });
}

/** A multipart form with one file field and a message, as POST /api/embed and /api/objects take it. */
export function embedForm(cover: Buffer, message: string): { body: Buffer; headers: Record<string, string> } {
  const boundary = `----stegoisolation${Math.random().toString(16).slice(2)}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n${message}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cover.png"\r\nContent-Type: image/png\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { body: Buffer.concat([head, cover, tail]), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** A noise PNG of about `bytes` bytes (noise does not compress, so the size follows the pixel count). */
export function pngOfAbout(bytes: number, seed = 7): Buffer {
  // RGBA noise with an opaque alpha channel deflates to about 3.45 bytes per pixel
  const side = Math.max(8, Math.floor(Math.sqrt(bytes / 3.45)));
  return makeCover(side, side, seed);
}

interface NodeSample {
  leaderChanges: number;
  cpuWaitS?: number;
  loop?: HistogramScrape;
  rtt?: HistogramScrape;
}

async function scrape(cluster: Cluster, id: string): Promise<NodeSample> {
  const r = await send(cluster.node(id).httpPort, 'GET', '/metrics', undefined, {}, 10_000);
  const text = r.body.toString('utf8');
  const m = /^stego_raft_leader_changes_total(?:\{[^}]*\})? (\d+)/m.exec(text);
  const loop = parseHistogram(text, 'stego_consensus_loop_delay_seconds');
  const rtt = parseHistogram(text, 'stego_raft_heartbeat_rtt_seconds');
  const wait = /^stego_consensus_thread_cpu_wait_seconds_total ([0-9.e+-]+)/m.exec(text);
  return { leaderChanges: m ? Number(m[1]) : 0, ...(loop ? { loop } : {}), ...(rtt ? { rtt } : {}), ...(wait ? { cpuWaitS: Number(wait[1]) } : {}) };
}

function mergeHistograms(hs: HistogramScrape[]): HistogramScrape | undefined {
  if (hs.length === 0) return undefined;
  return hs.reduce((a, b) => ({ buckets: a.buckets.map(([le, c], i) => [le, c + (b.buckets[i]?.[1] ?? 0)]), sum: a.sum + b.sum, count: a.count + b.count }));
}

function histogramMaxMs(h: HistogramScrape): number {
  let prevCount = 0;
  let max = 0;
  for (const [le, cum] of h.buckets) {
    if (cum > prevCount) max = le;
    prevCount = cum;
  }
  return max * 1000;
}

function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Runs `load` against `target` and measures the whole cluster meanwhile: leader changes (every node's
 * counter, so a change seen anywhere counts), consensus loop delay (all nodes), heartbeat RTT (leaders),
 * node RSS (sampled every 100 ms), and the clients' outcomes.
 */
export async function measureCase(
  cluster: Cluster,
  name: string,
  target: string,
  load: () => Promise<ClientOutcome[]>,
  notes = '',
): Promise<CaseResult> {
  const ids = cluster.liveIds();
  const before = new Map<string, NodeSample>();
  for (const id of ids) before.set(id, await scrape(cluster, id));
  let rssPeak = 0;
  const sampler = setInterval(() => {
    for (const id of cluster.liveIds()) rssPeak = Math.max(rssPeak, rssMiB(cluster.node(id).pid));
  }, 100);
  let outcomes: ClientOutcome[];
  try {
    outcomes = await load();
  } finally {
    clearInterval(sampler);
  }
  let leaderChanges = 0;
  const loops: HistogramScrape[] = [];
  const rtts: HistogramScrape[] = [];
  let cpuWaitMs = NaN;
  for (const id of cluster.liveIds()) {
    const after = await scrape(cluster, id);
    const b = before.get(id);
    // a restarted node's counters start again from zero; its first leader sighting is not a change
    const restarted = b === undefined || after.leaderChanges < b.leaderChanges;
    if (!restarted) leaderChanges += after.leaderChanges - b.leaderChanges;
    if (after.loop) loops.push(histogramDelta(after.loop, restarted ? undefined : b.loop));
    if (after.rtt) rtts.push(histogramDelta(after.rtt, restarted ? undefined : b.rtt));
    if (after.cpuWaitS !== undefined) {
      const waited = (after.cpuWaitS - (restarted ? 0 : (b.cpuWaitS ?? 0))) * 1000;
      cpuWaitMs = Number.isNaN(cpuWaitMs) ? waited : Math.max(cpuWaitMs, waited);
    }
  }
  const loop = mergeHistograms(loops);
  const rtt = mergeHistograms(rtts);
  const okMs = outcomes.filter((o) => o.status >= 200 && o.status < 300).map((o) => o.ms);
  return {
    name,
    target,
    leaderChanges,
    noLeader: outcomes.filter((o) => o.code === 'no_leader').length,
    loopDelayP50Ms: loop ? histogramPercentileMs(loop, 50) : NaN,
    loopDelayP99Ms: loop ? histogramPercentileMs(loop, 99) : NaN,
    loopDelayMaxMs: loop ? histogramMaxMs(loop) : NaN,
    heartbeatRttP99Ms: rtt ? histogramPercentileMs(rtt, 99) : NaN,
    clientP50Ms: percentile(okMs, 50),
    clientP99Ms: percentile(okMs, 99),
    rssPeakMiB: rssPeak,
    consensusCpuWaitMs: cpuWaitMs,
    ok: okMs.length,
    refused: outcomes.filter((o) => o.status === 503 || o.status === 413 || o.status === 429).length,
    failed: outcomes.filter((o) => o.status === 0 || o.status >= 500 && o.status !== 503).length,
    notes,
  };
}

// ---- the loads ------------------------------------------------------------------------------------

export async function embedBurst(port: number, cover: Buffer, n: number): Promise<ClientOutcome[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) => {
      const f = embedForm(cover, `isolation embed ${i}`);
      return send(port, 'POST', '/api/embed', f.body, f.headers);
    }),
  );
}

/** The Authorization header of the harness's API token (object routes need one). */
export function authOf(cluster: Cluster): Record<string, string> {
  return { authorization: `Bearer ${cluster.apiToken}` };
}

export async function objectWrites(port: number, png: Buffer, n: number, auth: Record<string, string>): Promise<ClientOutcome[]> {
  return Promise.all(Array.from({ length: n }, () => send(port, 'POST', '/api/objects', png, { ...auth, 'content-type': 'image/png' })));
}

/** Closed loop of `clients` writers, each storing `png` back to back for `seconds`. */
export async function smallWriters(port: number, png: Buffer, clients: number, seconds: number, auth: Record<string, string>): Promise<ClientOutcome[]> {
  const out: ClientOutcome[] = [];
  const end = performance.now() + seconds * 1000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const one = (): Promise<ClientOutcome> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const req = http.request(
        { host: '127.0.0.1', port, method: 'POST', path: '/api/objects', agent, headers: { ...auth, 'content-type': 'image/png', 'content-length': String(png.length) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let code: string | undefined;
            if ((res.statusCode ?? 0) >= 400) {
              try {
                code = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: string } }).error?.code;
              } catch {
                code = undefined;
              }
            }
            resolve({ status: res.statusCode ?? 0, ...(code === undefined ? {} : { code }), ms: performance.now() - t0 });
          });
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error('client timeout')));
      req.on('error', (e) => resolve({ status: 0, code: `client: ${e.message}`, ms: performance.now() - t0 }));
      req.end(png);
    });
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const o = await one();
        out.push(o);
        // a refused write is retried after the pause the server asked for, scaled down
        if (o.status === 503) await new Promise((r) => setTimeout(r, 50));
      }
    }),
  );
  agent.destroy();
  return out;
}

/**
 * (d): `uploads` requests that announce a large body, send a little and stall; `downloads` GETs of a large
 * object whose responses are never read. Held for `holdMs` while `probe` measures ordinary writes, then
 * every socket is destroyed.
 */
export async function stalledClients(
  port: number,
  objectId: string,
  uploads: number,
  downloads: number,
  holdMs: number,
  probe: () => Promise<ClientOutcome[]>,
  auth: Record<string, string>,
): Promise<ClientOutcome[]> {
  const reqs: http.ClientRequest[] = [];
  for (let i = 0; i < uploads; i++) {
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: '/api/objects', agent: false,
      headers: { ...auth, 'content-type': 'image/png', 'content-length': String(16 * 1024 * 1024) },
    });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(64 * 1024, 1));
    reqs.push(req);
  }
  for (let i = 0; i < downloads; i++) {
    const req = http.request({ host: '127.0.0.1', port, method: 'GET', path: `/api/objects/${objectId}`, agent: false, headers: auth }, (res) => res.pause());
    req.on('error', () => undefined);
    req.end();
    reqs.push(req);
  }
  const [out] = await Promise.all([probe(), new Promise((r) => setTimeout(r, holdMs))]);
  for (const r of reqs) r.destroy();
  return out;
}

export function formatResults(results: CaseResult[]): string {
  const f = (v: number): string => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : 'n/a');
  const header = 'case                                   target  leader_changes  no_leader  loop p50/p99/max ms  hb rtt p99 ms  client p50/p99 ms  rss peak MiB  cpu wait ms  ok/refused/failed';
  const lines = results.map(
    (r) =>
      `${r.name.padEnd(38)} ${r.target.padEnd(7)} ${String(r.leaderChanges).padStart(14)} ${String(r.noLeader).padStart(10)} ` +
      `${`${f(r.loopDelayP50Ms)}/${f(r.loopDelayP99Ms)}/${f(r.loopDelayMaxMs)}`.padStart(20)} ${f(r.heartbeatRttP99Ms).padStart(14)} ` +
      `${`${f(r.clientP50Ms)}/${f(r.clientP99Ms)}`.padStart(18)} ${r.rssPeakMiB.toFixed(0).padStart(13)} ${f(r.consensusCpuWaitMs).padStart(12)} ${`${r.ok}/${r.refused}/${r.failed}`.padStart(18)}` +
      (r.notes ? `  ${r.notes}` : ''),
  );
  return [header, ...lines].join('\n');
}

export type CaseName = 'a' | 'b' | 'c' | 'd' | 'e';

export interface RunOptions {
  sizes: CaseSizes;
  cases: CaseName[];
  targets: ('leader' | 'follower')[];
  /** Extra environment for the nodes (never timings: the cases run with the default timings). */
  env?: Record<string, string>;
  log?: (line: string) => void;
  /**
   * Runs a case again (up to this many attempts in all) when it lost the leader while a consensus thread
   * waited at least STARVED_WAIT_MS for a CPU: on a machine shared with other work that loss measures the
   * machine, and only a repetition without it says something about the node. Default 1: report what ran.
   */
  starvedAttempts?: number;
  /** Stop the nodes gracefully at the end, so those started with `--cpu-prof` write their profiles. */
  stopGracefully?: boolean;
}

/** A consensus thread that waited this long for a CPU during a case could miss an election timeout. */
export const STARVED_WAIT_MS = 300;

/** Starts a 3-node cluster, runs the chosen cases against the leader's and a follower's port, stops it. */
export async function runIsolationCases(opts: RunOptions): Promise<CaseResult[]> {
  const log = opts.log ?? (() => undefined);
  const s = opts.sizes;
  const cluster = await Cluster.start({ size: 3, env: opts.env ?? {}, startDeadlineMs: 30_000 });
  const auth = authOf(cluster);
  const results: CaseResult[] = [];
  try {
    const cover = makeCover(s.embedWidth, s.embedHeight, 3);
    const big = pngOfAbout(s.bigObjectBytes - 64 * 1024, 5);
    const huge = pngOfAbout(s.hugeObjectBytes, 6);
    const small = makeCover(16, 16, 9);
    log(`covers: embed ${cover.length} B, big ${big.length} B, huge ${huge.length} B, small ${small.length} B`);
    for (const which of opts.targets) {
      const { leaderId } = await cluster.waitForLeader({ deadlineMs: 20_000 });
      const target = which === 'leader' ? leaderId : cluster.liveIds().find((id) => id !== leaderId)!;
      const port = cluster.node(target).httpPort;
      const label = `${which}:${target}`;
      const record = (r: CaseResult): void => {
        results.push(r);
        log(formatResults([r]).split('\n')[1]!);
        if (r.failed > 0 || r.ok === 0 || r.leaderChanges > 0) {
          const lines = cluster.dumpLogs().split('\n').filter((l) => /"event"|fatal|"level":"(warn|error)"/.test(l));
          log(`election and warning lines after ${r.name}:\n${lines.slice(-40).join('\n')}`);
        }
      };
      const measured = async (run: () => Promise<CaseResult>): Promise<void> => {
        let r = await run();
        for (let attempt = 2; attempt <= (opts.starvedAttempts ?? 1) && r.leaderChanges + r.noLeader > 0 && r.consensusCpuWaitMs >= STARVED_WAIT_MS; attempt++) {
          const starved = r;
          log(formatResults([starved]).split('\n')[1]!);
          r = await run();
          r.notes =
            `${r.notes ? `${r.notes}; ` : ''}attempt ${attempt}: the one before lost the leader (${starved.leaderChanges} changes, ` +
            `${starved.noLeader} no_leader) while a consensus thread waited ${starved.consensusCpuWaitMs.toFixed(0)} ms for a CPU`;
        }
        record(r);
      };
      if (opts.cases.includes('a')) {
        for (const n of s.embedBursts) await measured(() => measureCase(cluster, `(a) ${n} concurrent embeds`, label, () => embedBurst(port, cover, n)));
      }
      if (opts.cases.includes('b')) {
        await measured(() => measureCase(cluster, `(b) ${s.bigWriters} x ${(big.length / 2 ** 20).toFixed(1)} MiB writes`, label, () => objectWrites(port, big, s.bigWriters, auth)));
        await measured(() => measureCase(cluster, `(b) one ${(huge.length / 1e6).toFixed(0)} MB object`, label, () => objectWrites(port, huge, 1, auth)));
      }
      if (opts.cases.includes('c')) {
        await measured(async () => {
          const snapsBefore = await snapshotCounts(cluster);
          const taken = async (): Promise<number> => snapshotsTaken(snapsBefore, await snapshotCounts(cluster));
          // the case is defined across two snapshots: on a slow machine a snapshot of everything stored
          // so far can outlast the writing time, so the writers go on (bounded) until two are taken
          const r = await measureCase(cluster, `(c) ${s.smallWriters} clients x 1 KiB`, label, async () => {
            const out = await smallWriters(port, small, s.smallWriters, s.smallSeconds, auth);
            const deadline = performance.now() + 60_000;
            while ((await taken()) < 2 && performance.now() < deadline) out.push(...(await smallWriters(port, small, s.smallWriters, 2, auth)));
            return out;
          });
          r.notes = `snapshots taken on the leader: ${await taken()}`;
          return r;
        });
      }
      if (opts.cases.includes('d')) {
        const stored = await send(port, 'POST', '/api/objects', big, { ...auth, 'content-type': 'image/png' });
        const id = (JSON.parse(stored.body.toString('utf8')) as { id: string }).id;
        await measured(() =>
          measureCase(cluster, `(d) ${s.stalledUploads} stalled up + ${s.unreadDownloads} unread down`, label, () =>
            stalledClients(port, id, s.stalledUploads, s.unreadDownloads, Math.max(3000, s.smallSeconds * 500), () => smallWriters(port, small, 8, Math.max(3, s.smallSeconds / 2), auth), auth),
          ),
        );
      }
      if (opts.cases.includes('e')) await measured(() => followerCatchUp(cluster, which, s, small, big, log));
    }
  } catch (e) {
    // what the nodes said about elections, links and warnings explains a failed wait better than the wait
    const lines = cluster.dumpLogs().split('\n').filter((l) => /^========|"event"|fatal|"level":"(warn|error)"|link/.test(l));
    console.error(`isolation cases failed (${(e as Error).message}); election, link and warning lines:\n${lines.slice(-120).join('\n')}`);
    throw e;
  } finally {
    if (process.env['STEGO_ISO_DUMP']) (await import('node:fs')).writeFileSync(process.env['STEGO_ISO_DUMP'], cluster.dumpLogs());
    if (opts.stopGracefully) await cluster.stopGracefully();
    await cluster.stop();
  }
  return results;
}

/** Each live node's count of snapshots it created. */
async function snapshotCounts(cluster: Cluster): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const id of cluster.liveIds()) {
    const r = await send(cluster.node(id).httpPort, 'GET', '/metrics', undefined, {}, 10_000);
    const m = /^stego_raft_snapshots_total\{event="created"\} (\d+)/m.exec(r.body.toString('utf8'));
    counts.set(id, m ? Number(m[1]) : 0);
  }
  return counts;
}

/**
 * Snapshots created during a case by the node that created most (the leader's count when it held): per
 * node deltas, since a node that led earlier keeps a larger total than today's leader, and a restarted
 * node counts from zero again.
 */
function snapshotsTaken(before: Map<string, number>, after: Map<string, number>): number {
  let most = 0;
  for (const [id, n] of after) {
    const b = before.get(id) ?? 0;
    most = Math.max(most, n >= b ? n - b : n);
  }
  return most;
}

/**
 * (e): a follower is stopped, `catchUpBytes` of objects are written without it, then it restarts and
 * catches up (snapshot + log) while small writers run against the target.
 */
async function followerCatchUp(cluster: Cluster, which: 'leader' | 'follower', s: CaseSizes, small: Buffer, big: Buffer, log: (l: string) => void): Promise<CaseResult> {
  const { leaderId } = await cluster.waitForLeader({ deadlineMs: 20_000 });
  const followers = cluster.liveIds().filter((id) => id !== leaderId);
  const lagging = followers[followers.length - 1]!;
  const target = which === 'leader' ? leaderId : followers[0]!;
  const port = cluster.node(target).httpPort;
  await cluster.kill(lagging, 'SIGKILL');
  const writes = Math.ceil(s.catchUpBytes / big.length);
  for (let i = 0; i < writes; i += 4) await objectWrites(cluster.node(leaderId).httpPort, big, Math.min(4, writes - i), authOf(cluster));
  log(`(e) wrote ${writes} x ${big.length} B with ${lagging} down`);
  const t0 = performance.now();
  let caughtUpMs = NaN;
  const r = await measureCase(cluster, `(e) ${lagging} restarts, catches up ${(s.catchUpBytes / 2 ** 20).toFixed(0)} MiB`, `${which}:${target}`, async () => {
    const writers = smallWriters(port, small, s.smallWriters, s.smallSeconds, authOf(cluster));
    // the restarted node answers HTTP once its log is open and its links listen; polled below
    await cluster.restart(lagging, { waitHttp: false });
    // what the leader had committed when the node came back (a slow answer under load is asked again)
    let target: number | undefined;
    for (;;) {
      target ??= (await cluster.status(leaderId, 10_000).catch(() => undefined))?.commit_index;
      const st = target === undefined ? undefined : await cluster.status(lagging, 10_000).catch(() => undefined);
      if (st && target !== undefined && st.applied_index >= target) break;
      if (performance.now() - t0 > 600_000) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    caughtUpMs = performance.now() - t0;
    return writers;
  });
  r.notes = `caught up in ${(caughtUpMs / 1000).toFixed(1)} s`;
  return r;
}
