import { expect } from 'chai';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { lingerOnEarlyAnswer } from './linger.js';

/** A server that answers 413 at once, never reading the body, with the given linger limits. */
async function earlyAnswerServer(maxBytes: number): Promise<{ port: number; close: () => Promise<void> }> {
  const app = new Koa();
  app.use((ctx) => {
    lingerOnEarlyAnswer(ctx, { maxBytes, maxMs: 5_000 });
    ctx.status = 413;
    ctx.body = { error: { code: 'body_too_large', message: 'no' } };
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** Sends `bytes` of body in 64 KiB writes, never stopping early (as fetch does), and reports what happened. */
function upload(port: number, bytes: number): Promise<{ status?: number; error?: string; connection?: string }> {
  return new Promise((resolve) => {
    const req = httpRequest({ port, host: '127.0.0.1', method: 'POST', path: '/', headers: { 'Content-Length': String(bytes) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection }));
    });
    req.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
    const chunk = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('lingering after an early answer', () => {
  it('discards a body within the limit so a client that keeps writing reads the answer, on a kept connection', async () => {
    const srv = await earlyAnswerServer(8 * 1024 * 1024);
    try {
      const r = await upload(srv.port, 4 * 1024 * 1024);
      expect(r).to.deep.include({ status: 413 });
      expect(r.connection).to.not.equal('close');
    } finally {
      await srv.close();
    }
  });

  it('does not wait for a body declared beyond the limit: Connection: close', async () => {
    const srv = await earlyAnswerServer(256 * 1024);
    try {
      const r = await upload(srv.port, 4 * 1024 * 1024);
      // the answer may win the race against the reset or not; either way nothing past the limit is read
      if (r.status !== undefined) expect(r).to.deep.include({ status: 413, connection: 'close' });
      else expect(r.error).to.be.oneOf(['EPIPE', 'ECONNRESET']);
    } finally {
      await srv.close();
    }
  });
});
