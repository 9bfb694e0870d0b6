// The real nginx in front of nodes that are down, and with a body over the limit: what a client gets is
// the API's JSON error shape, never nginx's HTML page.
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNginx, NginxProcess } from './nginx-process.js';
import { freePort } from '../../test/ports.js';


function send(port: number, method: string, headers: Record<string, string>, body?: Buffer, path = '/api/objects'): Promise<{ status: number; type: string; retryAfter?: string; json: { error: { code: string; message: string } } }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        try {
          resolve({
            status: res.statusCode!,
            type: res.headers['content-type'] ?? '',
            retryAfter: res.headers['retry-after'] as string | undefined,
            json: JSON.parse(Buffer.concat(parts).toString('utf8')) as { error: { code: string; message: string } },
          });
        } catch (e) {
          reject(new Error(`not JSON (${res.statusCode}): ${Buffer.concat(parts).toString('utf8').slice(0, 200)} ${String(e)}`));
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function until<T>(fn: () => Promise<T>, deadlineMs: number): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe('nginx error answers (real nginx)', function () {
  this.timeout(20_000);
  let nginx: NginxProcess | undefined;
  let prefix = '';
  let port = 0;
  const limit = 100_000;

  before(async function () {
    const bin = findNginx();
    if (!bin) return this.skip();
    prefix = mkdtempSync(join(tmpdir(), 'stego-nginx-errors-'));
    port = await freePort();
    const dead = await freePort();
    nginx = new NginxProcess(bin, { prefix, listen: `127.0.0.1:${port}`, nodes: [{ id: 'n1', address: `127.0.0.1:${dead}` }], maxBodyBytes: limit });
    await nginx.start('n1');
  });

  after(async () => {
    await nginx?.stop();
    if (prefix) rmSync(prefix, { recursive: true, force: true });
  });

  it('413 over the body limit is JSON body_too_large naming the same limit as the nodes', async () => {
    const r = await until(() => send(port, 'POST', { 'content-type': 'image/png', 'content-length': String(limit + 1) }, Buffer.alloc(limit + 1)), 5_000);
    expect(r.status).to.equal(413);
    expect(r.type).to.match(/^application\/json/);
    expect(r.json.error.code).to.equal('body_too_large');
    expect(r.json.error.message).to.include(String(limit));
  });

  it('413 over the body limit on a streamed route (/api/embed) is the same JSON, before any node is tried', async () => {
    const r = await until(() => send(port, 'POST', { 'content-type': 'multipart/form-data; boundary=b', 'content-length': String(limit + 1) }, Buffer.alloc(limit + 1), '/api/embed'), 5_000);
    expect(r.status).to.equal(413);
    expect(r.type).to.match(/^application\/json/);
    expect(r.json.error.code).to.equal('body_too_large');
  });

  it('502 when no node answers is JSON with Retry-After', async () => {
    const r = await until(() => send(port, 'GET', {}), 5_000);
    expect(r.status).to.be.oneOf([502, 503, 504]);
    expect(r.type).to.match(/^application\/json/);
    expect(r.retryAfter).to.equal('1');
    expect(r.json.error.code).to.be.oneOf(['bad_gateway', 'unavailable', 'gateway_timeout']);
  });
});
