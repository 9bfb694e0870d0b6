// Membership and leadership administration, behind a bearer token. Operations run on the leader: a
// follower forwards them over the raft link, so an operator may call any node.
import { timingSafeEqual, createHash } from 'node:crypto';
import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { koaBody } from 'koa-body';
import type { ClusterApi, MemberChangeResult } from '../../cluster/api.js';
import { ApiError } from '../errors.js';
import { stegoHeaders } from './objects.js';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time check of `Authorization: Bearer <token>`; an unset token disables the admin API. */
export function requireAdminToken(token: string): Middleware {
  const want = digest(token);
  return async function checkAdminToken(ctx, next) {
    if (token === '') throw new ApiError('unauthorized', 401, 'the admin API is disabled: STEGO_ADMIN_TOKEN is not set on this node');
    const m = /^Bearer\s+(.+)$/i.exec(ctx.get('Authorization'));
    if (!m || !timingSafeEqual(digest(m[1]!.trim()), want)) {
      ctx.set('WWW-Authenticate', 'Bearer realm="stego-admin"');
      throw new ApiError('unauthorized', 401, 'missing or wrong admin bearer token');
    }
    await next();
  };
}

function jsonObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new ApiError('invalid_request', 400, 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

function optionalString(o: Record<string, unknown>, key: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ApiError('invalid_request', 400, `'${key}' must be a string`);
  return v;
}

/** 200 when the change is done; 202 when it was accepted and finishes in the background. */
function answerChange(ctx: Context, r: MemberChangeResult): void {
  ctx.status = r.done ? 200 : 202;
  ctx.body = r.body;
}

export function adminRouter(service: ClusterApi, adminToken: string): Router {
  const router = new Router({ prefix: '/admin' });
  router.use(stegoHeaders(service));
  router.use(requireAdminToken(adminToken));
  const json = koaBody({ json: true, multipart: false, urlencoded: false, text: false, jsonLimit: '64kb', jsonStrict: true });

  router.post('/members', json, async (ctx) => {
    const body = jsonObject(ctx.request.body);
    const id = optionalString(body, 'id');
    const address = optionalString(body, 'raft_address');
    if (!id || !address) throw new ApiError('invalid_request', 400, "send {\"id\": \"n4\", \"raft_address\": \"host:port\"}");
    answerChange(ctx, await service.addMember(id, address));
  });

  router.delete('/members/:id', async (ctx) => {
    answerChange(ctx, await service.removeMember(ctx.params.id!));
  });

  router.post('/transfer-leadership', json, async (ctx) => {
    const to = optionalString(jsonObject(ctx.request.body), 'to');
    answerChange(ctx, await service.transferLeadership(to));
  });

  return router;
}
