// Worker-thread entry: runs the steganography engine (PNG decode, embed/extract, encode) off the main
// event loop. Input buffers arrive transferred; output buffers are transferred back, so a 36 MB image
// is never copied between threads.
import { parentPort } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { embed, extract, capacity } from '../stego/engine.js';
import { serializeError, transferableCopy, type JobRequest, type JobResponse } from './protocol.js';
import type { StegoJob, StegoJobResult } from './stego-jobs.js';

interface Outcome {
  result: StegoJobResult;
  transfer: ArrayBuffer[];
}

async function runJob(job: StegoJob): Promise<Outcome> {
  switch (job.kind) {
    case 'embed': {
      const out = transferableCopy(await embed(job.png, job.payload, job.options));
      const sha256 = job.digest ? createHash('sha256').update(out.bytes).digest('hex') : undefined;
      return { result: { kind: 'embed', png: out.bytes, sha256 }, transfer: out.transfer };
    }
    case 'extract': {
      const payload = await extract(job.png, job.options);
      if (payload.kind === 'text') return { result: { kind: 'extract', payload }, transfer: [] };
      const data = transferableCopy(payload.data);
      return { result: { kind: 'extract', payload: { ...payload, data: data.bytes } }, transfer: data.transfer };
    }
    case 'capacity':
      return { result: { kind: 'capacity', capacity: await capacity(job.png, job.options) }, transfer: [] };
  }
}

const port = parentPort;
if (!port) throw new Error('stego-worker.js must run inside a worker thread');

port.on('message', (req: JobRequest<StegoJob>) => {
  runJob(req.job).then(
    ({ result, transfer }) => port.postMessage({ id: req.id, ok: true, result } satisfies JobResponse<StegoJobResult>, transfer),
    (e: unknown) => port.postMessage({ id: req.id, ok: false, error: serializeError(e) } satisfies JobResponse<StegoJobResult>),
  );
});
