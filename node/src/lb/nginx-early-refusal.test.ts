// The real nginx in front of a real node (the HTTP app on a free port): a hostile upload on a stateless
// route that the node refuses from its first bytes is refused at nginx too. With request buffering on, nginx
// first takes the whole 40 MB body from the client into a temp file and only then sends it on; with it off
// on these routes, the node's early 413 (Connection: close, the rest unread) reaches the client as the
// node's JSON, and nginx ends the connection instead of taking the rest. And streaming keeps the failover
// that matters for these routes: a node that refuses the connection is skipped.
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../http/testing.js';
import { photoPng } from '../stego/png/synthetic.js';
import { STREAM_LOCATION } from './nginx-config.js';
import { findNginx, NginxProcess } from './nginx-process.js';
import { freePort } from '../../test/ports.js';


interface HostileUpload {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Body bytes the connection took from the client (writes that completed), in all. */
  accepted: number;
  /** Body bytes taken when the answer's head arrived. */
  acceptedAtAnswer: number;
  /** From the answer's head to the end of the connection. */
  closedAfterAnswerMs: number;
}

interface HostileOptions {
  /** Stop sending and close once the answer is complete (what curl, fetch and Node's http do). */
  stopAtAnswer: boolean;
  /** Pause between two 64 KiB pieces: a client on a slower link than the loopback. */
  paceMs: number;
  deadlineMs: number;
  /** Send the body chunked (Transfer-Encoding), no Content-Length: the size is unknown to nginx. */
  chunked?: boolean;
}

/**
 * Declares `declared` body bytes, sends `head`, then filler 64 KiB at a time, each piece only once the
 * previous one was taken, for as long as the connection takes them (or, with stopAtAnswer, until the
 * answer is complete). A FIN from the server does not stop it. Resolves once the connection ended.
 */
function hostileUpload(port: number, path: string, declared: number, head: Buffer, o: HostileOptions): Promise<HostileUpload> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let raw = Buffer.alloc(0);
    let accepted = 0;
    let sent = 0;
    let answeredAt = 0;
    let acceptedAtAnswer = -1;
    let done = false;
    const timer = setTimeout(() => socket.destroy(new Error(`connection still open after ${o.deadlineMs} ms, ${accepted} bytes taken`)), o.deadlineMs);
    const answerComplete = (): boolean => {
      const text = raw.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
      return length !== null && raw.length - end - 4 >= Number(length[1]);
    };
    socket.on('data', (d: Buffer) => {
      raw = Buffer.concat([raw, d]);
      if (answeredAt === 0 && raw.includes('\r\n\r\n')) {
        answeredAt = Date.now();
        acceptedAtAnswer = accepted;
      }
      // with the whole body taken there is nothing left to push; the connection may stay open (keep-alive)
      if (answerComplete() && (o.stopAtAnswer || accepted >= declared)) socket.destroy();
    });
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const text = raw.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) {
        reject(err ?? new Error(`connection ended without an answer after ${accepted} body bytes`));
        return;
      }
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(end + 4), accepted, acceptedAtAnswer, closedAfterAnswerMs: Date.now() - answeredAt });
    };
    // EPIPE / ECONNRESET once the server closed: the answer, if any, was read before
    socket.on('error', (e) => finish(e));
    socket.on('close', () => finish());
    const filler = Buffer.alloc(64 * 1024, 0x61);
    const pump = (): void => {
      if (socket.destroyed || sent >= declared) {
        if (!socket.destroyed && answerComplete()) socket.destroy();
        return;
      }
      const piece = sent === 0 ? head : filler.subarray(0, Math.min(filler.length, declared - sent));
      sent += piece.length;
      const last = sent >= declared ? '0\r\n\r\n' : '';
      const framed = o.chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from(`\r\n${last}`)]) : piece;
      socket.write(framed, (e) => {
        if (e) return;
        accepted += piece.length;
        if (o.paceMs > 0) setTimeout(pump, o.paceMs);
        else pump();
      });
    };
    const length = o.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${declared}`;
    socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n${length}\r\n\r\n`);
    pump();
  });
}

describe('nginx streams stateless uploads: a node early refusal stops them (real nginx, real node)', function () {
  this.timeout(30_000);
  let nginx: NginxProcess | undefined;
  let node: TestServer | undefined;
  let prefix = '';
  let port = 0;
  let nodeAddress = '';
  let deadAddress = '';
  const limit = 50 * 1024 * 1024;
  const declared = 40 * 1024 * 1024 + 4096;
  let fileHead = Buffer.alloc(0);

  before(async function () {
    const bin = findNginx();
    if (!bin) return this.skip();
    node = await startTestServer({ config: { bodyLimitBytes: limit } });
    prefix = mkdtempSync(join(tmpdir(), 'stego-nginx-refusal-'));
    port = await freePort();
    nodeAddress = new URL(node.url).host;
    // a port nothing listens on: connection refused, like a killed node
    deadAddress = `127.0.0.1:${await freePort()}`;
    nginx = new NginxProcess(bin, {
      prefix,
      // a fixed receive buffer on nginx's side of the client connection: loopback autotuning may grow it
      // to net.ipv4.tcp_rmem's maximum (32 MB here), which would measure the kernel, not nginx
      listen: `127.0.0.1:${port} rcvbuf=1m`,
      nodes: [
        { id: 'dead', address: deadAddress },
        { id: 'n1', address: nodeAddress },
      ],
      maxBodyBytes: limit,
    });
    await nginx.start('n1');
    // signature + IHDR of a real PNG, then the header of one 40 MB tEXt chunk: the node refuses at that header
    const png = await photoPng(32, 32);
    const text = Buffer.alloc(8);
    text.writeUInt32BE(40 * 1024 * 1024, 0);
    text.write('tEXt', 4, 'latin1');
    fileHead = Buffer.concat([
      Buffer.from('--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'),
      png.subarray(0, 33),
      text,
    ]);
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        await fetch(`http://127.0.0.1:${port}/nginx_status`);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });

  after(async () => {
    await nginx?.stop();
    await node?.close();
    if (prefix) rmSync(prefix, { recursive: true, force: true });
  });

  it('a streamed upload still fails over from a node that refuses the connection', async () => {
    // round robin over [dead, n1]: the first requests meet the dead node first and go on to n1, until
    // max_fails takes it out of the rotation for a while
    const png = await photoPng(16, 16);
    const upstreams: string[] = [];
    for (let i = 0; i < 4; i++) {
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'a.png');
      const res = await fetch(`http://127.0.0.1:${port}/api/capacity`, { method: 'POST', body: form });
      expect(res.status, await res.clone().text()).to.equal(200);
      expect(((await res.json()) as { width: number }).width).to.equal(16);
      upstreams.push(res.headers.get('x-stego-upstream') ?? '');
    }
    expect(upstreams.some((u) => u === `${deadAddress}, ${nodeAddress}`), upstreams.join(' | ')).to.equal(true);
  });

  for (const path of ['/api/extract', '/api/embed', '/api/capacity']) {
    it(`a 40 MB text chunk on ${path}: the node's JSON 413, and nginx took a fraction of the body`, async () => {
      // paced at one 64 KiB piece per millisecond at most: the whole body takes 0.64 s or more
      const r = await hostileUpload(port, path, declared, fileHead, { stopAtAnswer: true, paceMs: 1, deadlineMs: 20_000 });
      expect(r.status).to.equal(413);
      expect(r.headers['content-type']).to.match(/^application\/json/);
      expect(r.headers['x-stego-upstream']).to.equal(nodeAddress);
      const json = JSON.parse(r.body) as { error: { code: string; message: string } };
      expect(json.error.code).to.equal('ancillary_too_large');
      // Buffered, nginx would take all 40 MB before the node saw a byte, so the answer could only come after
      // the whole body. Streamed, it comes once the node has read the chunk header; what the client counts
      // as taken by then is what the socket buffers on the way hold plus what flowed until this client's
      // loop got to the answer. Unpaced, that raced the loopback: 4-10 MB on an idle machine, 27-35 MB in
      // three CI runs, all 40 MB in a fourth. Paced, the whole body needs 0.64 s or more, far longer than the
      // node's answer takes, and only the buffered front door still takes all of it first.
      expect(r.acceptedAtAnswer).to.be.below(declared);
    });
  }

  it('the same upload chunked (size unknown to nginx) is streamed too: the node JSON 413, a fraction taken', async () => {
    const r = await hostileUpload(port, '/api/extract', declared, fileHead, { stopAtAnswer: true, paceMs: 1, deadlineMs: 20_000, chunked: true });
    expect(r.status).to.equal(413);
    expect(r.headers['content-type']).to.match(/^application\/json/);
    expect((JSON.parse(r.body) as { error: { code: string } }).error.code).to.equal('ancillary_too_large');
    expect(r.acceptedAtAnswer).to.be.below(declared);
  });

  it('a chunked upload over the body limit is a JSON 413 body_too_large', async () => {
    const field = Buffer.from('--b\r\nContent-Disposition: form-data; name="message"\r\n\r\n');
    const r = await hostileUpload(port, '/api/embed', limit + 1024 * 1024, field, { stopAtAnswer: true, paceMs: 0, deadlineMs: 20_000, chunked: true });
    expect(r.status).to.equal(413);
    expect(r.headers['content-type']).to.match(/^application\/json/);
    expect((JSON.parse(r.body) as { error: { code: string } }).error.code).to.equal('body_too_large');
  });

  it('fetch (undici) posting a 40 MB text chunk as a form gets the node JSON 413, not a connection error', async () => {
    const png = await photoPng(32, 32);
    const big = Buffer.concat([png.subarray(0, 33), fileHead.subarray(fileHead.length - 8), Buffer.alloc(40 * 1024 * 1024, 0x61), png.subarray(33)]);
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(big)], { type: 'image/png' }), 'a.png');
    const res = await fetch(`http://127.0.0.1:${port}/api/extract`, { method: 'POST', body: form });
    expect(res.status).to.equal(413);
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('ancillary_too_large');
  });

  it('a client that ignores the answer and keeps sending is cut after the lingering time, not after its whole body', async () => {
    // ~6.5 MB/s: the whole body would take ~6.5 s; nginx ends the connection ~2 s after the answer
    const r = await hostileUpload(port, '/api/extract', declared, fileHead, { stopAtAnswer: false, paceMs: 10, deadlineMs: 20_000 });
    expect(r.status).to.equal(413);
    expect((JSON.parse(r.body) as { error: { code: string } }).error.code).to.equal('ancillary_too_large');
    expect(r.accepted).to.be.below(declared);
    expect(r.closedAfterAnswerMs).to.be.below(4_500);
  });
});

describe('failover through nginx when a node dies mid-request (real nginx, real node)', function () {
  this.timeout(30_000);
  let node: TestServer | undefined;
  let dropper: ReturnType<typeof createNetServer> | undefined;
  let dropperAddress = '';
  const running: { nginx: NginxProcess; prefix: string }[] = [];

  before(async function () {
    if (!findNginx()) return this.skip();
    node = await startTestServer();
    // a node that dies once it has the request head: it reads up to the blank line, then resets
    dropper = createNetServer((socket) => {
      let head = '';
      socket.on('data', (d: Buffer) => {
        head += d.toString('latin1');
        if (head.includes('\r\n\r\n')) socket.resetAndDestroy();
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => dropper!.listen(0, '127.0.0.1', resolve));
    dropperAddress = `127.0.0.1:${(dropper.address() as { port: number }).port}`;
  });

  after(async () => {
    for (const r of running) {
      await r.nginx.stop();
      rmSync(r.prefix, { recursive: true, force: true });
    }
    await node?.close();
    await new Promise((r) => (dropper ? dropper.close(r) : r(undefined)));
  });

  /** A fresh nginx over [dropper, node]: round robin sends one of two requests to the dropper first. */
  async function frontDoor(): Promise<number> {
    const prefix = mkdtempSync(join(tmpdir(), 'stego-nginx-failover-'));
    const port = await freePort();
    const nginx = new NginxProcess(findNginx()!, {
      prefix,
      listen: `127.0.0.1:${port}`,
      nodes: [
        { id: 'dropper', address: dropperAddress },
        { id: 'n1', address: new URL(node!.url).host },
      ],
    });
    running.push({ nginx, prefix });
    await nginx.start('n1');
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        await fetch(`http://127.0.0.1:${port}/nginx_status`);
        return port;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  it('a read is retried on the next node', async () => {
    const port = await frontDoor();
    const seen: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(res.status).to.equal(200);
      seen.push(res.headers.get('x-stego-upstream') ?? '');
    }
    expect(seen, seen.join(' | ')).to.include(`${dropperAddress}, ${new URL(node!.url).host}`);
  });

  /** Two capacity requests with `png` and a `pad` field of `padBytes`: one of them meets the dropper first. */
  async function twoUploads(port: number, png: Buffer, padBytes: number): Promise<{ status: number; upstream: string; retryAfter: string | null; code?: string }[]> {
    const out = [];
    for (let i = 0; i < 2; i++) {
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'a.png');
      form.append('pad', 'x'.repeat(padBytes));
      const res = await fetch(`http://127.0.0.1:${port}/api/capacity`, { method: 'POST', body: form });
      const body = (await res.json()) as { error?: { code: string } };
      out.push({ status: res.status, upstream: res.headers.get('x-stego-upstream') ?? '', retryAfter: res.headers.get('retry-after'), code: body.error?.code });
    }
    return out;
  }

  it('an upload under 1 MB is buffered, so it is retried on the next node', async () => {
    const port = await frontDoor();
    // larger than nginx's header buffers: only buffering (not a body read whole with the head) keeps the retry
    const r = await twoUploads(port, await photoPng(64, 64), 200_000);
    expect(r.map((x) => x.status)).to.deep.equal([200, 200]);
    expect(r.map((x) => x.upstream), JSON.stringify(r)).to.include(`${dropperAddress}, ${new URL(node!.url).host}`);
  });

  it('a streamed upload (1 MB or more) is not retried once sent: the client gets the JSON 502 with Retry-After', async () => {
    const port = await frontDoor();
    const r = await twoUploads(port, await photoPng(64, 64), 1_100_000);
    expect(r.map((x) => x.status).sort(), JSON.stringify(r)).to.deep.equal([200, 502]);
    const failed = r.find((x) => x.status === 502)!;
    expect(failed.code).to.equal('bad_gateway');
    expect(failed.retryAfter).to.equal('1');
  });

  it('the internal streamed location is not reachable from outside: JSON 404', async () => {
    const port = await frontDoor();
    const res = await fetch(`http://127.0.0.1:${port}${STREAM_LOCATION}`);
    expect(res.status).to.equal(404);
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('not_found');
  });
});
