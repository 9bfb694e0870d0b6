// Replicated stego objects. POST embeds on the receiving node (its worker pool does the CPU work, so
// followers share the load) and only the finished PNG travels to the leader through Raft.
import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { ClusterApi } from '../../cluster/api.js';
import { ClusterError } from '../../cluster/errors.js';
import type { StegoPool } from '../../workers/stego-pool.js';
import type { HttpConfig } from '../http-config.js';
import { refuseWhenSaturated } from '../middleware/admission.js';
import { multipartBody, payloadOf, readStegoForm } from '../multipart.js';
import { precheckPng } from '../png-precheck.js';
import { StegoError } from '../../stego/errors.js';
import { coverLoader } from './stego.js';
import type { ObjectMeta } from '../../cluster/object-store.js';
import { requireScope, tokenOf } from '../../auth/middleware.js';
import { PngUploadScanner, type UploadScanLimits } from '../../stego/png/upload-scan.js';
import { ApiError } from '../errors.js';
import { checkRawPng, INLINE_VALIDATE_MAX_BYTES, validatesInline } from '../../workers/raw-png.js';
import { budgetRefusal, ByteBudget, holdUntilDone } from '../middleware/body-budget.js';

export interface ObjectRouteDeps {
  service: ClusterApi;
  pool: StegoPool;
  config: HttpConfig;
  /** The app's byte budget (downloads reserve their window in it); pass the one given to createApp. */
  budget?: ByteBudget;
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

/**
 * Reads a raw `image/png` body (an image already carrying its payload, e.g. made with the CLI) up to the
 * object limit, scanning it as it arrives (png/upload-scan.ts: signature, IHDR and pixel limit, chunk
 * limits); the structural check runs in the worker pool. The declared length was checked against the limit (and the budget)
 * before reading, but never sizes a buffer: pieces are kept as they come and joined once.
 */
async function readRawPng(ctx: Context, maxObjectBytes: number, limits: UploadScanLimits): Promise<Buffer> {
  const scanner = new PngUploadScanner(limits);
  const pieces: Buffer[] = [];
  let total = 0;
  // 'data' events, not async iteration: leaving a for-await loop early destroys the request and with it
  // the socket, so a refusal would never be answered. Here the request is only paused, and the error
  // answer stops reading the rest (middleware/linger.ts).
  const req = ctx.req;
  await new Promise<void>((resolve, reject) => {
    const stop = (e: Error): void => {
      req.off('data', onData);
      req.pause();
      reject(e instanceof ClusterError || e instanceof StegoError ? e : new ApiError('request_aborted', 400, `could not read the PNG body: ${e.message}`));
    };
    const onData = (piece: Buffer): void => {
      total += piece.length;
      try {
        if (total > maxObjectBytes) throw new ClusterError('object_too_large', `the PNG is larger than the object limit of ${maxObjectBytes} bytes`);
        scanner.push(piece);
      } catch (e) {
        stop(e as Error);
        return;
      }
      pieces.push(piece);
    };
    req.on('data', onData);
    req.once('end', () => resolve());
    req.once('error', stop);
    req.once('aborted', () => stop(new Error('the client aborted the upload')));
  });
  const png = Buffer.concat(pieces, total);
  precheckPng(png, limits.maxPixels);
  return png;
}

/** A key from the Idempotency-Key header: printable ASCII, as the IETF draft and common practice allow. */
const IDEMPOTENCY_KEY_RE = /^[\x21-\x7e]{1,255}$/;

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

/** Window of a streamed download: the bytes a slow reader can make this node hold for it. */
export const DOWNLOAD_WINDOW_BYTES = 256 * 1024;

function created(ctx: Context, result: { meta: ObjectMeta; replayed: boolean }): void {
  ctx.status = 201;
  ctx.set('Location', `/api/objects/${result.meta.id}`);
  if (result.replayed) ctx.set('Idempotent-Replayed', 'true');
  ctx.body = { id: result.meta.id, sha256: result.meta.sha256, size: result.meta.size };
}

export function objectsRouter({ service, pool, config, budget = new ByteBudget(config.inflightBudgetBytes) }: ObjectRouteDeps): Router {
  const router = new Router();
  const cover = coverLoader(config.coverPath);
  router.use(stegoHeaders(service));

  // Refuse before reading a (large) body when this node cannot take part in a write at all.
  const serving: Middleware = async (_ctx, next) => {
    service.assertServing();
    await next();
  };

  const owner = (ctx: Context): { owner: string; quotaBytes: number } => {
    const token = tokenOf(ctx)!;
    return { owner: token.id, quotaBytes: token.quotaBytes };
  };

  // `Content-Type: image/png`: store a finished stego image as sent, once the worker pool has checked
  // that it is a PNG that decodes (structure, CRCs, limits, image data), not bytes behind a signature.
  const rawPng: Middleware = async (ctx, next) => {
    if (!ctx.is('image/png')) return next();
    const t0 = performance.now();
    const key = idempotencyKey(ctx);
    const body = await readRawPng(ctx, service.maxObjectBytes, pool.uploadScanLimits);
    const checked = validatesInline(body)
      ? { png: body, ...(await checkRawPng(body, { maxPixels: pool.maxPixels, limits: pool.chunkLimits, fingerprintKey: config.fingerprintKey })) }
      : await pool.validate(body, config.fingerprintKey);
    const t1 = performance.now();
    const result = await service.putObjectFor(checked.png, checked.sha256, { ...owner(ctx), idempotencyKey: key, fingerprint: checked.fingerprint! });
    ctx.set('Server-Timing', `pre;dur=${(t0 - (ctx.state.stegoStart as number)).toFixed(2)}, validate;dur=${(t1 - t0).toFixed(2)}, commit;dur=${(performance.now() - t1).toFixed(2)}`);
    created(ctx, result);
  };

  // Small raw PNGs are validated on this thread (validatesInline), so a saturated pool does not refuse them.
  const saturated = refuseWhenSaturated(pool);
  const admit: Middleware = (ctx, next) => {
    const declared = Number(ctx.get('Content-Length'));
    if (ctx.is('image/png') && ctx.get('Content-Length') !== '' && declared <= INLINE_VALIDATE_MAX_BYTES) return next();
    return saturated(ctx, next);
  };

  router.post('/api/objects', requireScope('write'), serving, admit, rawPng, multipartBody(config.bodyLimitBytes, pool.uploadScanLimits), async (ctx) => {
    const key = idempotencyKey(ctx);
    const form = readStegoForm(ctx);
    const payload = payloadOf(form);
    const png = form.file ?? Buffer.from(await cover());
    precheckPng(png, pool.maxPixels);
    const t0 = performance.now();
    const out = await pool.embed(png, payload, { passphrase: form.passphrase, digest: true, fingerprintKey: config.fingerprintKey });
    if (!out.sha256 || !out.fingerprint) throw new Error('worker did not return the digest and fingerprint it was asked for');
    const t1 = performance.now();
    const result = await service.putObjectFor(out.png, out.sha256, { ...owner(ctx), idempotencyKey: key, fingerprint: out.fingerprint });
    // where the time went, for clients and benchmarks (embed in the worker pool vs. the Raft commit)
    ctx.set('Server-Timing', `pre;dur=${(t0 - (ctx.state.stegoStart as number)).toFixed(2)}, embed;dur=${(t1 - t0).toFixed(2)}, commit;dur=${(performance.now() - t1).toFixed(2)}`);
    created(ctx, result);
  });

  router.get('/api/objects', requireScope('read'), async (ctx) => {
    const me = tokenOf(ctx)!.id;
    const list = (await service.listObjects(isStale(ctx.query.stale))).filter((o) => o.owner === undefined || o.owner === me);
    ctx.body = {
      objects: list.map((o) => ({ id: o.id, sha256: o.sha256, size: o.size, created_at: new Date(o.createdAt).toISOString() })),
    };
  });

  router.get('/api/objects/:id', requireScope('read'), async (ctx) => {
    // a slow reader holds one window of this node's budget; none left → 503 before anything is read
    if (!budget.tryReserve(DOWNLOAD_WINDOW_BYTES)) throw budgetRefusal(budget, DOWNLOAD_WINDOW_BYTES, 1);
    holdUntilDone(ctx, budget, DOWNLOAD_WINDOW_BYTES);
    const got = await service.openObject(ctx.params.id!, isStale(ctx.query.stale));
    if (!got) throw new ClusterError('not_found', `no object ${ctx.params.id}`);
    ctx.type = got.meta.contentType;
    ctx.length = got.meta.size;
    ctx.set('ETag', `"${got.meta.sha256}"`);
    ctx.set('X-Stego-Sha256', got.meta.sha256);
    ctx.body = got.stream;
  });

  router.delete('/api/objects/:id', requireScope('delete'), async (ctx) => {
    const meta = await service.objectMeta(ctx.params.id!);
    if (!meta) throw new ClusterError('not_found', `no object ${ctx.params.id}`);
    const me = tokenOf(ctx)!.id;
    if (meta.owner !== undefined && meta.owner !== me) throw new ApiError('forbidden', 403, `object ${meta.id} belongs to another token`);
    if (!(await service.deleteObject(ctx.params.id!))) throw new ClusterError('not_found', `no object ${ctx.params.id}`);
    ctx.status = 204;
  });

  return router;
}
