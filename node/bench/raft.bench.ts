// bench:raft — committed writes/s and latency of ~1 KiB objects through a 3-node StegoCluster, side by side
// in the same run with a 3-member etcd 3.4 cluster (1 KiB puts through the etcd3 client), at several client
// concurrencies. Both clusters run on loopback with fsync on. Writes go to the current leader of each.
//
//   npm run bench:raft -- [--seconds 8] [--warmup 1] [--levels 1,16,64,256] [--mode store|embed]
//                         [--cpu-prof DIR] [--node-env NAME=VALUE ...]
//
// --cpu-prof DIR runs the StegoCluster nodes with `--cpu-prof` (one .cpuprofile per thread, the consensus
// thread included) and stops them with SIGTERM at the end so the profiles are written; --node-env passes
// extra environment to every node (ablations, e.g. a snapshot threshold).
//
// --mode store (default) is the like-for-like comparison with etcd's 1 KiB put: each write stores a finished
// ~1 KiB stego PNG (POST /api/objects with Content-Type image/png), so it measures HTTP + Raft + fsync, as
// etcd's put measures gRPC + Raft + fsync. --mode embed also embeds every object first (multipart form):
// POST /api/objects embeds the message into the cover in a worker thread before proposing, so a StegoCluster
// write costs an embed + a Raft commit; the cover is a 16×16 noise PNG, so the replicated object is ~1 KiB.
// The embed runs in a bounded worker pool (cores workers + STEGO_POOL_QUEUE waiting), so concurrent writes
// beyond that are refused with 503 and counted as errors. To separate the Raft write path from HTTP + embed,
// the bench records the node's Server-Timing phases (pre/validate or embed/commit) of every write and reads the leader's
// own histograms (propose → applied, durable-log saves) over each window.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { Etcd3 } from 'etcd3';
import { Cluster, type ObjectAck } from '../test/cluster/harness.js';
import { EtcdCluster } from '../test/cluster/etcd.js';
import { makeCover } from '../test/cluster/fixtures.js';
import {
  closedLoop,
  fmtMs,
  histogramDelta,
  histogramPercentileMs,
  parseHistogram,
  percentile,
  type HistogramScrape,
  type LoadResult,
} from '../test/cluster/stats.js';

interface Args {
  seconds: number;
  warmup: number;
  levels: number[];
  mode: 'store' | 'embed';
  cpuProfDir?: string;
  nodeEnv: Record<string, string>;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seconds: 8, warmup: 1, levels: [1, 16, 64, 256], mode: 'store', nodeEnv: {} };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--seconds' && v) args.seconds = Number(argv[++i]);
    else if (argv[i] === '--warmup' && v) args.warmup = Number(argv[++i]);
    else if (argv[i] === '--levels' && v) args.levels = argv[++i]!.split(',').map(Number);
    else if (argv[i] === '--mode' && (v === 'store' || v === 'embed')) args.mode = argv[++i] as Args['mode'];
    else if (argv[i] === '--cpu-prof' && v) args.cpuProfDir = argv[++i];
    else if (argv[i] === '--node-env' && v && v.includes('=')) {
      const [name, ...rest] = argv[++i]!.split('=');
      args.nodeEnv[name!] = rest.join('=');
    }
  }
  return args;
}

/** A hand-built multipart body: FormData per request would cost the client more CPU than the server. */
function multipart(cover: Buffer, message: string): { body: Buffer; type: string } {
  const boundary = `----stegobench${randomBytes(8).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.png"\r\nContent-Type: image/png\r\n\r\n`,
    ),
    cover,
    Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n${message}\r\n--${boundary}--\r\n`),
  ]);
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

/**
 * Per-request phases from the node's Server-Timing header: pre (parse), validate (raw PNG check) or embed
 * (worker pool), commit (Raft, through the consensus thread), and `outside`: the client's latency minus the
 * three, i.e. time in socket buffers, the HTTP parser and the event loop queues of both ends.
 */
interface Phases {
  pre: number[];
  work: number[];
  commit: number[];
  outside: number[];
  /** Every write of the window as [start (performance.now() ms), client latency ms], for the tail analysis. */
  writes: [number, number][];
}

function newPhases(): Phases {
  return { pre: [], work: [], commit: [], outside: [], writes: [] };
}

/**
 * Where the slowest 1% of a window's writes come from. A write stalls either alone (its own batch was
 * slow, or it arrived just after a batch left) or together with every write in flight at the time (the
 * pipeline stopped: a slow fsync, a GC pause, snapshot or compaction work on the path). The second kind
 * shows as the slow writes starting within a few short intervals: `bins` counts the distinct 100 ms
 * intervals their starts fall in, `top` how many of them the busiest interval holds.
 */
function tailShape(writes: [number, number][]): { n: number; bins: number; top: number; thresholdMs: number } {
  if (writes.length === 0) return { n: 0, bins: 0, top: 0, thresholdMs: NaN };
  const sorted = [...writes].sort((a, b) => b[1] - a[1]);
  const n = Math.max(1, Math.floor(writes.length / 100));
  const slow = sorted.slice(0, n);
  const perBin = new Map<number, number>();
  for (const [start] of slow) perBin.set(Math.floor(start / 100), (perBin.get(Math.floor(start / 100)) ?? 0) + 1);
  return { n, bins: perBin.size, top: Math.max(...perBin.values()), thresholdMs: slow[slow.length - 1]![1] };
}

function recordServerTiming(header: string | null, clientMs: number, into: Phases | undefined): void {
  if (!header || !into) return;
  let inside = 0;
  for (const part of header.split(',')) {
    const m = /^\s*(pre|validate|embed|commit);dur=([\d.]+)/.exec(part);
    if (!m) continue;
    const ms = Number(m[2]);
    inside += ms;
    into[m[1] === 'validate' || m[1] === 'embed' ? 'work' : (m[1] as 'pre' | 'commit')].push(ms);
  }
  into.outside.push(Math.max(0, clientMs - inside));
}

/**
 * node:http with a keep-alive agent, not fetch: undici's fetch costs ~1 ms more per request on this class
 * of machine (measured: store p50 3.3 ms with fetch, 2.1 ms with node:http), client-side overhead that
 * would be billed to the cluster. etcd gets its own native client (etcd3 over gRPC) in the same way.
 */
const keepAlive = new http.Agent({ keepAlive: true });
/** The harness's API token (object routes need one); set once the cluster is up. */
let authorization = '';

interface RawAnswer {
  status: number;
  /** Request sent → response read, as this client saw it. */
  ms: number;
  text: string;
  headers: http.IncomingHttpHeaders;
}

function post(url: string, body: Buffer, contentType: string): Promise<RawAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent: keepAlive, headers: { 'content-type': contentType, 'content-length': body.length, authorization } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function expectCreated(res: RawAnswer, phases?: Phases): Promise<ObjectAck> {
  if (res.status === 201) {
    const timing = res.headers['server-timing'];
    recordServerTiming(typeof timing === 'string' ? timing : null, res.ms, phases);
    return JSON.parse(res.text) as ObjectAck;
  }
  if (res.status === 503) {
    // The node's bounded embed queue is full: behave like a well-mannered client and honour Retry-After.
    // Retrying at once would turn the refused clients into a flood of 503s that eats the leader's CPU.
    const waitS = Number(res.headers['retry-after'] ?? '1');
    await new Promise((r) => setTimeout(r, (Number.isFinite(waitS) && waitS > 0 ? waitS : 1) * 1000));
  }
  throw new Error(`HTTP ${res.status} ${res.text.slice(0, 60)}`);
}

/** Embeds `message` into `cover` and commits the result (multipart form, as a browser would send it). */
async function stegoWrite(url: string, cover: Buffer, message: string, phases?: Phases): Promise<ObjectAck> {
  const { body, type } = multipart(cover, message);
  return expectCreated(await post(`${url}/api/objects`, body, type), phases);
}

/** Stores a finished stego PNG as is: the replicated write path without the embed. */
async function stegoStore(url: string, png: Buffer, phases?: Phases): Promise<ObjectAck> {
  const started = performance.now();
  const ack = await expectCreated(await post(`${url}/api/objects`, png, 'image/png'), phases);
  phases?.writes.push([started, performance.now() - started]);
  return ack;
}

interface Row {
  concurrency: number;
  stego: LoadResult;
  etcd: LoadResult;
  /** CPU per write of the three server processes over the window, ms. */
  stegoCpuMs: number;
  etcdCpuMs: number;
  /** Inside the leader over the measured window: propose → applied, and durable-log saves. */
  raftCommit?: HistogramScrape;
  fsync?: HistogramScrape;
  phases: Phases;
  /** Snapshots created over the window, summed over the three nodes, and their total duration, s. */
  snapshots: number;
  snapshotSeconds: number;
}

interface LeaderScrape {
  commit?: HistogramScrape;
  fsync?: HistogramScrape;
}

/** A labelled counter's value (0 when absent) from /metrics text. */
function counterValue(text: string, nameAndLabels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${nameAndLabels} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** Snapshots created so far and the seconds they took, summed over the given nodes. */
async function scrapeSnapshots(urls: string[]): Promise<{ count: number; seconds: number }> {
  let count = 0;
  let seconds = 0;
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    count += counterValue(text, 'stego_raft_snapshots_total{event="created"}');
    seconds += counterValue(text, 'stego_raft_snapshot_duration_seconds_sum{event="created"}');
  }
  return { count, seconds };
}

async function scrapeLeader(url: string): Promise<LeaderScrape> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return {
    commit: parseHistogram(text, 'stego_raft_proposal_duration_seconds'),
    fsync: parseHistogram(text, 'stego_storage_fsync_duration_seconds'),
  };
}

function summarize(r: LoadResult): { ops: number; p50: number; p99: number } {
  return { ops: r.opsPerSec, p50: percentile(r.latenciesMs, 50), p99: percentile(r.latenciesMs, 99) };
}

function printTable(rows: Row[], objectBytes: number, args: Args): void {
  console.log(`\nbench:raft — ${new Date().toISOString()} — mode ${args.mode} — ${args.seconds}s per level (+${args.warmup}s warm-up), ` +
    `3 nodes each on loopback, object ${objectBytes} B (StegoCluster), value ${objectBytes} B (etcd)`);
  console.log('| clients | Stego ops/s | Stego p50 ms | Stego p99 ms | etcd ops/s | etcd p50 ms | etcd p99 ms | ops ratio | p50 ratio | p99 ratio | server CPU/write S/E ms | errors S/E |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of rows) {
    const s = summarize(row.stego);
    const e = summarize(row.etcd);
    console.log(
      `| ${row.concurrency} | ${s.ops.toFixed(0)} | ${fmtMs(s.p50)} | ${fmtMs(s.p99)} | ${e.ops.toFixed(0)} | ${fmtMs(e.p50)} | ` +
        `${fmtMs(e.p99)} | ${(s.ops / e.ops).toFixed(2)}× | ${(s.p50 / e.p50).toFixed(2)}× | ${(s.p99 / e.p99).toFixed(2)}× | ` +
        `${row.stegoCpuMs.toFixed(2)} / ${row.etcdCpuMs.toFixed(2)} | ${row.stego.errors}/${row.etcd.errors} |`,
    );
  }
  console.log('\nWhere a StegoCluster write spends its time (the leader\'s Server-Timing header, ms, p50 / p99):');
  console.log(`| clients | pre (parse) | ${args.mode === 'store' ? 'validate (PNG check)' : 'embed (worker pool)'} | commit (Raft) | outside (queues, client) | commit vs etcd put p50 |`);
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const row of rows) {
    const ph = row.phases;
    if (!ph.commit.length) continue;
    const pp = (xs: number[]) => `${fmtMs(percentile(xs, 50))} / ${fmtMs(percentile(xs, 99))}`;
    const ratio = percentile(ph.commit, 50) / summarize(row.etcd).p50;
    console.log(`| ${row.concurrency} | ${pp(ph.pre)} | ${pp(ph.work)} | ${pp(ph.commit)} | ${pp(ph.outside)} | ${ratio.toFixed(2)}× |`);
  }
  console.log('\nInside the StegoCluster leader over the same windows (from its /metrics histograms; bucket-interpolated):');
  console.log('| clients | commits/s | propose→applied p50 ms | p99 ms | log saves (fsync) | mean save ms | save p99 ms | commits per save | snapshots (3 nodes) / s spent |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of rows) {
    const c = row.raftCommit;
    const f = row.fsync;
    if (!c) continue;
    const secs = row.stego.elapsedMs / 1000;
    console.log(
      `| ${row.concurrency} | ${(c.count / secs).toFixed(0)} | ${fmtMs(histogramPercentileMs(c, 50))} | ${fmtMs(histogramPercentileMs(c, 99))} | ` +
        `${f?.count ?? 'n/a'} | ${f && f.count ? fmtMs((f.sum / f.count) * 1000) : 'n/a'} | ${f && f.count ? fmtMs(histogramPercentileMs(f, 99)) : 'n/a'} | ` +
        `${f && f.count ? (c.count / f.count).toFixed(2) : 'n/a'} | ${row.snapshots} / ${row.snapshotSeconds.toFixed(2)} |`,
    );
  }
  console.log('\nThe slowest 1% of StegoCluster writes: alone, or together (starts bunched in a few 100 ms intervals: the pipeline stalled)?');
  console.log('| clients | writes | slowest 1% | slower than ms | distinct 100 ms intervals of their starts | most in one interval |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const row of rows) {
    const t = tailShape(row.phases.writes);
    if (t.n === 0) continue;
    console.log(`| ${row.concurrency} | ${row.phases.writes.length} | ${t.n} | ${fmtMs(t.thresholdMs)} | ${t.bins} | ${t.top} |`);
  }
  // the goals of the replication work (issue 8): same-run ratios against etcd
  const one = rows.find((r) => r.concurrency === 1);
  const high = rows.reduce((a, b) => (b.concurrency > a.concurrency ? b : a));
  if (one) {
    const ratio = summarize(one.stego).p50 / summarize(one.etcd).p50;
    console.log(`goal p50 ≤ 1.3× etcd with 1 client: ${ratio.toFixed(2)}× → ${ratio <= 1.3 ? 'MET' : 'NOT MET'}`);
  }
  const tput = summarize(high.stego).ops / summarize(high.etcd).ops;
  console.log(`goal ≥ 0.9× etcd throughput at ${high.concurrency} clients: ${tput.toFixed(2)}× → ${tput >= 0.9 ? 'MET' : 'NOT MET'}`);
  const p99 = summarize(high.stego).p99 / summarize(high.etcd).p99;
  console.log(`goal p99 ≤ etcd's at ${high.concurrency} clients: ${p99.toFixed(2)}× → ${p99 <= 1 ? 'MET' : 'NOT MET'}`);
  for (const row of rows) {
    for (const [name, r] of [['stego', row.stego], ['etcd', row.etcd]] as const) {
      if (r.errors) console.log(`  ${name} @${row.concurrency} errors: ${JSON.stringify([...r.errorKinds])}`);
    }
  }
}

/**
 * CPU seconds (user + system, every thread) the given processes have used so far, from /proc. Divided by
 * the writes of a window it gives the servers' CPU per write: on a shared machine the one figure that
 * does not depend on how long the threads waited for a core.
 */
function cpuSeconds(pids: (number | undefined)[]): number {
  let ticks = 0;
  for (const pid of pids) {
    if (pid === undefined) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone: counted as nothing
    }
  }
  return ticks / 100; // USER_HZ is 100 on Linux
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const cover = makeCover(16, 16, 42);
  let stego: Cluster | undefined;
  let etcd: EtcdCluster | undefined;
  let etcdClient: Etcd3 | undefined;
  try {
    console.log('starting a 3-node StegoCluster and a 3-member etcd cluster ...');
    [stego, etcd] = await Promise.all([
      Cluster.start({
        size: 3,
        logLevel: process.env.STEGO_LOG_LEVEL ?? 'warn',
        env: {
          ...args.nodeEnv,
          ...(args.cpuProfDir ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${args.cpuProfDir}`.trim() } : {}),
        },
      }),
      EtcdCluster.start(3),
    ]);
    const { leaderId } = await stego.waitForLeader();
    const stegoUrl = stego.node(leaderId).url;
    authorization = `Bearer ${stego.apiToken}`;
    const etcdUrl = await etcd.leaderUrl();
    etcdClient = new Etcd3({ hosts: etcdUrl });

    const probe = await stegoWrite(stegoUrl, cover, 'probe');
    const value = randomBytes(probe.size);
    await etcdClient.put('probe').value(value);
    console.log(`StegoCluster leader ${leaderId} (${stegoUrl}); etcd leader ${etcdUrl}; object size ${probe.size} B; mode ${args.mode}`);
    const stored = Buffer.from(await (await fetch(`${stegoUrl}/api/objects/${probe.id}`, { headers: { authorization } })).arrayBuffer());

    const run = async (c: number, seconds: number) => {
      const client = etcdClient!;
      const stegoPids = stego!.liveIds().map((id) => stego!.node(id).pid);
      const etcdPids = etcd!.members.map((m) => m.child.pid);
      const nodeUrls = stego!.liveIds().map((id) => stego!.node(id).url);
      const before = await scrapeLeader(stegoUrl);
      const snapsBefore = await scrapeSnapshots(nodeUrls);
      const phases = newPhases();
      const stegoCpu0 = cpuSeconds(stegoPids);
      const s = await closedLoop(c, seconds, async (w, i) => {
        if (args.mode === 'store') await stegoStore(stegoUrl, stored, phases);
        else await stegoWrite(stegoUrl, cover, `c${c}-w${w}-${i}`, phases);
      });
      const stegoCpu = cpuSeconds(stegoPids) - stegoCpu0;
      const after = await scrapeLeader(stegoUrl);
      const snapsAfter = await scrapeSnapshots(nodeUrls);
      const etcdCpu0 = cpuSeconds(etcdPids);
      const e = await closedLoop(c, seconds, async (w, i) => {
        await client.put(`bench/c${c}/w${w}/${i}`).value(value);
      });
      const etcdCpu = cpuSeconds(etcdPids) - etcdCpu0;
      const writes = (r: LoadResult) => Math.max(1, r.ok);
      return {
        s,
        e,
        stegoCpuMs: (stegoCpu * 1000) / writes(s),
        etcdCpuMs: (etcdCpu * 1000) / writes(e),
        phases,
        raftCommit: after.commit && histogramDelta(after.commit, before.commit),
        fsync: after.fsync && histogramDelta(after.fsync, before.fsync),
        snapshots: snapsAfter.count - snapsBefore.count,
        snapshotSeconds: snapsAfter.seconds - snapsBefore.seconds,
      };
    };
    const rows: Row[] = [];
    for (const c of args.levels) {
      if (args.warmup > 0) await run(c, args.warmup);
      const { s, e, raftCommit, fsync, phases, stegoCpuMs, etcdCpuMs, snapshots, snapshotSeconds } = await run(c, args.seconds);
      rows.push({ concurrency: c, stego: s, etcd: e, raftCommit, fsync, phases, stegoCpuMs, etcdCpuMs, snapshots, snapshotSeconds });
      console.log(`  clients ${c}: stego ${s.opsPerSec.toFixed(0)} ops/s, etcd ${e.opsPerSec.toFixed(0)} ops/s`);
    }
    printTable(rows, probe.size, args);
    if (args.mode !== 'embed') return;
    // The same request without Raft: what HTTP + multipart + the worker-pool embed cost on their own.
    const embedOnly = await closedLoop(1, Math.min(args.seconds, 4), async (_w, i) => {
      const { body, type } = multipart(cover, `embed-only-${i}`);
      const res = await post(`${stegoUrl}/api/embed`, body, type);
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    });
    console.log(
      `POST /api/embed on the leader (same cover and message size, no Raft), 1 client: ${embedOnly.opsPerSec.toFixed(0)} ops/s, ` +
        `p50 ${fmtMs(percentile(embedOnly.latenciesMs, 50))} ms, p99 ${fmtMs(percentile(embedOnly.latenciesMs, 99))} ms`,
    );
  } catch (err) {
    console.error(err);
    if (stego) console.error(stego.dumpLogs());
    process.exitCode = 1;
  } finally {
    keepAlive.destroy();
    etcdClient?.close();
    if (stego && args.cpuProfDir) await stego.stopGracefully();
    await stego?.stop();
    await etcd?.stop();
  }
}

await main();
