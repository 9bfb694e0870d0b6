// The steganography endpoints. Thin: parse the form, check the PNG header, hand the work to the pool,
// shape the answer. Errors are thrown and shaped by the error middleware.
import { readFile } from 'node:fs/promises';
import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { requireToken } from '../../auth/middleware.js';
import type { StegoPool } from '../../workers/stego-pool.js';
import type { Payload } from '../../stego/engine.js';
import { payloadSize } from '../../stego/payload.js';
import type { StegoMetrics } from '../../metrics/stego.js';
import { ApiError } from '../errors.js';
import type { HttpConfig } from '../http-config.js';
import { refuseWhenSaturated } from '../middleware/admission.js';
import { multipartBody, payloadOf, readStegoForm, requireFile } from '../multipart.js';
import { precheckPng } from '../png-precheck.js';

export interface StegoRouteDeps {
  pool: StegoPool;
  config: HttpConfig;
  /** Payload and carrier bytes of successful jobs. */
  metrics?: StegoMetrics;
}

/** Loads the default cover once; a failed load is retried on the next request rather than cached. */
export function coverLoader(path: string): () => Promise<Buffer> {
  let cached: Promise<Buffer> | undefined;
  return () => {
    cached ??= readFile(path).catch((e: unknown) => {
      cached = undefined;
      throw new ApiError('cover_unavailable', 500, `default cover image ${path} cannot be read: ${(e as Error).message}`);
    });
    return cached;
  };
}

function asciiFallback(name: string): string {
  return name.replace(/[^\x20-\x7e]/g, '_');
}

function sendPayload(ctx: Context, payload: Payload): void {
  if (payload.kind === 'text') {
    ctx.body = { message: payload.text };
    return;
  }
  // Koa's attachment() builds Content-Disposition with the content-disposition package (RFC 6266
  // quoting, RFC 5987 filename* for non-ASCII). Its default fallback keeps Latin-1 letters, which are
  // not ASCII and reach clients garbled, so the plain filename= gets a strict ASCII fallback.
  ctx.attachment(payload.filename, { fallback: asciiFallback(payload.filename) });
  ctx.type = 'application/octet-stream';
  ctx.body = Buffer.from(payload.data.buffer, payload.data.byteOffset, payload.data.byteLength);
}

export function stegoRouter({ pool, config, metrics }: StegoRouteDeps): Router {
  const router = new Router();
  const cover = coverLoader(config.coverPath);
  const gate: Middleware = config.statelessAuth === 'token' ? requireToken() : async (_ctx, next) => next();
  const upload = [gate, refuseWhenSaturated(pool), multipartBody(config.bodyLimitBytes, pool.uploadScanLimits)] as const;

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'healthy' };
  });

  router.post('/api/embed', ...upload, async (ctx) => {
    const form = readStegoForm(ctx);
    const payload = payloadOf(form);
    // The pool takes ownership of its input, so the cached cover is copied, never handed over.
    const png = form.file ?? Buffer.from(await cover());
    precheckPng(png, pool.maxPixels);
    // read before the pool takes the buffer over
    const imageBytes = png.length;
    const out = await pool.embed(png, payload, { passphrase: form.passphrase });
    metrics?.jobDone('embed', payloadSize(payload), imageBytes);
    ctx.type = 'image/png';
    ctx.body = out.png;
  });

  router.post('/api/extract', ...upload, async (ctx) => {
    const form = readStegoForm(ctx);
    const png = requireFile(form);
    precheckPng(png, pool.maxPixels);
    const imageBytes = png.length;
    const payload = await pool.extract(png, { passphrase: form.passphrase });
    metrics?.jobDone('extract', payloadSize(payload), imageBytes);
    sendPayload(ctx, payload);
  });

  router.post('/api/capacity', ...upload, async (ctx) => {
    const form = readStegoForm(ctx);
    const png = requireFile(form);
    precheckPng(png, pool.maxPixels);
    const c = await pool.capacity(png, { passphrase: form.passphrase });
    ctx.body = { width: c.width, height: c.height, capacity_bytes: c.capacityBytes };
  });

  return router;
}
