// Replicated stego objects. POST embeds on the receiving node (its worker pool does the CPU work, so
// followers share the load) and only the finished PNG travels to the leader through Raft.
import { createHash, webcrypto } from 'node:crypto';
import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import getRawBody from 'raw-body';
import type { ClusterApi } from '../../cluster/api.js';
import { IDEMPOTENCY_KEY_RE } from '../../cluster/service.js';
import { ClusterError } from '../../cluster/errors.js';
import type { StegoPool } from '../../workers/stego-pool.js';
import type { HttpConfig } from '../http-config.js';
import { refuseWhenSaturated } from '../middleware/admission.js';
import { multipartBody, payloadOf, readStegoForm } from '../multipart.js';
import { precheckPng } from '../png-precheck.js';
import { StegoError } from '../../stego/errors.js';
import { coverLoader } from './stego.js';

export interface ObjectRouteDeps {
  service: ClusterApi;
  pool: StegoPool;
  config: HttpConfig;
}

/** Every cluster response names the node that answered and the leader it knows (empty when none). */
export function stegoHeaders(service: ClusterApi): Middleware {
  return async function setStegoHeaders(ctx, next) {
    ctx.state.stegoStart = performance.now();
    ctx.set('X-Stego-Node', service.id);
    const set = (): void => {
      ctx.set('X-Stego-Leader', service.leaderId ?? '');
    };
    set();
    try {
      await next();
    } finally {
      // the leader may have changed while the request waited for a commit
      set();
    }
  };
}

/** The 12 bytes every complete PNG ends with: an empty IEND chunk and its CRC. */
const IEND = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

/**
 * Reads a raw `image/png` body (an image already carrying its payload, e.g. made with the CLI) up to the
 * object limit. Only cheap checks run here on the event loop — signature, IHDR, pixel limit and a complete
 * ending — so a truncated upload is refused, not stored; the bytes are otherwise kept exactly as sent.
 */
async function readRawPng(ctx: Context, maxObjectBytes: number, maxPixels: number): Promise<Buffer> {
  let png: Buffer;
  try {
    png = await getRawBody(ctx.req, { limit: maxObjectBytes, length: ctx.get('Content-Length') || undefined });
  } catch (e) {
    const err = e as { type?: string; message?: string };
    if (err.type === 'entity.too.large') {
      throw new ClusterError('object_too_large', `the PNG is larger than the object limit of ${maxObjectBytes} bytes`);
    }
    throw new StegoError('invalid_request', `could not read the PNG body: ${err.message ?? String(e)}`);
  }
  precheckPng(png, maxPixels);
  if (png.length < IEND.length || !png.subarray(png.length - IEND.length).equals(IEND)) {
    throw new StegoError('corrupt_png', 'the PNG is truncated: it does not end with an IEND chunk');
  }
  return png;
}

/** Below this, hashing inline (~µs) is cheaper than WebCrypto's argument handling and threadpool hop. */
const INLINE_HASH_BYTES = 256 * 1024;

/** SHA-256; large bodies through WebCrypto, which hashes on the libuv threadpool so 16 MiB never blocks the loop. */
async function sha256Hex(data: Buffer): Promise<string> {
  if (data.length <= INLINE_HASH_BYTES) return createHash('sha256').update(data).digest('hex');
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', data)).toString('hex');
}

/** The optional Idempotency-Key header (nginx sets its request id when the client sent none). */
function idempotencyKey(ctx: Context): string | undefined {
  const key = ctx.get('Idempotency-Key');
  if (key === '') return undefined;
  if (!IDEMPOTENCY_KEY_RE.test(key)) throw new StegoError('invalid_request', 'Idempotency-Key must be 1-255 printable ASCII characters');
  return key;
}

function isStale(q: unknown): boolean {
  return q === 'true' || q === '1';
}

export function objectsRouter({ service, pool, config }: ObjectRouteDeps): Router {
  const router = new Router();
  const cover = coverLoader(config.coverPath);
  router.use(stegoHeaders(service));

  // Refuse before reading a (large) body when this node cannot take part in a write at all.
  const serving: Middleware = async (_ctx, next) => {
    service.assertServing();
    await next();
  };

  // `Content-Type: image/png`: store a finished stego image as sent. No embedding, so no worker pool.
  const rawPng: Middleware = async (ctx, next) => {
    if (!ctx.is('image/png')) return next();
    const t0 = performance.now();
    const key = idempotencyKey(ctx);
    const png = await readRawPng(ctx, service.maxObjectBytes, pool.maxPixels);
    const meta = await service.putObject(png, await sha256Hex(png), key);
    ctx.set('Server-Timing', `pre;dur=${(t0 - (ctx.state.stegoStart as number)).toFixed(2)}, commit;dur=${(performance.now() - t0).toFixed(2)}`);
    ctx.status = 201;
    ctx.set('Location', `/api/objects/${meta.id}`);
    ctx.body = { id: meta.id, sha256: meta.sha256, size: meta.size };
  };

  router.post('/api/objects', serving, rawPng, refuseWhenSaturated(pool), multipartBody(config.bodyLimitBytes), async (ctx) => {
    const key = idempotencyKey(ctx);
    const form = readStegoForm(ctx);
    const payload = payloadOf(form);
    const png = form.file ?? Buffer.from(await cover());
    precheckPng(png, pool.maxPixels);
    const t0 = performance.now();
    const out = await pool.embed(png, payload, { passphrase: form.passphrase, digest: true });
    if (!out.sha256) throw new Error('worker did not return the digest it was asked for');
    const t1 = performance.now();
    const meta = await service.putObject(out.png, out.sha256, key);
    // where the time went, for clients and benchmarks (embed in the worker pool vs. the Raft commit)
    ctx.set('Server-Timing', `pre;dur=${(t0 - (ctx.state.stegoStart as number)).toFixed(2)}, embed;dur=${(t1 - t0).toFixed(2)}, commit;dur=${(performance.now() - t1).toFixed(2)}`);
    ctx.status = 201;
    ctx.set('Location', `/api/objects/${meta.id}`);
    ctx.body = { id: meta.id, sha256: meta.sha256, size: meta.size };
  });

  router.get('/api/objects', async (ctx) => {
    const list = await service.listObjects(isStale(ctx.query.stale));
    ctx.body = {
      objects: list.map((o) => ({ id: o.id, sha256: o.sha256, size: o.size, created_at: new Date(o.createdAt).toISOString() })),
    };
  });

  router.get('/api/objects/:id', async (ctx) => {
    const got = await service.getObject(ctx.params.id!, isStale(ctx.query.stale));
    if (!got) throw new ClusterError('not_found', `no object ${ctx.params.id}`);
    ctx.type = got.meta.contentType;
    ctx.set('ETag', `"${got.meta.sha256}"`);
    ctx.set('X-Stego-Sha256', got.meta.sha256);
    ctx.body = got.bytes;
  });

  router.delete('/api/objects/:id', async (ctx) => {
    if (!(await service.deleteObject(ctx.params.id!))) throw new ClusterError('not_found', `no object ${ctx.params.id}`);
    ctx.status = 204;
  });

  return router;
}
