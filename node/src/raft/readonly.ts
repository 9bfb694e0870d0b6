// ReadIndex bookkeeping on the leader (Raft thesis §6.4): a read is served at the commit index the leader
// had when the request arrived, once a heartbeat round proves it was still leader at that moment.
import type { Message } from './message.js';
import type { NodeId } from './types.js';

export interface ReadIndexStatus {
  index: number;
  req: Message;
  acks: Set<NodeId>;
}

export function ctxKey(ctx: Uint8Array | undefined): string {
  return ctx === undefined ? '' : Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('hex');
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  add(index: number, req: Message): void {
    const key = ctxKey(req.ctx);
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, req, acks: new Set() });
    this.queue.push(key);
  }

  recvAck(from: NodeId, ctx: Uint8Array | undefined): Set<NodeId> | undefined {
    const rs = this.pending.get(ctxKey(ctx));
    if (!rs) return undefined;
    rs.acks.add(from);
    return rs.acks;
  }

  /** Releases every request queued up to and including the one identified by `ctx`. */
  advance(ctx: Uint8Array | undefined): ReadIndexStatus[] {
    const at = this.queue.indexOf(ctxKey(ctx));
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const key of done) {
      const rs = this.pending.get(key);
      if (rs) out.push(rs);
      this.pending.delete(key);
    }
    return out;
  }

  lastPendingCtx(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)?.req.ctx;
  }

  get size(): number {
    return this.queue.length;
  }
}
