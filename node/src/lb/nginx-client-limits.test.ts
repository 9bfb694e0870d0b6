// The real nginx in front of a stand-in node that counts what reaches it: one client address sending writes
// faster than its rate, or holding more writes in flight than allowed, is answered 429 rate_limited (JSON,
// Retry-After) by nginx itself, before nginx reads the body and without the node seeing the request; so is
// one looping on large (streamed) stateless uploads. Reads, small stateless uploads and other client
// addresses are not limited.
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type ClientRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNginx, NginxProcess } from './nginx-process.js';
import { freePort } from '../../test/ports.js';


interface Answer {
  status: number;
  retryAfter?: string;
  type: string;
  body: string;
}

/** One request from `from` (a loopback address); a fresh connection each time. */
function send(port: number, from: string, method: string, path: string, body?: Buffer, type = 'image/png'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, localAddress: from, agent: false, headers: body ? { 'content-type': type, 'content-length': String(body.length) } : {} }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () =>
        resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined, type: res.headers['content-type'] ?? '', body: Buffer.concat(parts).toString('utf8') }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A write that declares a body and sends only its first bytes, then holds the connection. */
function stalledWrite(port: number, from: string, declared: number): ClientRequest {
  const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/api/objects', localAddress: from, agent: false, headers: { 'content-type': 'image/png', 'content-length': String(declared) } });
  req.on('error', () => undefined);
  req.write(Buffer.alloc(100));
  return req;
}

describe('nginx limits writes per client address (real nginx)', function () {
  this.timeout(20_000);
  let nginx: NginxProcess | undefined;
  let node: Server | undefined;
  let prefix = '';
  let port = 0;
  /** Requests that reached the stand-in node, by method. */
  const seen = { writes: 0, reads: 0, uploads: 0 };

  before(async function () {
    const bin = findNginx();
    if (!bin) return this.skip();
    node = createServer((req, res) => {
      if (req.method === 'GET') seen.reads++;
      else if (req.url?.startsWith('/api/embed')) seen.uploads++;
      else seen.writes++;
      req.resume();
      req.on('end', () => {
        res.writeHead(req.method === 'GET' ? 200 : 201, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => node!.listen(0, '127.0.0.1', r));
    const nodePort = (node.address() as { port: number }).port;
    prefix = mkdtempSync(join(tmpdir(), 'stego-nginx-limits-'));
    port = await freePort();
    nginx = new NginxProcess(bin, {
      prefix,
      listen: `127.0.0.1:${port}`,
      nodes: [{ id: 'n1', address: `127.0.0.1:${nodePort}` }],
      clientWritesPerSecond: 1,
      clientWriteBurst: 3,
      clientWritesInFlight: 2,
      clientLargeUploadsPerSecond: 1,
      clientLargeUploadBurst: 2,
    });
    await nginx.start('n1');
    for (let i = 0; i < 100; i++) {
      try {
        await send(port, '127.0.0.9', 'GET', '/api/objects');
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });

  after(async () => {
    await nginx?.stop();
    await new Promise((r) => (node ? node.close(r) : r(undefined)));
    if (prefix) rmSync(prefix, { recursive: true, force: true });
  });

  it('a client over its write rate gets JSON 429 rate_limited with Retry-After from nginx; the node never sees those writes', async () => {
    const before = seen.writes;
    const answers: Answer[] = [];
    for (let i = 0; i < 12; i++) answers.push(await send(port, '127.0.0.2', 'POST', '/api/objects', Buffer.alloc(10_000, 1)));
    const passed = answers.filter((a) => a.status === 201).length;
    const limited = answers.filter((a) => a.status === 429);
    // rate 1/s with a burst of 3: the first 4 of a quick run pass (one more if a second went by)
    expect(passed).to.be.within(4, 5);
    expect(limited.length).to.equal(12 - passed);
    for (const a of limited) {
      expect(a.type).to.match(/^application\/json/);
      expect(a.retryAfter).to.equal('1');
      expect(JSON.parse(a.body)).to.deep.equal({ error: { code: 'rate_limited', message: 'too many requests from this client address; retry shortly' } });
    }
    expect(seen.writes - before).to.equal(passed);
    // DELETE and /admin writes count against the same client's rate
    expect((await send(port, '127.0.0.2', 'DELETE', '/api/objects/x')).status).to.equal(429);
    expect((await send(port, '127.0.0.2', 'POST', '/admin/snapshot', Buffer.alloc(10))).status).to.equal(429);
    // reads from the same client and writes from another address are not limited
    for (let i = 0; i < 8; i++) expect((await send(port, '127.0.0.2', 'GET', '/api/objects')).status).to.equal(200);
    expect((await send(port, '127.0.0.3', 'POST', '/api/objects', Buffer.alloc(10_000, 1))).status).to.equal(201);
  });

  it('a client with its writes in flight at the limit gets 429 at once, before nginx waits for that body', async () => {
    const held = [stalledWrite(port, '127.0.0.4', 1_000_000), stalledWrite(port, '127.0.0.4', 1_000_000)];
    try {
      await new Promise((r) => setTimeout(r, 300));
      const before = seen.writes;
      // declares 1 MB and sends none of it: only a refusal from the head answers within the deadline
      const third = await new Promise<Answer | 'no answer'>((resolve) => {
        const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/api/objects', localAddress: '127.0.0.4', agent: false, headers: { 'content-type': 'image/png', 'content-length': '1000000' } }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined, type: res.headers['content-type'] ?? '', body: Buffer.concat(parts).toString('utf8') }));
        });
        req.on('error', () => resolve('no answer'));
        setTimeout(() => {
          resolve('no answer');
          req.destroy();
        }, 3_000);
        req.flushHeaders();
      });
      expect(third).to.not.equal('no answer');
      const a = third as Answer;
      expect(a.status).to.equal(429);
      expect(a.retryAfter).to.equal('1');
      expect((JSON.parse(a.body) as { error: { code: string } }).error.code).to.equal('rate_limited');
      expect(seen.writes).to.equal(before);
      // another address is not held back by this one's writes in flight
      expect((await send(port, '127.0.0.5', 'POST', '/api/objects', Buffer.alloc(10)).then((r) => r.status))).to.equal(201);
    } finally {
      for (const r of held) r.destroy();
    }
  });

  it('a client over its rate of large (streamed) stateless uploads gets the same JSON 429; small ones and other addresses pass', async () => {
    const large = Buffer.alloc(1_000_000, 0x61);
    const type = 'multipart/form-data; boundary=b';
    const before = seen.uploads;
    const answers: Answer[] = [];
    for (let i = 0; i < 8; i++) answers.push(await send(port, '127.0.0.6', 'POST', '/api/embed', large, type));
    const passed = answers.filter((a) => a.status === 201).length;
    // rate 1/s with a burst of 2: the first 3 of a quick run pass (one more if a second went by)
    expect(passed).to.be.within(3, 4);
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).to.equal(8 - passed);
    for (const a of limited) {
      expect(a.retryAfter).to.equal('1');
      expect((JSON.parse(a.body) as { error: { code: string } }).error.code).to.equal('rate_limited');
    }
    expect(seen.uploads - before).to.equal(passed);
    for (let i = 0; i < 5; i++) expect((await send(port, '127.0.0.6', 'POST', '/api/embed', Buffer.alloc(1000), type)).status).to.equal(201);
    expect((await send(port, '127.0.0.7', 'POST', '/api/embed', large, type)).status).to.equal(201);
  });

  it('large object writes count against the large-upload rate too (nginx buffers each whole); small writes from the same client pass', async () => {
    const large = Buffer.alloc(1_000_000, 0x62);
    const statuses: number[] = [];
    // large-upload burst 2 (3 in a quick run) runs out before the write burst 3 (4 in a quick run)
    for (let i = 0; i < 4; i++) statuses.push((await send(port, '127.0.0.8', 'POST', '/api/objects', large)).status);
    expect(statuses.slice(0, 3)).to.deep.equal([201, 201, 201]);
    expect(statuses[3]).to.equal(429);
    expect((await send(port, '127.0.0.8', 'POST', '/api/objects', Buffer.alloc(10_000, 1))).status).to.equal(201);
  });
});
