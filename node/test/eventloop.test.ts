// While a client streams embeds of a 12 MP RGB photo back to back through the real HTTP server and
// worker pool, the server's main event loop stays responsive: PNG decode, embedding and encode run in
// worker threads, the main thread only moves bytes.
//
// What the test asserts does not depend on how busy the machine is: the main thread's CPU time per embed
// (a codec on the loop costs ~1 s of CPU per 12 MP embed; moving the bytes costs ~60 ms), and a loop-delay
// p99 bound that a codec on the loop breaks by an order of magnitude (each embed would block it for
// hundreds of milliseconds). The 20 ms p99 target is a performance figure: it is printed here and
// measured with its idle baseline on a quiet machine (docs/http-api.md), not asserted, because on a shared
// 2-core machine the time the loop spends waiting for a CPU, not work on the loop, sets the tail.
//
// The server runs in a child process so its histogram sees only its own loop; the client runs in another
// one, at lower CPU priority, standing in for remote callers (see eventloop-client.ts).
// Bounded: at most MAX_REQUESTS embeds or CLIENT_BUDGET_MS of sending, whichever comes first (but at
// least two embeds, which a loaded machine may not fit in the budget).
import { expect } from 'chai';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ControlMessage, ServerMessage } from './eventloop-server.js';
import type { ClientMessage, ClientRequest } from './eventloop-client.js';
import { photoPng } from '../src/stego/png/synthetic.js';

/** Sampling period of the server's histogram (eventloop-server.ts): raw values include it. */
const RESOLUTION_MS = 10;

const SERVER = fileURLToPath(new URL('./eventloop-server.js', import.meta.url));
const CLIENT = fileURLToPath(new URL('./eventloop-client.js', import.meta.url));
const MAX_REQUESTS = 8;
const CLIENT_BUDGET_MS = 15_000;
/** The architecture's target for the loop-delay p99 (printed beside the measurement). */
const P99_TARGET_MS = 20;
/** The asserted bound (or 4x the idle baseline's p99 in the same run, if higher): a codec on the loop blocks it for hundreds of ms per embed. */
const P99_BOUND_MS = 150;
/** Main-thread CPU per embed: moving ~19 MB in and out costs ~60 ms; decode + embed + encode ~1 s. */
const MAIN_CPU_PER_EMBED_BOUND_MS = 250;
const BASELINE_MS = 2000;
/** The client's nice value: it stands in for remote callers, which do not share the server's CPUs. */
const CLIENT_NICE = 10;

type AnyMessage = ServerMessage | ClientMessage;

function nextMessage<T extends AnyMessage['type']>(child: ChildProcess, type: T, timeoutMs: number): Promise<Extract<AnyMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no '${type}' from the child process within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: AnyMessage): void => {
      if (m.type === type || m.type === 'failed') finish(m.type === 'failed' ? new Error(`client failed: ${m.message}`) : undefined, m as Extract<AnyMessage, { type: T }>);
    };
    const onExit = (code: number | null): void => finish(new Error(`child exited (code ${code}) before '${type}'`));
    function finish(err?: Error, m?: Extract<AnyMessage, { type: T }>): void {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    }
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  if (child.connected) child.disconnect();
  const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(killer);
}

/** A tiny embed from this process, outside the measurement: the first request compiles the request path. */
async function warmUp(url: string): Promise<void> {
  const fd = new FormData();
  fd.append('file', new Blob([await photoPng(64, 48)], { type: 'image/png' }), 'warm.png');
  fd.append('message', 'warm-up');
  const res = await fetch(url, { method: 'POST', body: fd });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`warm-up embed answered ${res.status}`);
}

describe('event loop under 12 MP embeds (server and client in child processes)', function () {
  this.timeout(180_000);
  let server: ChildProcess | undefined;
  let client: ChildProcess | undefined;

  after(async () => {
    await Promise.all([stop(client), stop(server)]);
  });

  it(`keeps codec work off the server's main loop (p99 delay printed against the ${P99_TARGET_MS} ms target)`, async () => {
    server = fork(SERVER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    client = fork(CLIENT, [String(CLIENT_NICE)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const [{ port, workers }, { photoBytes }] = await Promise.all([
      nextMessage(server, 'listening', 20_000),
      nextMessage(client, 'ready', 30_000),
    ]);
    const url = `http://127.0.0.1:${port}/api/embed`;

    // Baseline in the same run: the idle server's loop delay shows what the machine's load alone costs.
    server.send({ type: 'start' } satisfies ControlMessage);
    await new Promise((resolve) => setTimeout(resolve, BASELINE_MS));
    server.send({ type: 'report' } satisfies ControlMessage);
    const idle = await nextMessage(server, 'report', 10_000);

    await warmUp(url);
    server.send({ type: 'start' } satisfies ControlMessage);
    client.send({ url, maxRequests: MAX_REQUESTS, minRequests: 2, budgetMs: CLIENT_BUDGET_MS } satisfies ClientRequest);
    const done = await nextMessage(client, 'done', CLIENT_BUDGET_MS + 90_000);
    server.send({ type: 'report' } satisfies ControlMessage);
    const report = await nextMessage(server, 'report', 10_000);

    const delayMs = (raw: number): number => Math.round((raw - RESOLUTION_MS) * 100) / 100;
    const p99 = delayMs(report.p99Ms);
    console.log(
      `      ${done.statuses.length} embeds of ${(photoBytes / 1e6).toFixed(1)} MB 4000x3000 RGB in ${done.elapsedMs} ms ` +
        `(1 client at nice ${CLIENT_NICE} using ${done.cpuMs} ms CPU, ${workers} workers); server loop delay ` +
        `p50 ${delayMs(report.p50Ms)} ms, p99 ${p99} ms, max ${delayMs(report.maxMs)} ms over ${report.samples} samples ` +
        `(raw histogram p99 ${report.p99Ms} ms incl. the ${RESOLUTION_MS} ms period); server main thread ` +
        `${report.cpuMs ?? '?'} ms on CPU, ${report.runQueueWaitMs ?? '?'} ms runnable but waiting for a CPU; ` +
        `idle baseline p99 ${delayMs(idle.p99Ms)} ms, run-queue wait ${idle.runQueueWaitMs ?? '?'} ms in ${BASELINE_MS} ms`,
    );
    console.log(`      loop delay p99 ${p99} ms against the ${P99_TARGET_MS} ms target (${p99 < P99_TARGET_MS ? 'met' : 'missed'} in this run)`);
    expect(done.statuses.length).to.be.at.least(2);
    expect(done.statuses.every((s) => s === 200), `statuses ${done.statuses.join(',')}`).to.equal(true);
    expect(report.samples).to.be.greaterThan(50);
    if (report.cpuMs !== undefined) {
      expect(report.cpuMs / done.statuses.length, 'server main-thread CPU ms per embed').to.be.below(MAIN_CPU_PER_EMBED_BOUND_MS);
    }
    // on a loaded machine the idle loop's own tail grows too: the bound follows the baseline of this run
    const bound = Math.max(P99_BOUND_MS, 4 * delayMs(idle.p99Ms));
    expect(p99, `loop delay p99 (ms beyond the sampling period; bound ${bound} ms)`).to.be.below(bound);
  });
});
