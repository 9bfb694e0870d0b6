import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { PNG } from 'pngjs';
import { startTestServer, type TestServer } from '../testing.js';
import { photoPng } from '../../stego/png/synthetic.js';

type Part = string | { data: Uint8Array; filename?: string; type?: string };

function form(fields: Record<string, Part | Part[]>): FormData {
  const fd = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    for (const part of Array.isArray(value) ? value : [value]) {
      if (typeof part === 'string') fd.append(name, part);
      else fd.append(name, new Blob([part.data], { type: part.type ?? 'application/octet-stream' }), part.filename ?? 'blob');
    }
  }
  return fd;
}

const png = (data: Uint8Array): Part => ({ data, filename: 'image.png', type: 'image/png' });

interface ErrorJson {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

async function expectError(res: Response, status: number, code: string): Promise<ErrorJson['error']> {
  const text = await res.text();
  expect(res.status, text).to.equal(status);
  expect(res.headers.get('content-type')).to.match(/^application\/json/);
  const body = JSON.parse(text) as ErrorJson;
  expect(Object.keys(body)).to.deep.equal(['error']);
  expect(body.error.code).to.equal(code);
  expect(body.error.message).to.be.a('string').and.not.equal('');
  return body.error;
}

describe('stego HTTP API (real server, real worker pool)', function () {
  let srv: TestServer;
  let cover: Buffer;
  let coverDir: string;
  let defaultCover: Buffer;

  before(async () => {
    cover = await photoPng(64, 48);
    defaultCover = await photoPng(40, 30, { seed: 9 });
    coverDir = await mkdtemp(join(tmpdir(), 'stego-http-'));
    await writeFile(join(coverDir, 'cover.png'), defaultCover);
    srv = await startTestServer({
      pool: { size: 1, maxQueue: 4, maxPixels: 100_000 },
      config: { bodyLimitBytes: 1024 * 1024, coverPath: join(coverDir, 'cover.png') },
    });
  });
  after(async () => {
    await srv?.close();
    await rm(coverDir, { recursive: true, force: true });
  });

  const post = (path: string, fields: Record<string, Part | Part[]>): Promise<Response> =>
    fetch(srv.url + path, { method: 'POST', body: form(fields) });

  async function embedOk(fields: Record<string, Part | Part[]>): Promise<Buffer> {
    const res = await post('/api/embed', fields);
    if (res.status !== 200) throw new Error(`embed answered ${res.status}: ${await res.text()}`);
    expect(res.headers.get('content-type')).to.equal('image/png');
    return Buffer.from(await res.arrayBuffer());
  }

  describe('service endpoints', () => {
    it('GET /healthz answers {"status":"healthy"}', async () => {
      const res = await fetch(`${srv.url}/healthz`);
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({ status: 'healthy' });
    });

    it('GET /openapi.json serves the OpenAPI 3 document', async () => {
      const res = await fetch(`${srv.url}/openapi.json`);
      expect(res.status).to.equal(200);
      const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
      expect(doc.openapi).to.match(/^3\./);
      expect(doc.paths).to.have.property('/api/embed');
    });

    it('echoes a sane X-Request-Id and counts requests by route template in /metrics', async () => {
      const res = await fetch(`${srv.url}/healthz`, { headers: { 'X-Request-Id': 'abc-123' } });
      expect(res.headers.get('x-request-id')).to.equal('abc-123');
      const bogus = await fetch(`${srv.url}/healthz`, { headers: { 'X-Request-Id': 'no spaces allowed' } });
      expect(bogus.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
      const metrics = await (await fetch(`${srv.url}/metrics`)).text();
      expect(metrics).to.match(/stego_http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} \d+/);
      expect(metrics).to.include('stego_pool_workers 1');
    });

    it('answers unknown paths with a JSON 404 and wrong methods with a JSON 405', async () => {
      await expectError(await fetch(`${srv.url}/nope`), 404, 'not_found');
      await expectError(await fetch(`${srv.url}/api/embed`), 405, 'method_not_allowed');
    });
  });

  describe('round trips', () => {
    it('embeds and extracts a UTF-8 text message exactly', async () => {
      // No bare \n: FormData serialisation turns string newlines into CRLF (HTML form rules).
      const message = 'Grüße, 世界! 🎉\ttab';
      const stego = await embedOk({ file: png(cover), message });
      const out = PNG.sync.read(stego);
      expect([out.width, out.height]).to.deep.equal([64, 48]);
      const res = await post('/api/extract', { file: png(stego) });
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({ message });
    });

    it('embeds and extracts a binary file with a non-ASCII name as raw bytes with Content-Disposition', async () => {
      const data = new Uint8Array(600).map((_, i) => (i * 37) & 0xff);
      const stego = await embedOk({ file: png(cover), payload: { data, filename: 'résumé "v2".bin' } });
      const res = await post('/api/extract', { file: png(stego) });
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal('application/octet-stream');
      const disposition = res.headers.get('content-disposition')!;
      expect(disposition).to.match(/^attachment; filename="r_sum_ \\"v2\\"\.bin"; filename\*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22\.bin$/);
      expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(data))).to.equal(true);
    });

    it('reduces a payload file name with a path to its base name', async () => {
      const stego = await embedOk({ file: png(cover), payload: { data: Buffer.from('x'), filename: '../../etc/passwd' } });
      const res = await post('/api/extract', { file: png(stego) });
      expect(res.headers.get('content-disposition')).to.equal('attachment; filename="passwd"');
    });

    it('round-trips with a passphrase; a wrong or missing passphrase finds nothing, as on a cover', async () => {
      const stego = await embedOk({ file: png(cover), message: 'secret', passphrase: 'correct horse' });
      const ok = await post('/api/extract', { file: png(stego), passphrase: 'correct horse' });
      expect(await ok.json()).to.deep.equal({ message: 'secret' });
      await expectError(await post('/api/extract', { file: png(stego), passphrase: 'wrong' }), 422, 'no_payload');
      await expectError(await post('/api/extract', { file: png(stego) }), 422, 'no_payload');
    });

    it('uses the default cover when no file is sent', async () => {
      const stego = await embedOk({ message: 'on the default cover' });
      const out = PNG.sync.read(stego);
      expect([out.width, out.height]).to.deep.equal([40, 30]);
      const res = await post('/api/extract', { file: png(stego) });
      expect(await res.json()).to.deep.equal({ message: 'on the default cover' });
      // The cached cover is copied for each job, never handed over: a second embed still works.
      expect((await embedOk({ message: 'again' })).length).to.be.greaterThan(0);
    });

    it('accepts a text field sent as text/plain and a file part without Content-Type', async () => {
      const boundary = 'XyZboundary';
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.png"\r\n\r\n`),
        cover,
        Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="message"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain text\r\n--${boundary}--\r\n`),
      ]);
      const res = await fetch(`${srv.url}/api/embed`, { method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, body });
      expect(res.status, await res.clone().text()).to.equal(200);
      const back = await post('/api/extract', { file: png(Buffer.from(await res.arrayBuffer())) });
      expect(await back.json()).to.deep.equal({ message: 'plain text' });
    });
  });

  describe('capacity', () => {
    it('reports width, height and capacity_bytes, and exactly that many bytes fit', async () => {
      const res = await post('/api/capacity', { file: png(cover) });
      expect(res.status).to.equal(200);
      const c = (await res.json()) as { width: number; height: number; capacity_bytes: number };
      expect(Object.keys(c)).to.have.members(['width', 'height', 'capacity_bytes']);
      expect([c.width, c.height]).to.deep.equal([64, 48]);
      expect(c.capacity_bytes).to.be.a('number').greaterThan(100);
      await embedOk({ file: png(cover), message: 'a'.repeat(c.capacity_bytes) });
      const err = await expectError(await post('/api/embed', { file: png(cover), message: 'a'.repeat(c.capacity_bytes + 1) }), 413, 'capacity_exceeded');
      expect(err.message).to.include(String(c.capacity_bytes));
    });

    it('accounts for encryption overhead when a passphrase is given', async () => {
      const plain = (await (await post('/api/capacity', { file: png(cover) })).json()) as { capacity_bytes: number };
      const enc = (await (await post('/api/capacity', { file: png(cover), passphrase: 'p' })).json()) as { capacity_bytes: number };
      expect(enc.capacity_bytes).to.be.lessThan(plain.capacity_bytes);
    });
  });

  describe('bad input is a 4xx JSON error naming the problem', () => {
    it('not a PNG → 415 not_png', async () => {
      await expectError(await post('/api/extract', { file: png(Buffer.from('GIF89a not a png at all, sorry')) }), 415, 'not_png');
      await expectError(await post('/api/embed', { file: png(Buffer.from('hello')), message: 'x' }), 415, 'not_png');
    });

    it('truncated PNG → 422 corrupt_png', async () => {
      await expectError(await post('/api/extract', { file: png(cover.subarray(0, Math.floor(cover.length / 2))) }), 422, 'corrupt_png');
      await expectError(await post('/api/capacity', { file: png(cover.subarray(0, 20)) }), 422, 'corrupt_png');
    });

    it('corrupt PNG data → 422 corrupt_png', async () => {
      const bad = Buffer.from(cover);
      const idat = bad.indexOf('IDAT');
      for (let i = idat + 10; i < idat + 60; i++) bad[i] = bad[i]! ^ 0x5a;
      await expectError(await post('/api/embed', { file: png(bad), message: 'x' }), 422, 'corrupt_png');
    });

    it('over the pixel limit → 413 image_too_large, before decoding', async () => {
      const big = await photoPng(400, 300);
      const err = await expectError(await post('/api/capacity', { file: png(big) }), 413, 'image_too_large');
      expect(err.message).to.include('100000');
    });

    it('image without payload → 422 no_payload', async () => {
      await expectError(await post('/api/extract', { file: png(cover) }), 422, 'no_payload');
    });

    it('missing fields → 400 invalid_request', async () => {
      const noFile = await expectError(await post('/api/extract', { passphrase: 'x' }), 400, 'invalid_request');
      expect(noFile.message).to.include("'file'");
      await expectError(await post('/api/capacity', {}), 400, 'invalid_request');
      const noPayload = await expectError(await post('/api/embed', { file: png(cover) }), 400, 'invalid_request');
      expect(noPayload.message).to.match(/message.*payload/);
    });

    it('both message and payload → 400 invalid_request', async () => {
      const err = await expectError(
        await post('/api/embed', { file: png(cover), message: 'a', payload: { data: Buffer.from('b'), filename: 'b.txt' } }),
        400,
        'invalid_request',
      );
      expect(err.message).to.include('not both');
    });

    it('a field sent twice, or as the wrong kind of part → 400 invalid_request', async () => {
      await expectError(await post('/api/extract', { file: [png(cover), png(cover)] }), 400, 'invalid_request');
      await expectError(await post('/api/extract', { file: 'text instead of a file' }), 400, 'invalid_request');
      await expectError(await post('/api/embed', { file: png(cover), message: { data: Buffer.from('x'), filename: 'm.txt' } }), 400, 'invalid_request');
    });

    it('wrong content type → 415 unsupported_media_type', async () => {
      const res = await fetch(`${srv.url}/api/embed`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"message":"hi"}' });
      const err = await expectError(res, 415, 'unsupported_media_type');
      expect(err.message).to.include('application/json');
      await expectError(await fetch(`${srv.url}/api/extract`, { method: 'POST', body: cover }), 415, 'unsupported_media_type');
    });

    it('malformed multipart → 400 invalid_request', async () => {
      const res = await fetch(`${srv.url}/api/extract`, {
        method: 'POST',
        headers: { 'Content-Type': 'multipart/form-data; boundary=abc' },
        // a PNG signature, so the part passes the upload scan and the parser meets the missing boundary
        body: Buffer.concat([Buffer.from('--abc\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'), Buffer.from(cover.subarray(0, 8))]),
      });
      await expectError(res, 400, 'invalid_request');
      const noBoundary = await fetch(`${srv.url}/api/extract`, { method: 'POST', headers: { 'Content-Type': 'multipart/form-data' }, body: 'x' });
      await expectError(noBoundary, 400, 'invalid_request');
    });

    it('body over the limit (Content-Length) → 413 body_too_large', async () => {
      const res = await post('/api/embed', { file: png(Buffer.alloc(2 * 1024 * 1024, 1)), message: 'x' });
      const err = await expectError(res, 413, 'body_too_large');
      expect(err.message).to.include(String(1024 * 1024));
    });

    it('body over the limit sent chunked (no Content-Length) → 413 body_too_large', async () => {
      const boundary = 'chunkyboundary';
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${srv.url}/api/extract`, { method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Transfer-Encoding': 'chunked' } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, body: text }));
        });
        req.on('error', reject);
        req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n`);
        // a PNG header and one big ancillary chunk (within its limit), so only the body limit can stop it
        const textHead = Buffer.alloc(8);
        textHead.writeUInt32BE(6 * 1024 * 1024, 0);
        textHead.write('tEXt', 4, 'latin1');
        req.write(Buffer.concat([cover.subarray(0, 33), textHead]));
        const chunk = Buffer.alloc(64 * 1024, 7);
        let sent = 0;
        const pump = (): void => {
          while (sent < 4 * 1024 * 1024) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          req.end(`\r\n--${boundary}--\r\n`);
        };
        req.on('response', () => (sent = Infinity));
        pump();
      });
      expect(status, body).to.equal(413);
      expect((JSON.parse(body) as ErrorJson).error.code).to.equal('body_too_large');
    });
  });
});

describe('stego HTTP API with misbehaving clients', () => {
  it('survives a client that disconnects mid-upload and keeps serving', async () => {
    const srv = await startTestServer();
    try {
      const boundary = 'abortboundary';
      await new Promise<void>((resolve) => {
        const req = httpRequest(`${srv.url}/api/embed`, { method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': String(10 * 1024 * 1024) } });
        req.on('error', () => resolve());
        req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`);
        req.write(Buffer.alloc(256 * 1024, 1), () => {
          req.destroy();
          resolve();
        });
      });
      const res = await fetch(`${srv.url}/healthz`);
      expect(res.status).to.equal(200);
      const fd = new FormData();
      fd.append('file', new Blob([await photoPng(16, 16)], { type: 'image/png' }), 'x.png');
      expect((await fetch(`${srv.url}/api/capacity`, { method: 'POST', body: fd })).status).to.equal(200);
    } finally {
      await srv.close();
    }
  });
});

describe('stego HTTP API when a worker dies', () => {
  it('answers a job past its time budget with 503 job_timeout + Retry-After and serves the next request on a replacement worker', async () => {
    // The time budget terminates the worker mid-job and replaces it; the caller gets a 503, never a 500.
    const srv = await startTestServer({ pool: { size: 1, maxQueue: 2, jobTimeoutMs: 400 } });
    try {
      const big = new FormData();
      big.append('file', new Blob([await photoPng(4000, 3000)], { type: 'image/png' }), 'big.png');
      big.append('message', 'never finishes in time');
      const res = await fetch(`${srv.url}/api/embed`, { method: 'POST', body: big });
      expect(res.headers.get('retry-after')).to.match(/^\d+$/);
      const err = await expectError(res, 503, 'job_timeout');
      expect(err.message).to.include('400 ms');
      const small = new FormData();
      small.append('file', new Blob([await photoPng(16, 16)], { type: 'image/png' }), 'small.png');
      const ok = await fetch(`${srv.url}/api/capacity`, { method: 'POST', body: small });
      expect(ok.status, await ok.clone().text()).to.equal(200);
      expect(srv.pool.stats()).to.include({ timeouts: 1, crashes: 0 });
    } finally {
      await srv.close();
    }
  });
});

describe('stego HTTP API under load', () => {
  it('answers 503 with Retry-After when every worker is busy and the queue is full', async () => {
    const srv = await startTestServer({ pool: { size: 1, maxQueue: 0, retryAfterSeconds: 2 } });
    try {
      const fd = new FormData();
      fd.append('file', new Blob([await photoPng(8, 8)], { type: 'image/png' }), 'x.png');
      const big = await photoPng(3000, 2000);
      // Occupy the only worker with a large embed (seconds); the request below arrives while it runs.
      const busy = srv.pool.embed(big, { kind: 'text', text: 'busy' });
      expect(srv.pool.saturated).to.equal(true);
      const res = await fetch(`${srv.url}/api/capacity`, { method: 'POST', body: fd });
      expect(res.status).to.equal(503);
      expect(res.headers.get('retry-after')).to.equal('2');
      expect(((await res.json()) as ErrorJson).error.code).to.equal('pool_saturated');
      expect((await busy).png.length).to.be.greaterThan(0);
    } finally {
      await srv.close();
    }
  });
});
