import { expect } from 'chai';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { lingerOnEarlyAnswer } from './linger.js';

interface EarlyAnswerServer {
  port: number;
  /** Body bytes the server's sockets read, and when each closed, per connection (ms after it opened). */
  connections: { bytesRead: number; closedAfterMs?: number }[];
  close: () => Promise<void>;
}

/** A server that answers 413 at once, never reading the body, with the given linger limits. */
async function earlyAnswerServer(maxBytes: number): Promise<EarlyAnswerServer> {
  const app = new Koa();
  app.use((ctx) => {
    lingerOnEarlyAnswer(ctx, { maxBytes, maxMs: 5_000, closeAfterMs: 1_000 });
    ctx.status = 413;
    ctx.body = { error: { code: 'body_too_large', message: 'no' } };
  });
  const server = app.listen(0, '127.0.0.1');
  const connections: EarlyAnswerServer['connections'] = [];
  server.on('connection', (socket) => {
    const c: EarlyAnswerServer['connections'][number] = { bytesRead: 0 };
    const t0 = Date.now();
    connections.push(c);
    socket.on('close', () => {
      c.bytesRead = socket.bytesRead;
      c.closedAfterMs = Date.now() - t0;
    });
  });
  await new Promise((r) => server.once('listening', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
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

  it('stops reading a body declared beyond the limit: the answer still arrives (Connection: close), the rest is never read, the socket closes by closeAfterMs', async () => {
    const srv = await earlyAnswerServer(256 * 1024);
    try {
      const body = 64 * 1024 * 1024;
      const r = await upload(srv.port, body);
      expect(r).to.deep.include({ status: 413, connection: 'close' });
      const deadline = Date.now() + 5_000;
      while (srv.connections[0]?.closedAfterMs === undefined && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      const c = srv.connections[0]!;
      // what the kernel had delivered before the pause, not the 64 MiB the client tried to send
      expect(c.bytesRead).to.be.below(8 * 1024 * 1024);
      // the client closes once it has the answer; the server would close at closeAfterMs anyway
      expect(c.closedAfterMs).to.be.below(4_000);
    } finally {
      await srv.close();
    }
  });
});
