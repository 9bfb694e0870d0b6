import { expect } from 'chai';
import { ClusterError } from '../cluster/errors.js';
import { StegoError } from '../stego/errors.js';
import { PoolSaturatedError, WorkerCrashedError } from '../workers/pool.js';
import { ApiError, errorAnswer } from './errors.js';

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

  it('hides the message of anything unexpected behind a 500 internal_error', () => {
    for (const thrown of [new TypeError('x is undefined'), 'a string', null, Object.assign(new Error('secret path'), { status: 500 })]) {
      const a = errorAnswer(thrown);
      expect(a.status).to.equal(500);
      expect(a.body).to.deep.equal({ error: { code: 'internal_error', message: 'internal server error' } });
      expect(a.unexpected).to.equal(true);
    }
  });
});
