import { expect } from 'chai';
import { CLUSTER_ERROR_CODES, ClusterError } from '../cluster/errors.js';
import { STEGO_ERROR_CODES, StegoError } from '../stego/errors.js';
import { JobTimeoutError, POOL_ERROR_CODES, PoolClosedError, PoolSaturatedError, WorkerCrashedError, type PoolError } from '../workers/pool.js';
import { WorkerJobError } from '../workers/protocol.js';
import { ApiError, CLUSTER_ANSWERS, POOL_ANSWERS, STEGO_ANSWERS, errorAnswer } from './errors.js';

describe('errorAnswer', () => {
  it('maps a StegoError to its status, code, message and details', () => {
    const a = errorAnswer(new StegoError('capacity_exceeded', 'needs 10 bytes, capacity 4', { neededBytes: 10, availableBytes: 4 }));
    expect(a.status).to.equal(413);
    expect(a.body).to.deep.equal({ error: { code: 'capacity_exceeded', message: 'needs 10 bytes, capacity 4', details: { neededBytes: 10, availableBytes: 4 } } });
    expect(a.unexpected).to.equal(false);
  });

  it('maps a body parser error (status 400/415, no code, not exposed) to 400 invalid_request, not 500', () => {
    for (const status of [400, 415]) {
      const e = Object.assign(new SyntaxError('invalid JSON, only supports object and array'), { status });
      const a = errorAnswer(e);
      expect(a.status).to.equal(400);
      expect(a.body.error.code).to.equal('invalid_request');
      expect(a.unexpected).to.equal(false);
    }
  });

  it('keeps the Retry-After header of a saturated pool and does not treat 503 as a bug', () => {
    const a = errorAnswer(new PoolSaturatedError(5, 2, 4));
    expect(a.status).to.equal(503);
    expect(a.headers).to.deep.equal({ 'Retry-After': '5' });
    expect(a.body.error.code).to.equal('pool_saturated');
    expect(a.unexpected).to.equal(false);
  });

  it('reports a crashed worker as a logged 503 + Retry-After with its code, never a 500', () => {
    const a = errorAnswer(new WorkerCrashedError('exit code 1'));
    expect(a.status).to.equal(503);
    expect(a.headers).to.have.property('Retry-After');
    expect(a.body.error.code).to.equal('worker_crashed');
    expect(a.unexpected).to.equal(true);
  });

  it('uses http-errors style status + expose, deriving a code from the status', () => {
    const e = Object.assign(new Error('Method Not Allowed'), { status: 405, expose: true });
    expect(errorAnswer(e)).to.deep.include({ status: 405, body: { error: { code: 'method_not_allowed', message: 'Method Not Allowed' } } });
    expect(errorAnswer(new ApiError('body_too_large', 413, 'too big')).body.error.code).to.equal('body_too_large');
  });

  it('maps the cluster layer\'s codes: quota 413, reused key 422, busy and no_leader 503 + Retry-After', () => {
    const cases: [ClusterError, number, string | undefined][] = [
      [new ClusterError('quota_exceeded', 'over quota'), 413, undefined],
      [new ClusterError('idempotency_key_reused', 'other request'), 422, undefined],
      [new ClusterError('object_too_large', 'too big'), 413, undefined],
      [new ClusterError('busy', 'bytes waiting for commit'), 503, '1'],
      [new ClusterError('no_leader', 'election'), 503, '1'],
      [new ClusterError('not_found', 'no object'), 404, undefined],
    ];
    for (const [e, status, retryAfter] of cases) {
      const a = errorAnswer(e);
      expect(a.status, e.code).to.equal(status);
      expect(a.body).to.deep.equal({ error: { code: e.code, message: e.message } });
      expect(a.headers['Retry-After'], e.code).to.equal(retryAfter);
      expect(a.unexpected).to.equal(false);
    }
  });

  it('has exactly one answer, a 4xx or 5xx, for every domain code, and answers with the code and message', () => {
    const tables: [string, readonly string[], Record<string, { status: number }>, (code: string) => Error & { code: string }][] = [
      ['cluster', CLUSTER_ERROR_CODES, CLUSTER_ANSWERS, (code) => new ClusterError(code as ClusterError['code'], `cluster ${code}`)],
      ['stego', STEGO_ERROR_CODES, STEGO_ANSWERS, (code) => new StegoError(code as StegoError['code'], `stego ${code}`)],
      ['pool', POOL_ERROR_CODES, POOL_ANSWERS, (code) => poolError(code as PoolError['code'])],
    ];
    for (const [layer, codes, table, make] of tables) {
      expect(Object.keys(table).sort(), `${layer} table covers exactly the layer's codes`).to.deep.equal([...codes].sort());
      for (const code of codes) {
        const e = make(code);
        expect(e.code, `${layer} ${code}`).to.equal(code);
        const a = errorAnswer(e);
        expect(a.status, `${layer} ${code}`).to.equal(table[code]!.status).and.to.be.within(400, 599);
        expect(a.status, `${layer} ${code}: a domain error is never an internal error`).to.not.equal(500);
        expect(a.body.error, `${layer} ${code}`).to.include({ code, message: e.message });
        // 503 means "not now": the client is told when to retry, except while the node shuts down
        if (a.status === 503 && code !== 'pool_closed') expect(a.headers['Retry-After'], `${layer} ${code}`).to.match(/^[1-9]\d*$/);
        if (a.status !== 503) expect(a.headers, `${layer} ${code}`).to.not.have.property('Retry-After');
      }
    }
  });

  it('keeps HTTP out of domain errors: no status, expose or headers on them', () => {
    const domain = [new ClusterError('busy', 'b'), new StegoError('not_png', 'n'), new PoolSaturatedError(1, 1, 1), new JobTimeoutError(5, 1), new WorkerCrashedError('x'), new PoolClosedError()];
    for (const e of domain) {
      for (const field of ['status', 'statusCode', 'expose', 'headers']) expect(e, `${e.name}.${field}`).to.not.have.property(field);
    }
  });

  it('answers a shutting-down pool 503 pool_closed without Retry-After, and a timed-out job 503 + its Retry-After', () => {
    expect(errorAnswer(new PoolClosedError())).to.deep.include({ status: 503, headers: {}, unexpected: false });
    const timedOut = errorAnswer(new JobTimeoutError(100, 4));
    expect(timedOut).to.deep.include({ status: 503, headers: { 'Retry-After': '4' }, unexpected: false });
    expect(timedOut.body.error.code).to.equal('job_timeout');
  });

  it('hides the message of anything unexpected behind a 500 internal_error', () => {
    const workerBug = new WorkerJobError({ name: 'TypeError', message: 'secret in the worker' });
    for (const thrown of [new TypeError('x is undefined'), 'a string', null, Object.assign(new Error('secret path'), { status: 500 }), workerBug, { code: 'made_up', message: 'secret' }]) {
      const a = errorAnswer(thrown);
      expect(a.status).to.equal(500);
      expect(a.body).to.deep.equal({ error: { code: 'internal_error', message: 'internal server error' } });
      expect(a.unexpected).to.equal(true);
    }
  });
});

function poolError(code: PoolError['code']): PoolError {
  switch (code) {
    case 'pool_saturated':
      return new PoolSaturatedError(2, 1, 1);
    case 'worker_crashed':
      return new WorkerCrashedError('exit code 1');
    case 'job_timeout':
      return new JobTimeoutError(100, 2);
    case 'pool_closed':
      return new PoolClosedError();
  }
}
