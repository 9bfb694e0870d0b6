import { expect } from 'chai';
import { StegoError } from '../stego/errors.js';
import { PoolClosedError, PoolError, PoolSaturatedError, WorkerCrashedError, JobTimeoutError, WorkerPool } from './pool.js';
import { WorkerJobError, transferableCopy } from './protocol.js';
import type { ProbeJob } from './fixtures/probe-worker.js';

const probeUrl = new URL('./fixtures/probe-worker.js', import.meta.url);

type Result = { bytes?: Uint8Array; blocked?: number };

function probePool(opts: { size?: number; maxQueue?: number; jobTimeoutMs?: number } = {}): WorkerPool<ProbeJob, Result> {
  return new WorkerPool<ProbeJob, Result>({ workerUrl: probeUrl, size: 1, maxQueue: 1, ...opts });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the promise to reject');
}

describe('WorkerPool', () => {
  let pool: WorkerPool<ProbeJob, Result>;
  afterEach(async () => {
    await pool?.close();
  });

  it('transfers whole buffers both ways without copying', async () => {
    pool = probePool();
    const input = new Uint8Array(1 << 20).fill(7);
    const sent = transferableCopy(input);
    const result = await pool.run({ op: 'echo', bytes: sent.bytes }, sent.transfer);
    expect(input.byteLength, 'input detached by the transfer').to.equal(0);
    expect(result.bytes!.byteLength).to.equal(1 << 20);
    expect(result.bytes![12345]).to.equal(7);
  });

  it('copies a Buffer that shares Node\'s allocation pool instead of detaching the pool', async () => {
    pool = probePool();
    const small = Buffer.from('hello');
    const neighbour = Buffer.from('neighbour');
    const sent = transferableCopy(small);
    const result = await pool.run({ op: 'echo', bytes: sent.bytes }, sent.transfer);
    expect(Buffer.from(result.bytes!).toString()).to.equal('hello');
    expect(small.toString()).to.equal('hello');
    expect(neighbour.toString()).to.equal('neighbour');
  });

  it('re-creates a StegoError thrown in the worker with its code, message and details', async () => {
    pool = probePool();
    const e = await rejection(pool.run({ op: 'fail', stego: true }));
    expect(e).to.be.instanceOf(StegoError);
    const se = e as StegoError;
    expect(se.code).to.equal('capacity_exceeded');
    expect(se.message).to.equal('needs 10 bytes, capacity 4');
    expect(se.details).to.deep.equal({ neededBytes: 10, availableBytes: 4 });
  });

  it('reports any other error from job code as a WorkerJobError (a bug) and keeps the worker', async () => {
    pool = probePool();
    const e = await rejection(pool.run({ op: 'fail', stego: false }));
    expect(e).to.be.instanceOf(WorkerJobError);
    expect(e.message).to.include('TypeError: a bug in job code');
    expect(pool.stats().crashes).to.equal(0);
    expect((await pool.run({ op: 'block', ms: 1 })).blocked).to.equal(1);
  });

  it('refuses with PoolSaturatedError (Retry-After) when every worker is busy and the queue is full', async () => {
    pool = new WorkerPool<ProbeJob, Result>({ workerUrl: probeUrl, size: 1, maxQueue: 1, retryAfterSeconds: 3 });
    const running = pool.run({ op: 'block', ms: 300 });
    const queued = pool.run({ op: 'block', ms: 1 });
    expect(pool.saturated).to.equal(true);
    const refused = await rejection(pool.run({ op: 'block', ms: 1 }));
    expect(refused).to.be.instanceOf(PoolSaturatedError);
    expect(refused).to.include({ code: 'pool_saturated', retryAfterSeconds: 3 });
    await Promise.all([running, queued]);
    expect(pool.saturated).to.equal(false);
    expect(pool.stats()).to.include({ busy: 0, queued: 0, rejected: 1, completed: 2 });
  });

  for (const how of ['exit', 'uncaught'] as const) {
    it(`fails the job of a worker that dies (${how}), replaces the worker and runs the queued job`, async () => {
      pool = probePool({ size: 1, maxQueue: 2 });
      const crashed = pool.run({ op: 'crash', how });
      const next = pool.run({ op: 'block', ms: 1 });
      const e = await rejection(crashed);
      expect(e).to.be.instanceOf(WorkerCrashedError);
      expect(e.message).to.match(how === 'exit' ? /exit code 7/ : /boom from the worker/);
      expect((await next).blocked).to.equal(1);
      expect(pool.stats().crashes).to.equal(1);
    });
  }

  it('cancels a job past its time budget: job_timeout with a retry time, worker replaced, the queue behind it runs', async () => {
    pool = probePool({ size: 1, maxQueue: 2, jobTimeoutMs: 100 });
    const hostile = rejection(pool.run({ op: 'block', ms: 10_000 }));
    const queued = pool.run({ op: 'block', ms: 1 });
    const e = await hostile;
    expect(e).to.be.instanceOf(JobTimeoutError);
    expect(e).to.include({ code: 'job_timeout' });
    expect((e as JobTimeoutError).retryAfterSeconds).to.be.a('number');
    expect(e.message).to.include('100 ms');
    expect((await queued).blocked).to.equal(1);
    expect(pool.stats()).to.include({ timeouts: 1, crashes: 0 });
  });

  it('fails a crashed job with worker_crashed and a retry time (a PoolError, not a bug)', async () => {
    pool = probePool({ size: 1 });
    const e = await rejection(pool.run({ op: 'crash', how: 'exit' }));
    expect(e).to.be.instanceOf(PoolError);
    expect(e).to.include({ code: 'worker_crashed' });
    expect((e as WorkerCrashedError).retryAfterSeconds).to.be.a('number');
  });

  it('fails a job instead of hanging when the worker module cannot even load', async () => {
    pool = new WorkerPool<ProbeJob, Result>({ workerUrl: new URL('./fixtures/no-such-worker.js', import.meta.url), size: 1, maxQueue: 1 });
    const e = await rejection(pool.run({ op: 'block', ms: 1 }));
    expect(e).to.be.instanceOf(WorkerCrashedError);
    expect(e.message).to.include('no-such-worker');
  });

  it('fails queued jobs on close and refuses new ones', async () => {
    pool = probePool({ maxQueue: 2 });
    const running = pool.run({ op: 'block', ms: 200 });
    const queued = rejection(pool.run({ op: 'block', ms: 1 }));
    const cutShort = rejection(running);
    await pool.close();
    expect(await queued).to.be.instanceOf(PoolClosedError);
    expect(await cutShort).to.be.instanceOf(PoolClosedError);
    expect(await rejection(pool.run({ op: 'block', ms: 1 }))).to.be.instanceOf(PoolClosedError);
  });
});
