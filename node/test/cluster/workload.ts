// A client that keeps committing small objects while a test changes the cluster underneath it, and
// remembers exactly which writes were acknowledged (201), so the test can prove none was lost.

import type { Cluster, ObjectAck } from './harness.js';
import { delay, sha256 } from './harness.js';
import { makeCover } from './fixtures.js';

export interface AckedWrite extends ObjectAck {
  message: string;
  via: string;
  leader: string | null;
  at: number;
}

export class BackgroundWriter {
  readonly acked = new Map<string, AckedWrite>();
  readonly failures = new Map<string, number>();
  attempts = 0;
  private running = false;
  private loops: Promise<void>[] = [];
  private seq = 0;
  private readonly cover: Buffer;

  constructor(
    private readonly cluster: Cluster,
    private readonly opts: {
      concurrency?: number;
      targets?: () => string[];
      tag?: string;
      timeoutMs?: number;
      /** The image each write stores (default a 16×16 cover). */
      cover?: Buffer;
      /** Each loop starts a write at most this often: concurrency × 1000 / paceMs writes per second at most. */
      paceMs?: number;
    } = {},
  ) {
    this.cover = opts.cover ?? makeCover(16, 16, 7);
  }

  start(): this {
    this.running = true;
    for (let i = 0; i < (this.opts.concurrency ?? 2); i++) this.loops.push(this.loop());
    return this;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  ackedCount(): number {
    return this.acked.size;
  }

  /** Resolves once `n` more writes have been acknowledged than when called, or throws at the deadline. */
  async waitForMoreAcks(n: number, deadlineMs = 15_000): Promise<void> {
    const target = this.acked.size + n;
    const deadline = Date.now() + deadlineMs;
    while (this.acked.size < target) {
      if (Date.now() > deadline) {
        throw new Error(
          `writer got ${this.acked.size}/${target} acks in ${deadlineMs} ms; failures ${JSON.stringify([...this.failures])}`,
        );
      }
      await delay(20);
    }
  }

  private pickTarget(): string | undefined {
    const ids = this.opts.targets ? this.opts.targets() : this.cluster.liveIds();
    const live = ids.filter((id) => this.cluster.nodes.get(id)?.state === 'running');
    return live[Math.floor(Math.random() * live.length)];
  }

  private note(kind: string): void {
    this.failures.set(kind, (this.failures.get(kind) ?? 0) + 1);
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const target = this.pickTarget();
      if (!target) {
        await delay(20);
        continue;
      }
      const message = `${this.opts.tag ?? 'w'}-${process.pid}-${this.seq++}-${Date.now()}`;
      const started = Date.now();
      this.attempts++;
      let acked = false;
      try {
        const r = await this.cluster.putObject(target, { cover: this.cover, message }, this.opts.timeoutMs ?? 8_000);
        if (r.status === 201) {
          const ack = r.body as ObjectAck;
          this.acked.set(ack.id, { ...ack, message, via: target, leader: r.headers.get('x-stego-leader'), at: Date.now() });
          acked = true;
        } else {
          this.note(String(r.status));
        }
      } catch (err) {
        this.note((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name);
      }
      // Back off briefly after a refusal so a leaderless cluster is not flooded while it elects; a paced
      // writer waits out the rest of its period.
      const wait = Math.max(acked ? 0 : 10, (this.opts.paceMs ?? 0) - (Date.now() - started));
      if (wait > 0) await delay(wait);
    }
  }
}

/**
 * Reads every acknowledged object from `id` and checks its bytes against the acknowledged sha256.
 * Returns the ids that are missing or wrong (empty when all are there). A 503/504 or a dropped connection
 * (an election in progress; a read index lost with the old leader) is retried until `deadlineMs`; a 404 or
 * wrong bytes are final.
 */
export async function verifyObjects(
  cluster: Cluster,
  id: string,
  acks: Iterable<{ id: string; sha256: string }>,
  opts: { stale?: boolean; concurrency?: number; deadlineMs?: number } = {},
): Promise<string[]> {
  const list = [...acks];
  const bad: string[] = [];
  const deadline = Date.now() + (opts.deadlineMs ?? 30_000);
  let next = 0;
  const readOne = async (ack: { id: string; sha256: string }): Promise<string | null> => {
    let last = '';
    while (Date.now() < deadline) {
      try {
        // Longer than the node's own request timeout, so its 503/504 arrives before we give up.
        const r = await cluster.getObject(id, ack.id, { stale: opts.stale ?? false, timeoutMs: 15_000 });
        if (r.status === 200) return sha256(r.bytes!) === ack.sha256 ? null : `${ack.id}: sha256 mismatch`;
        if (r.status !== 503 && r.status !== 504) return `${ack.id}: HTTP ${r.status} ${JSON.stringify(r.body)}`;
        last = `HTTP ${r.status} ${JSON.stringify(r.body)}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await delay(50);
    }
    return `${ack.id}: still failing at the deadline: ${last}`;
  };
  const worker = async () => {
    while (next < list.length) {
      const problem = await readOne(list[next++]!);
      if (problem) bad.push(problem);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, worker));
  return bad;
}
