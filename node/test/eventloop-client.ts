// The client of the event-loop test in its own process: it generates the 12 MP photo and streams
// embeds back to back to the server, then reports what it got. It runs at the CPU priority given as its
// first argument (the test passes nice 10) because it stands in for remote callers: it shares the test machine's cores with the
// server only because the test rig is one machine (undici spends ~3× the server main thread's CPU per
// request building and reading 19 MB bodies).
import { setPriority } from 'node:os';
import { photoPng } from '../src/stego/png/synthetic.js';

export interface ClientRequest {
  url: string;
  maxRequests: number;
  /** Requests sent even past the budget (a loaded machine may fit fewer in it). */
  minRequests: number;
  budgetMs: number;
}

export type ClientMessage =
  | { type: 'ready'; photoBytes: number }
  | { type: 'done'; statuses: number[]; elapsedMs: number; cpuMs: number }
  | { type: 'failed'; message: string };

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const send = (m: ClientMessage): void => void process.send!(m);

/** One embed; the answer is streamed and only counted, keeping the client light. */
async function embedOnce(url: string, png: Blob, message: string): Promise<number> {
  const fd = new FormData();
  fd.append('file', png, 'photo.png');
  fd.append('message', message);
  const res = await fetch(url, { method: 'POST', body: fd });
  if (res.status !== 200) throw new Error(`embed answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  let head: Buffer | undefined;
  let bytes = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    head ??= Buffer.from(chunk.subarray(0, 8));
    bytes += chunk.byteLength;
  }
  if (!head?.equals(PNG_SIGNATURE) || bytes < 1000) throw new Error(`embed answered 200 without a PNG (${bytes} bytes)`);
  return res.status;
}

async function run(req: ClientRequest, photo: Blob): Promise<void> {
  const started = Date.now();
  const cpu = process.cpuUsage();
  const statuses: number[] = [];
  while (statuses.length < req.maxRequests && (statuses.length < req.minRequests || Date.now() - started < req.budgetMs)) {
    statuses.push(await embedOnce(req.url, photo, `request ${statuses.length + 1}: ${'x'.repeat(4096)}`));
  }
  const used = process.cpuUsage(cpu);
  send({ type: 'done', statuses, elapsedMs: Date.now() - started, cpuMs: Math.round((used.user + used.system) / 1000) });
}

try {
  setPriority(Number(process.argv[2] ?? 0));
} catch {
  // not permitted here: the client then simply competes at normal priority
}
const photo = new Blob([await photoPng(4000, 3000, { seed: 42 })], { type: 'image/png' });
process.on('message', (req: ClientRequest) => {
  run(req, photo).then(
    () => process.disconnect(),
    (e: unknown) => {
      send({ type: 'failed', message: (e as Error).message });
      process.disconnect();
    },
  );
});
send({ type: 'ready', photoBytes: photo.size });
