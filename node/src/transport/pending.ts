// Outstanding app-RPC requests, shared by both transports: each settles exactly once — by its answer, its
// timeout, the loss of the link it went out on, or the transport stopping — and its timer never outlives it.
import type { NodeId } from '../raft/types.js';
import { TransportError } from './errors.js';

interface Entry {
  peer: NodeId;
  resolve(body: Uint8Array): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class PendingRequests {
  private readonly byId = new Map<number, Entry>();
  private nextId = 1;

  /** Registers a request to `peer`; `send(id)` puts it on the wire (a rejection of it fails the request). */
  open(peer: NodeId, kind: string, timeoutMs: number, send: (id: number) => Promise<void> | void): Promise<Uint8Array> {
    const id = this.nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.byId.delete(id);
        reject(new TransportError('timeout', `request '${kind}' to ${peer} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.byId.set(id, { peer, resolve, reject, timer });
      // sent synchronously, so a request keeps its place among frames queued in the same turn
      try {
        void Promise.resolve(send(id)).catch((err: Error) => this.reject(id, peer, err));
      } catch (err) {
        this.reject(id, peer, err as Error);
      }
    });
  }

  /** Settles with the answer; a late answer (after a timeout) or one from another peer is ignored. */
  resolve(id: number, from: NodeId, body: Uint8Array): void {
    this.take(id, from)?.resolve(body);
  }

  reject(id: number, from: NodeId, err: Error): void {
    this.take(id, from)?.reject(err);
  }

  /** Fails every request that went out to `peer` (its link closed before the answer). */
  linkLost(peer: NodeId): void {
    for (const [id, e] of this.byId) {
      if (e.peer === peer) this.take(id, peer)?.reject(new TransportError('link_lost', `link to ${peer} closed before the response`));
    }
  }

  /** Fails everything: the transport is stopping. */
  stopAll(): void {
    for (const [id, e] of this.byId) this.take(id, e.peer)?.reject(new TransportError('stopped', 'transport stopped'));
  }

  private take(id: number, from: NodeId): Entry | undefined {
    const e = this.byId.get(id);
    if (!e || e.peer !== from) return undefined;
    this.byId.delete(id);
    clearTimeout(e.timer);
    return e;
  }
}
