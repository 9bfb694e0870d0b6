import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger } from './log.js';

function collector(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('writes one JSON line per event with the node id, level name and ISO time', async () => {
    const { lines, stream } = collector();
    const log = createLogger({ nodeId: 'n7', level: 'info', destination: stream });
    log.child({ component: 'raft' }).info({ term: 3 }, 'became leader');
    log.debug('not at info level');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ node: 'n7', level: 'info', component: 'raft', term: 3, msg: 'became leader' });
    expect(lines[0]!.time).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});
