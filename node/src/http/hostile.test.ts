// Hostile clients against a real server: the node's byte budget refuses before reading a body, stalled
// bodies and readers are cut, forms over their part limits and text that is not UTF-8 are refused with
// their own codes, and hostile PNGs cost a bounded amount of work.
import { expect } from 'chai';
import { connect, type Socket } from 'node:net';
import { startTestServer, type TestServer } from './testing.js';
import { photoPng } from '../stego/png/synthetic.js';
import { decompressionBomb, withBigTextChunk, withTextChunks } from '../stego/png/hostile.js';

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Body bytes written before the answer arrived. */
  sentBeforeAnswer: number;
}

function portOf(srv: TestServer): number {
  return Number(new URL(srv.url).port);
}

/** Sends a request head declaring `length` body bytes and then `send` of them; resolves with the raw answer. */
function rawRequest(port: number, path: string, length: number, send: number, contentType = 'multipart/form-data; boundary=x'): {
  socket: Socket;
  answer: Promise<RawAnswer>;
} {
  const socket = connect(port, '127.0.0.1');
  let sent = 0;
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = buf.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      const want = Number(headers['content-length'] ?? 0);
      if (buf.length - end - 4 < want) return;
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: buf.slice(end + 4, end + 4 + want), sentBeforeAnswer: sent });
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed without an answer after ${sent} body bytes`)));
  });
  answer.catch(() => undefined);
  socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${contentType}\r\nContent-Length: ${length}\r\n\r\n`);
  if (send > 0) {
    socket.write(Buffer.alloc(send, 0x2d));
    sent = send;
  }
  return { socket, answer };
}

function closed(socket: Socket): Promise<number> {
  const t0 = Date.now();
  // read whatever the server sends first (Node's own headers timeout answers 408 before it closes): a
  // paused socket with unread data never sees the end, and never closes
  socket.resume();
  return new Promise((resolve) => {
    if (socket.destroyed) resolve(0);
    socket.once('close', () => resolve(Date.now() - t0));
  });
}

function multipart(parts: { name: string; filename?: string; type?: string; data: Buffer | string }[]): { body: Buffer; type: string } {
  const boundary = 'hostile-boundary-42';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}\r\n`;
    if (p.type) head += `Content-Type: ${p.type}\r\n`;
    chunks.push(Buffer.from(`${head}\r\n`, 'latin1'), Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

async function postRaw(srv: TestServer, path: string, m: { body: Buffer; type: string }): Promise<{ status: number; code: string; message: string }> {
  const res = await fetch(`${srv.url}${path}`, { method: 'POST', body: m.body, headers: { 'content-type': m.type } });
  const json = (await res.json()) as { error?: { code: string; message: string } };
  return { status: res.status, code: json.error?.code ?? '', message: json.error?.message ?? '' };
}

describe('hostile clients (real server)', function () {
  this.timeout(30_000);

  describe('byte budget and body timeouts', () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer({
        config: { bodyLimitBytes: 2_000_000, inflightBudgetBytes: 3_000_000, bodyIdleTimeoutMs: 500, bodyTimeoutMs: 3_000 },
      });
    });
    after(() => srv.close());

    it('refuses a body that does not fit the budget with 503 memory_budget + Retry-After before reading any of it', async () => {
      const stalled = rawRequest(portOf(srv), '/api/embed', 1_900_000, 100);
      // let the first request's reservation land
      await new Promise((r) => setTimeout(r, 100));
      const refused = rawRequest(portOf(srv), '/api/embed', 1_900_000, 0);
      const a = await refused.answer;
      expect(a.status).to.equal(503);
      expect(a.sentBeforeAnswer).to.equal(0);
      expect(a.headers['retry-after']).to.match(/^\d+$/);
      expect(JSON.parse(a.body).error.code).to.equal('memory_budget');
      refused.socket.destroy();
      stalled.socket.destroy();
    });

    it('cuts an upload that stalls (idle timeout) and gives its budget back', async () => {
      const stalled = rawRequest(portOf(srv), '/api/embed', 1_900_000, 1000);
      const ms = await closed(stalled.socket);
      expect(ms).to.be.below(5_000);
      // the reservation is released: a small request is served again
      const fd = new FormData();
      fd.append('file', new Blob([await photoPng(16, 16)], { type: 'image/png' }), 'a.png');
      const ok = await fetch(`${srv.url}/api/capacity`, { method: 'POST', body: fd });
      expect(ok.status).to.equal(200);
    });

    it('cuts an upload that trickles past the total body timeout', async () => {
      const slow = rawRequest(portOf(srv), '/api/embed', 1_000_000, 10);
      const timer = setInterval(() => slow.socket.writable && slow.socket.write('-'), 200);
      try {
        const ms = await closed(slow.socket);
        expect(ms).to.be.within(1_000, 8_000);
      } finally {
        clearInterval(timer);
      }
    });
  });

  describe('PNG limits while the upload arrives', () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer({ config: { bodyLimitBytes: 50 * 1024 * 1024 } });
    });
    after(() => srv.close());

    it('refuses a PNG whose chunk header announces 40 MB of text after ~1 MB of a 45 MB upload (413 ancillary_too_large)', async () => {
      const png = await photoPng(32, 32);
      // signature + IHDR, then the header of a 40 MB tEXt chunk and the first bytes of its data
      const head = Buffer.alloc(8);
      head.writeUInt32BE(40 * 1024 * 1024, 0);
      head.write('tEXt', 4, 'latin1');
      const filePrefix = Buffer.concat([png.subarray(0, 33), head, Buffer.alloc(1024 * 1024, 0x61)]);
      const partHead = Buffer.from('--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n');
      const socket = connect(portOf(srv), '127.0.0.1');
      const answer = new Promise<string>((resolve, reject) => {
        let buf = '';
        socket.on('data', (d: Buffer) => {
          buf += d.toString('latin1');
          if (/\r\n\r\n\{.*\}$/s.test(buf)) resolve(buf);
        });
        socket.on('error', reject);
      });
      socket.write(`POST /api/extract HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${45 * 1000 * 1000}\r\n\r\n`);
      socket.write(Buffer.concat([partHead, filePrefix]));
      const text = await answer;
      socket.destroy();
      expect(text).to.match(/^HTTP\/1\.1 413/);
      expect(text).to.include('ancillary_too_large');
    });
  });

  describe('hostile PNGs are refused before their body is read, and the rest is never read', () => {
    let srv: TestServer;
    const reads: { bytesRead: number; closedAfterMs: number }[] = [];
    before(async () => {
      srv = await startTestServer({ config: { bodyLimitBytes: 50 * 1024 * 1024 }, pool: { maxPixels: 1_000_000 } });
      srv.server.on('connection', (socket: Socket) => {
        const t0 = Date.now();
        socket.on('close', () => reads.push({ bytesRead: socket.bytesRead, closedAfterMs: Date.now() - t0 }));
      });
    });
    after(() => srv.close());

    /**
     * Declares the whole multipart body, sends its head and the first `send` bytes of `file`, and waits:
     * the answer must come with the rest unsent. Resolves with the answer and the server's side of the
     * connection once the server closed it.
     */
    async function sendPrefix(path: string, file: Buffer, send: number): Promise<{ answer: string; bytesRead: number; closedAfterMs: number }> {
      const partHead = Buffer.from('--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n');
      const tail = Buffer.from('\r\n--b\r\nContent-Disposition: form-data; name="message"\r\n\r\nhi\r\n--b--\r\n');
      const socket = connect(portOf(srv), '127.0.0.1');
      const seen = reads.length;
      const answer = await new Promise<string>((resolve, reject) => {
        let buf = '';
        socket.on('data', (d: Buffer) => {
          buf += d.toString('latin1');
          if (/\r\n\r\n\{.*\}$/s.test(buf)) resolve(buf);
        });
        socket.on('error', reject);
        socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${partHead.length + file.length + tail.length}\r\n\r\n`);
        socket.write(Buffer.concat([partHead, file.subarray(0, send)]));
      });
      // the client keeps the connection open: the server closes it (closeAfterMs after the answer)
      const deadline = Date.now() + 10_000;
      while (reads.length === seen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      socket.destroy();
      return { answer, ...reads[seen]! };
    }

    it('a decompression bomb: 413 image_too_large from its IHDR, with 64 KiB of a 5 MB file sent; nothing more is read', async () => {
      const bomb = await decompressionBomb(8_000, 8_000);
      const padded = Buffer.concat([bomb, Buffer.alloc(5 * 1024 * 1024 - bomb.length)]);
      const r = await sendPrefix('/api/embed', padded, 64 * 1024);
      expect(r.answer).to.match(/^HTTP\/1\.1 413/);
      expect(r.answer).to.include('image_too_large');
      expect(r.answer.toLowerCase()).to.include('connection: close');
      expect(r.bytesRead).to.be.below(200 * 1024);
      expect(r.closedAfterMs).to.be.below(6_000);
    });

    it('20,001 chunks: 413 too_many_chunks at that chunk header, the rest of the 4.8 MB body never read', async () => {
      const png = withTextChunks(await photoPng(32, 32), 250_000);
      const before = srv.pool.stats();
      const r = await sendPrefix('/api/embed', png, png.length);
      expect(r.answer).to.match(/^HTTP\/1\.1 413/);
      expect(r.answer).to.include('too_many_chunks');
      // the first 20,001 chunks are ~400 KB: the server read about that much of the 4.8 MB sent, never the rest
      expect(r.bytesRead).to.be.below(1.5 * 1024 * 1024);
      // nothing reached the worker pool
      expect(srv.pool.stats().completed).to.equal(before.completed);
    });
  });

  describe('connections that never finish a request head', () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer({ config: { headersTimeoutMs: 600 } });
    });
    after(() => srv.close());

    it('cuts connections that send nothing or half a head within the headers timeout (checked every 150 ms)', async () => {
      const port = portOf(srv);
      const idle = connect(port, '127.0.0.1');
      const half = connect(port, '127.0.0.1', () => half.write('POST /api/embed HTTP/1.1\r\nhost: x\r\n'));
      const [a, b] = await Promise.all([closed(idle), closed(half)]);
      expect(a).to.be.below(3_000);
      expect(b).to.be.below(3_000);
      // a keep-alive client that does send requests is not cut by it
      const ok = await fetch(`${srv.url}/healthz`);
      expect(ok.status).to.equal(200);
    });
  });

  describe('forms and text', () => {
    let srv: TestServer;
    let png: Buffer;
    before(async () => {
      srv = await startTestServer({ config: { bodyLimitBytes: 4_000_000 }, pool: { chunkLimits: { maxAncillaryBytes: 1_000_000 } } });
      png = await photoPng(32, 32);
    });
    after(() => srv.close());

    it('more than 16 text fields → 413 too_many_fields naming the limit, not the body size', async () => {
      const parts = Array.from({ length: 17 }, (_, i) => ({ name: `f${i}`, data: 'x' }));
      const r = await postRaw(srv, '/api/capacity', multipart([{ name: 'file', filename: 'a.png', type: 'image/png', data: png }, ...parts]));
      expect(r).to.include({ status: 413, code: 'too_many_fields' });
      expect(r.message).to.include('16');
    });

    it('more than 4 file parts → 413 too_many_files naming the limit', async () => {
      const files = Array.from({ length: 5 }, (_, i) => ({ name: `x${i}`, filename: `${i}.bin`, type: 'application/octet-stream', data: 'x' }));
      const r = await postRaw(srv, '/api/capacity', multipart([{ name: 'file', filename: 'a.png', type: 'image/png', data: png }, ...files]));
      expect(r).to.include({ status: 413, code: 'too_many_files' });
      expect(r.message).to.include('4');
    });

    it('invalid UTF-8 in a passphrase or a message → 400 invalid_utf8 (never replaced)', async () => {
      const bad = Buffer.from([0x73, 0x65, 0xff, 0xfe, 0x63]);
      for (const field of ['passphrase', 'message']) {
        const parts = [{ name: 'file', filename: 'a.png', type: 'image/png', data: png }, { name: field, data: bad }];
        if (field === 'passphrase') parts.push({ name: 'message', data: Buffer.from('hello') });
        const r = await postRaw(srv, '/api/embed', multipart(parts));
        expect(r, field).to.include({ status: 400, code: 'invalid_utf8' });
        expect(r.message).to.include(field);
      }
      // a valid multi-byte passphrase still works
      const ok = await postRaw(srv, '/api/capacity', multipart([{ name: 'file', filename: 'a.png', type: 'image/png', data: png }, { name: 'passphrase', data: 'pässwörd' }]));
      expect(ok.status).to.equal(200);
    });

    it('a PNG with too many chunks or more ancillary bytes than configured → 413 with its own code', async () => {
      const many = withTextChunks(png, 20_001);
      const r1 = await postRaw(srv, '/api/embed', multipart([{ name: 'file', filename: 'a.png', type: 'image/png', data: many }, { name: 'message', data: 'hi' }]));
      expect(r1, r1.message).to.include({ status: 413, code: 'too_many_chunks' });
      const big = withBigTextChunk(png, 3_000_000);
      const r2 = await postRaw(srv, '/api/extract', multipart([{ name: 'file', filename: 'a.png', type: 'image/png', data: big }]));
      expect(r2, r2.message).to.include({ status: 413, code: 'ancillary_too_large' });
    });
  });
});
