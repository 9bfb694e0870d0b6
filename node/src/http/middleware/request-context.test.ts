import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger } from '../../log.js';
import { startTestServer } from '../testing.js';

describe('request context middleware', () => {
  it('logs one access line per request with the request id, route template and status', async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const srv = await startTestServer({ logger: createLogger({ nodeId: 'n1', level: 'info', destination }) });
    try {
      const res = await fetch(`${srv.url}/api/capacity`, { method: 'POST', headers: { 'X-Request-Id': 'req-42' }, body: 'x' });
      expect(res.status).to.equal(415);
      const access = lines.find((l) => l.msg === 'request');
      expect(access).to.include({ node: 'n1', req: 'req-42', method: 'POST', route: '/api/capacity', status: 415 });
    } finally {
      await srv.close();
    }
  });
});
