// Concurrent clients: each loops over seeded random operations against the node it is pinned to (moving to
// another node after a failure, as a client behind a load balancer would), recording every operation's
// invocation and completion in one shared history. Every request carries the cluster's API token.
//
// The node picks an object's id when it stores it, so the clients learn ids from put answers:
//   register keys `r<n>` (few, contended): a put creates a new object and, once acknowledged, makes it the
//   key's current object in a map all clients share; gets and deletes address the key's current object, so
//   several clients read and delete the same objects concurrently. A key with no acknowledged put yet (or
//   whose only puts are unanswered: their ids are unknown) is addressed at a fresh random id no put can
//   have created, which the model treats as an object that is absent.
//   write-once keys `u<client>-<n>` (one put each, then reads of its id): each acknowledged one must be
//   present with its bytes at the end ("no acknowledged write lost").
// Every put sends its own Idempotency-Key; a put whose outcome is unknown is retried once with the same
// key and bytes, and the retry's answer names the only object the pair may have created (the store keeps
// the first put under a key and answers a later one with it), so a retry must never store a second object.

import { createHash, randomUUID } from 'node:crypto';
import { PNG } from 'pngjs';
import { SeededRandom } from '../../src/raft/rand.js';
import type { ChaosCluster, Member } from './cluster.js';
import type { Op, OpKind } from './history.js';

export interface WorkloadOptions {
  clients: number;
  registerKeys: number;
  seed: number;
  /** Prefix of every Idempotency-Key, unique per run (keys are remembered by the store for a day). */
  keyPrefix: string;
  /** Per-request client timeout; the node's own request timeout is shorter. */
  timeoutMs?: number;
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A small valid PNG whose pixels carry `n`: a distinct value (sha256) per put. */
export function valuePng(rnd: SeededRandom): Buffer {
  const png = new PNG({ width: 4, height: 4, colorType: 6 });
  for (let i = 0; i < png.data.length; i++) png.data[i] = rnd.int(256);
  return PNG.sync.write(png);
}

/** A put as sent: its bytes and Idempotency-Key are kept for an idempotent retry. */
type PutOp = Op & { body?: Buffer; idempotencyKey?: string };

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class Workload {
  readonly history: Op[] = [];
  /** Register key → id of the object its latest acknowledged put created (shared by every client). */
  readonly current = new Map<string, string>();
  /** Acknowledged write-once puts: key → the object id and sha256 the node answered. */
  readonly ackedOnce = new Map<string, { id: string; sha: string }>();
  /** Reads whose bytes did not hash to the sha256 the node claimed. */
  readonly corruptReads: string[] = [];
  /** Answers that break the API contract (a 201 without an object id). */
  readonly badAnswers: string[] = [];
  private readonly t0 = performance.now();
  private stopped = false;
  private nextOpId = 0;
  private readonly running: Promise<void>[] = [];

  constructor(private readonly cluster: ChaosCluster, private readonly opts: WorkloadOptions) {}

  now(): number {
    return performance.now() - this.t0;
  }

  /** The object a get or delete of `key` addresses (see the header): known, or fresh and never created. */
  objectFor(key: string): string {
    return this.ackedOnce.get(key)?.id ?? this.current.get(key) ?? randomUUID();
  }

  /** Every key a client used, so the final reads cover them all. */
  registerKeyNames(): string[] {
    return Array.from({ length: this.opts.registerKeys }, (_, i) => `r${i}`);
  }

  start(): void {
    for (let c = 0; c < this.opts.clients; c++) this.running.push(this.loop(c));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }

  private pickNode(rnd: SeededRandom, c: number, moved: number): Member | undefined {
    const members = [...this.cluster.members.values()];
    if (members.length === 0) return undefined;
    return members[(c + moved) % members.length] ?? rnd.pick(members);
  }

  private async loop(c: number): Promise<void> {
    const rnd = new SeededRandom(this.opts.seed * 1000 + c);
    let moved = 0;
    let onceCounter = 0;
    const mine: string[] = [];
    while (!this.stopped) {
      const node = this.pickNode(rnd, c, moved);
      if (!node) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const roll = rnd.next();
      let op: PutOp;
      if (roll < 0.25) {
        const key = `u${c}-${onceCounter++}`;
        op = await this.put(c, node, key, valuePng(rnd));
        if (op.outcome === 'unknown' && !this.stopped) {
          // an idempotent retry of the same request (same key and bytes): it answers with the object the
          // first attempt stored, if that one committed, so the first attempt is about the same object
          const retry = await this.put(c, this.pickNode(rnd, c, ++moved)!, key, op.body!, op);
          if (retry.outcome === 'ok') op.object = retry.object;
        }
        if (this.ackedOnce.has(key)) mine.push(key);
      } else if (roll < 0.35 && mine.length > 0) {
        op = await this.get(c, node, rnd.pick(mine));
      } else {
        const key = `r${rnd.int(this.opts.registerKeys)}`;
        const kind: OpKind = rnd.chance(0.45) ? 'get' : rnd.chance(0.6) ? 'put' : 'delete';
        op = kind === 'put' ? await this.put(c, node, key, valuePng(rnd)) : kind === 'get' ? await this.get(c, node, key) : await this.del(c, node, key);
      }
      if (op.outcome !== 'ok') {
        moved++;
        await new Promise((r) => setTimeout(r, 20 + rnd.int(80)));
      }
    }
  }

  private begin(c: number, node: Member, key: string, kind: OpKind, object?: string): PutOp {
    const op: PutOp = { id: this.nextOpId++, client: c, key, kind, call: this.now(), ret: Infinity, outcome: 'unknown', node: node.id, ...(object ? { object } : {}) };
    this.history.push(op);
    return op;
  }

  private finish<T extends Op>(op: T, outcome: Op['outcome'], res?: Response, detail?: string): T {
    op.outcome = outcome;
    op.ret = outcome === 'unknown' ? Infinity : this.now();
    if (outcome === 'unknown') op.detail = `${detail ?? ''} @${this.now().toFixed(0)}`.trim();
    else if (detail) op.detail = detail;
    const by = res?.headers.get('x-stego-node');
    if (by) op.answeredBy = by;
    return op;
  }

  private signal(): AbortSignal {
    return AbortSignal.timeout(this.opts.timeoutMs ?? 6_000);
  }

  /** A put of `png` under `key`; `retryOf` repeats an earlier put (same Idempotency-Key and bytes). */
  async put(c: number, node: Member, key: string, png: Buffer, retryOf?: PutOp): Promise<PutOp> {
    const op = this.begin(c, node, key, 'put');
    op.value = sha256(png);
    op.body = png;
    op.idempotencyKey = retryOf?.idempotencyKey ?? `${this.opts.keyPrefix}-${key}-${op.id}`;
    if (retryOf !== undefined) op.retryOf = retryOf.id;
    let res: Response;
    try {
      res = await fetch(`${node.url}/api/objects`, {
        method: 'POST',
        headers: this.cluster.headers({ 'content-type': 'image/png', 'idempotency-key': op.idempotencyKey }),
        body: png,
        signal: this.signal(),
      });
    } catch (err) {
      // a refused connection never reached the node: definitely no effect
      return this.finish(op, refused(err) ? 'fail' : 'unknown', undefined, errText(err));
    }
    const text = await res.text().catch(() => '');
    if (res.status === 201) {
      let body: { id?: unknown; sha256?: unknown };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        body = {};
      }
      if (typeof body.id !== 'string' || !UUID_RE.test(body.id) || typeof body.sha256 !== 'string') {
        this.badAnswers.push(`#${op.id} put ${key} on ${node.id}: 201 with ${text.slice(0, 120)}`);
        return this.finish(op, 'unknown', res, '201 without an object id');
      }
      op.object = body.id;
      op.result = body.sha256;
      if (key.startsWith('r')) this.current.set(key, body.id);
      else this.ackedOnce.set(key, { id: body.id, sha: body.sha256 });
      return this.finish(op, 'ok', res);
    }
    return this.finish(op, res.status >= 500 ? 'unknown' : 'fail', res, `${res.status} ${errCode(text)}`);
  }

  async get(c: number, node: Member, key: string, object = this.objectFor(key)): Promise<Op> {
    const op = this.begin(c, node, key, 'get', object);
    let res: Response;
    let bytes: Buffer;
    try {
      res = await fetch(`${node.url}/api/objects/${object}`, { headers: this.cluster.headers(), signal: this.signal() });
      bytes = Buffer.from(await res.arrayBuffer());
    } catch (err) {
      return this.finish(op, 'fail', undefined, errText(err));
    }
    if (res.status === 200) {
      const claimed = res.headers.get('x-stego-sha256');
      const actual = sha256(bytes);
      if (claimed !== actual) this.corruptReads.push(`#${op.id} ${key} on ${node.id}: header ${claimed}, bytes ${actual}`);
      op.result = actual;
      return this.finish(op, 'ok', res);
    }
    if (res.status === 404 && errCode(bytes.toString('utf8')) === 'not_found') {
      op.result = null;
      return this.finish(op, 'ok', res);
    }
    return this.finish(op, 'fail', res, `${res.status} ${errCode(bytes.toString('utf8'))}`);
  }

  async del(c: number, node: Member, key: string, object = this.objectFor(key)): Promise<Op> {
    const op = this.begin(c, node, key, 'delete', object);
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${node.url}/api/objects/${object}`, { method: 'DELETE', headers: this.cluster.headers(), signal: this.signal() });
      text = await res.text();
    } catch (err) {
      return this.finish(op, refused(err) ? 'fail' : 'unknown', undefined, errText(err));
    }
    if (res.status === 204) {
      op.result = true;
      return this.finish(op, 'ok', res);
    }
    if (res.status === 404 && errCode(text) === 'not_found') {
      op.result = false;
      return this.finish(op, 'ok', res);
    }
    return this.finish(op, res.status >= 500 ? 'unknown' : 'fail', res, `${res.status} ${errCode(text)}`);
  }

  /** Counts by kind and outcome, for the report. */
  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const op of this.history) {
      const k = `${op.kind}:${op.outcome}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }
}

function refused(err: unknown): boolean {
  return (err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED';
}

function errText(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string } };
  return e.name === 'TimeoutError' ? 'client timeout' : (e.cause?.code ?? e.message ?? String(err));
}

function errCode(text: string): string {
  try {
    return (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '';
  } catch {
    return text.slice(0, 40);
  }
}
