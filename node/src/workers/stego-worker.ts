// Worker-thread entry: runs the steganography engine (PNG decode, embed/extract, encode) off the main
// event loop. Input buffers arrive transferred; output buffers are transferred back, so a 36 MB image
// is never copied between threads.
import { parentPort, workerData } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { embed, extract, capacity } from '../stego/engine.js';
import { configureChunkLimits, type ChunkLimits } from '../stego/png/chunks.js';
import { checkRawPng, fingerprint } from './raw-png.js';
import { READY, serializeError, transferableCopy, type JobRequest, type JobResponse } from './protocol.js';
import type { StegoJob, StegoJobResult } from './stego-jobs.js';

interface Outcome {
  result: StegoJobResult;
  transfer: ArrayBuffer[];
}

async function runJob(job: StegoJob): Promise<Outcome> {
  switch (job.kind) {
    case 'embed': {
      // the request's fingerprint is taken before embedding: the engine may consume its input
      const p = job.payload;
      const fp = job.fingerprintKey === undefined
        ? undefined
        : fingerprint(job.fingerprintKey, ['embed', job.png, p.kind, p.kind === 'text' ? p.text : p.filename, p.kind === 'file' ? p.data : '', job.options.passphrase ?? '']);
      // the input arrived transferred and nothing reads it after the decode: the engine frees it then
      const out = transferableCopy(await embed(job.png, job.payload, { ...job.options, consumeInput: true }));
      const sha256 = job.digest ? createHash('sha256').update(out.bytes).digest('hex') : undefined;
      return { result: { kind: 'embed', png: out.bytes, sha256, fingerprint: fp }, transfer: out.transfer };
    }
    case 'extract': {
      // transferred in and never read again: the engine joins its IDAT data in place and frees it
      const payload = await extract(job.png, { ...job.options, consumeInput: true });
      if (payload.kind === 'text') return { result: { kind: 'extract', payload }, transfer: [] };
      const data = transferableCopy(payload.data);
      return { result: { kind: 'extract', payload: { ...payload, data: data.bytes } }, transfer: data.transfer };
    }
    case 'capacity':
      return { result: { kind: 'capacity', capacity: await capacity(job.png, job.options) }, transfer: [] };
    case 'validate': {
      const { sha256, width, height, fingerprint: fp } = await checkRawPng(job.png, { maxPixels: job.maxPixels, fingerprintKey: job.fingerprintKey });
      // the input came transferred, so its whole buffer is this job's: hand it back the same way, no copy
      return { result: { kind: 'validate', png: job.png, sha256, width, height, fingerprint: fp }, transfer: [job.png.buffer as ArrayBuffer] };
    }
  }
}

/**
 * Image work yields the CPU to the main thread: on Linux a worker thread has its own nice value, so
 * raising it lets the event loop (which runs consensus) win every contended time slice. Elsewhere, or
 * without permission, the worker simply runs at normal priority.
 */
function lowerThreadPriority(nice: unknown): void {
  if (typeof nice !== 'number' || nice <= 0 || process.platform !== 'linux') return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // best effort: priority is an optimisation, not a requirement
  }
}

const data = workerData as { nice?: unknown; chunkLimits?: Partial<ChunkLimits> } | undefined;
lowerThreadPriority(data?.nice);
if (data?.chunkLimits) configureChunkLimits(data.chunkLimits);

const port = parentPort;
if (!port) throw new Error('stego-worker.js must run inside a worker thread');

port.on('message', (req: JobRequest<StegoJob>) => {
  runJob(req.job).then(
    ({ result, transfer }) => port.postMessage({ id: req.id, ok: true, result } satisfies JobResponse<StegoJobResult>, transfer),
    (e: unknown) => port.postMessage({ id: req.id, ok: false, error: serializeError(e) } satisfies JobResponse<StegoJobResult>),
  );
});

port.postMessage(READY);
