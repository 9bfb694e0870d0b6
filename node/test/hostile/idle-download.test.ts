// A client that asks for a large answer and never reads it is cut after the idle timeout, and the
// node keeps only a window of the answer for it meanwhile (a stream with backpressure, not a buffer).
import { expect } from 'chai';
import { Readable } from 'node:stream';
import { Router } from '@koa/router';
import { startTestServer } from '../../src/http/testing.js';
import { neverReadingDownload, targetOf } from './attacks.js';

describe('never-reading download', function () {
  this.timeout(30_000);

  it('is cut after the idle timeout, and only a window of the stream was produced for it', async () => {
    let produced = 0;
    const router = new Router();
    router.get('/big', (ctx) => {
      const piece = Buffer.alloc(64 * 1024, 0x42);
      ctx.length = 64 * 1024 * 1024;
      ctx.body = Readable.from(
        (function* () {
          for (let i = 0; i < 1024; i++) {
            produced += piece.length;
            yield piece;
          }
        })(),
        { objectMode: false, highWaterMark: 64 * 1024 },
      );
    });
    const srv = await startTestServer({ config: { bodyIdleTimeoutMs: 500 }, extraRouters: [router] });
    try {
      const r = await neverReadingDownload(targetOf(srv.url), '/big', {}, 3_000);
      expect(r.status).to.equal(200);
      expect(r.ended).to.equal('cut');
      // kernel socket buffers take some megabytes on loopback; the rest of the 64 MiB was never made
      expect(produced).to.be.below(32 * 1024 * 1024);
    } finally {
      await srv.close();
    }
  });
});
