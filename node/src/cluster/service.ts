// What the HTTP routes call: replicated writes from any node (forwarded to the leader over the raft
// link, never through HTTP), linearizable or stale reads, and the admin operations on membership.
//
// Writes and admin operations are retried across leader changes (leader-retry.ts). That is safe because every command is idempotent: the
// receiving node picks the object id before proposing, so a put that did commit before the leader died
// and is proposed again simply writes the same object twice.
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import { parseHostPort } from '../config.js';
import type { NodeId } from '../raft/types.js';
import type { Transport } from '../transport/types.js';
import { encodeCommand, type Command } from './commands.js';
import { ClusterError, type HaltCause } from './errors.js';
import { onLeader } from './leader-retry.js';
import { OBJECT_ID_RE, type ObjectMeta, type PieceReader } from './object-store.js';
import { until } from './waiters.js';
import type { ClusterApi, MemberChangeResult, ObjectStream, PutClient, PutResult, Readiness, StoredObject } from './api.js';
import type { RaftNode } from './raft-node.js';
import type { ClusterStatusView } from './status-view.js';

export const RPC_PROPOSE = 'propose';

/** The object id for an idempotency key: UUID-shaped, so it looks like every other id, and key-derived. */
export function objectIdForKey(key: string): string {
  const h = createHash('sha256').update('stegocluster/idempotency-key\0').update(key).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
export const RPC_ADMIN = 'admin';

const MEMBER_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export interface ServiceOptions {
  requestTimeoutMs: number;
  maxObjectBytes: number;
  /** Entries a learner may still be behind when it is promoted. */
  promoteLagEntries?: number;
  /** How long POST /admin/members waits for the learner to catch up before answering 202. */
  catchUpTimeoutMs?: number;
  logger: Logger;
  /** Counts each write forwarded to the leader by outcome (ok, failed). */
  forwardedWrites?: { inc(labels: { outcome: 'ok' | 'failed' }): void };
}


type AdminRequest =
  | { op: 'add'; id: NodeId; raft_address: string }
  | { op: 'remove'; id: NodeId }
  | { op: 'transfer'; to?: NodeId };

/** The put command for a finished stego image; the id is chosen here, before proposing (see above). */
export function putCommand(png: Buffer, sha256: string, maxObjectBytes: number, idempotencyKey?: string): Extract<Command, { kind: 'put' }> {
  if (png.length > maxObjectBytes) {
    throw new ClusterError('object_too_large', `the stego image is ${png.length} bytes; the object limit is ${maxObjectBytes} bytes`);
  }
  return {
    kind: 'put',
    id: idempotencyKey === undefined ? randomUUID() : objectIdForKey(idempotencyKey),
    sha256: Buffer.from(sha256, 'hex'),
    createdAt: Date.now(),
    contentType: 'image/png',
    bytes: png,
  };
}

/** What a put stores, as the answer to a write whose object is not in the store (deleted meanwhile). */
export function putMeta(cmd: Extract<Command, { kind: 'put' }>): ObjectMeta {
  return { id: cmd.id, sha256: Buffer.from(cmd.sha256).toString('hex'), size: cmd.bytes.byteLength, contentType: cmd.contentType, createdAt: cmd.createdAt };
}

/** The put command of a client's object: owned by its token, with its quota and the request's fingerprint. */
export function putCommandFor(png: Buffer, sha256: string, maxObjectBytes: number, client: PutClient): Extract<Command, { kind: 'put' }> {
  if (png.length > maxObjectBytes) {
    throw new ClusterError('object_too_large', `the stego image is ${png.length} bytes; the object limit is ${maxObjectBytes} bytes`);
  }
  const { owner, quotaBytes, idempotencyKey, fingerprint } = client;
  return {
    kind: 'put',
    id: randomUUID(),
    sha256: Buffer.from(sha256, 'hex'),
    createdAt: Date.now(),
    contentType: 'image/png',
    bytes: png,
    owner,
    quotaBytes,
    fingerprint: Buffer.from(fingerprint, 'hex'),
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
  };
}

/** How often the leader looks for a learner that nobody is promoting. */
const PROMOTER_INTERVAL_MS = 1000;

export class ClusterService implements ClusterApi {
  private changeInProgress: string | null = null;
  /** A learner added with 202 and still waiting to be promoted in the background. */
  private pendingLearner: { id: NodeId; cancelled: boolean } | null = null;

  constructor(
    private readonly node: RaftNode,
    private readonly transport: Transport,
    private readonly opts: ServiceOptions,
  ) {
    transport.handle(RPC_PROPOSE, async (_from, body) => encodeIndex(await this.node.proposeLocal(body)));
    transport.handle(RPC_ADMIN, async (_from, body) => {
      const req = JSON.parse(Buffer.from(body).toString('utf8')) as AdminRequest;
      return Buffer.from(JSON.stringify(await this.runAdminHere(req)));
    });
    // Promotion is the leader's duty, not the request's: whoever leads promotes a learner in the configuration
    // once it has caught up, also one added under an earlier leader (an election while the learner copies the
    // log would otherwise strand it as a learner, and a scale-up waiting on it would never finish).
    const promoter = setInterval(() => this.promoteStrandedLearner(), PROMOTER_INTERVAL_MS);
    promoter.unref();
    node.events.on('leader', (leader) => {
      if (leader === node.id) this.promoteStrandedLearner();
    });
    node.events.once('halted', () => clearInterval(promoter));
  }

  /** Starts promoting a learner nobody is promoting, when this node leads and no membership change runs. */
  private promoteStrandedLearner(): void {
    if (!this.node.isLeader || this.changeInProgress !== null) return;
    const learner = this.node.confState().learners[0];
    if (learner === undefined) return;
    this.changeInProgress = `promote ${learner}`;
    this.opts.logger.info({ member: learner }, 'leader takes over promoting a learner once it catches up');
    void this.promoteWhenCaughtUp(learner);
  }

  get id(): NodeId {
    return this.node.id;
  }

  get maxObjectBytes(): number {
    return this.opts.maxObjectBytes;
  }

  get leaderId(): NodeId | null {
    return this.node.leaderId;
  }

  get haltCause(): HaltCause | undefined {
    return this.node.haltCause;
  }

  assertServing(): void {
    this.node.assertServing();
  }

  status(): Promise<ClusterStatusView> {
    return Promise.resolve(this.node.status());
  }

  readiness(): Promise<Readiness> {
    const r = this.node.readiness();
    return Promise.resolve({ ...r, leader_id: this.node.leaderId, applied_index: this.node.appliedIndex });
  }

  // ---- objects ------------------------------------------------------------------------------------

  /**
   * With an idempotency key the object id is derived from the key, and the store keeps the first object
   * written under an id, so a retried request (a client's, or nginx's `proxy_next_upstream` after a node
   * died mid-request) answers with the object the first attempt created instead of storing a duplicate.
   */
  async putObject(png: Buffer, sha256: string, idempotencyKey?: string): Promise<ObjectMeta> {
    const cmd = putCommand(png, sha256, this.opts.maxObjectBytes, idempotencyKey);
    return this.putEncoded(encodeCommand(cmd), putMeta(cmd));
  }

  /** Writes an encoded put command; answers with the object as stored (an earlier attempt's, on a retry). */
  async putEncoded(data: Uint8Array, meta: ObjectMeta): Promise<ObjectMeta> {
    const index = await this.write(data);
    // applied here before write() resolved; the answer is what the apply of this entry found or stored
    const outcome = this.node.takePutOutcome(index);
    if (outcome?.kind === 'stored' || outcome?.kind === 'exists') return outcome.meta;
    return this.node.store.get(meta.id) ?? meta;
  }

  /**
   * A client's put: owned by its API token, within the token's quota, and idempotent per (token, key)
   * with the request's fingerprint replicated in the object. The same key with the same fingerprint
   * answers the original object (`replayed`); with another fingerprint, 422 idempotency_key_reused.
   * Quota and key are decided when the entry is applied (the same on every replica); the checks before
   * proposing only save a round trip.
   */
  async putObjectFor(png: Buffer, sha256: string, client: PutClient): Promise<PutResult> {
    const cmd = putCommandFor(png, sha256, this.opts.maxObjectBytes, client);
    return this.putEncodedFor(encodeCommand(cmd), { id: cmd.id, size: png.length }, client);
  }

  /** Writes an encoded client put command (see putObjectFor; the command was built by putCommandFor). */
  async putEncodedFor(data: Uint8Array, put: { id: string; size: number }, client: PutClient): Promise<PutResult> {
    const { owner, quotaBytes, idempotencyKey: key, fingerprint } = client;
    const prior = (): PutResult | undefined => {
      const meta = key === undefined ? undefined : this.node.store.byIdempotencyKey(owner, key);
      if (!meta) return undefined;
      if (meta.fingerprint !== fingerprint) {
        throw new ClusterError('idempotency_key_reused', `Idempotency-Key ${JSON.stringify(key)} was already used with a different request`);
      }
      return { meta, replayed: true };
    };
    const overQuota = (): ClusterError =>
      new ClusterError('quota_exceeded', `storing ${put.size} bytes would exceed the quota of ${quotaBytes} bytes for token ${owner} (${this.node.store.bytesOwnedBy(owner)} bytes stored)`);
    const known = prior();
    if (known) return known;
    if (quotaBytes > 0 && this.node.store.bytesOwnedBy(owner) + put.size > quotaBytes) throw overQuota();
    const index = await this.write(data);
    // The answer is what the apply of this very entry did, not the store as later entries (a delete of
    // the object, another put under the key) left it by the time this continuation runs.
    const outcome = this.node.takePutOutcome(index);
    if (outcome) {
      switch (outcome.kind) {
        case 'stored':
        case 'exists': // this put re-proposed after a leader change: its first copy was stored
          return { meta: outcome.meta, replayed: false };
        case 'keyed':
          if (outcome.meta.fingerprint !== fingerprint) {
            throw new ClusterError('idempotency_key_reused', `Idempotency-Key ${JSON.stringify(key)} was already used with a different request`);
          }
          return { meta: outcome.meta, replayed: true };
        case 'over_quota':
          throw new ClusterError('quota_exceeded', `storing ${put.size} bytes would exceed the quota of ${quotaBytes} bytes for token ${owner} (${outcome.ownedBytes} bytes stored)`);
      }
    }
    // the entry reached this node inside a snapshot, so no outcome was recorded: read the store
    const stored = this.node.store.get(put.id);
    if (stored) return { meta: stored, replayed: false };
    const winner = prior();
    if (winner) return winner;
    throw overQuota();
  }

  /** The object as a stream read piece by piece from where it lives (see ObjectStore.openRead). */
  async openObject(id: string, stale: boolean): Promise<ObjectStream | undefined> {
    if (!(await this.locate(id, stale))) return undefined;
    return this.node.store.openRead(id);
  }

  /** The object's pieces, read one per call from where it lives (see ObjectStore.openPieces). */
  async openPieces(id: string, stale: boolean, pieceBytes: number): Promise<PieceReader | undefined> {
    if (!(await this.locate(id, stale))) return undefined;
    return this.node.store.openPieces(id, pieceBytes);
  }

  /** The object's metadata (as of a linearizable read), for ownership checks before deleting. */
  async objectMeta(id: string): Promise<ObjectMeta | undefined> {
    return this.locate(id, false);
  }

  /** False when the object does not exist (as of a linearizable read). */
  async deleteObject(id: string): Promise<boolean> {
    if (!OBJECT_ID_RE.test(id)) return false;
    await this.node.readBarrier();
    if (!this.node.store.get(id)) return false;
    await this.write(encodeCommand({ kind: 'delete', id }));
    return true;
  }

  async getObject(id: string, stale: boolean): Promise<StoredObject | undefined> {
    const meta = await this.locate(id, stale);
    const bytes = meta && (await this.node.store.read(id));
    return meta && bytes ? { meta, bytes } : undefined;
  }

  /** As getObject, with bytes nobody else holds (to be moved to another thread). */
  async getObjectDetached(id: string, stale: boolean): Promise<{ meta: ObjectMeta; bytes: Uint8Array } | undefined> {
    const meta = await this.locate(id, stale);
    const bytes = meta && (await this.node.store.readDetached(id));
    return meta && bytes ? { meta, bytes } : undefined;
  }

  private async locate(id: string, stale: boolean): Promise<ObjectMeta | undefined> {
    if (!OBJECT_ID_RE.test(id)) return undefined;
    if (stale) this.node.assertServing();
    else await this.node.readBarrier();
    return this.node.store.get(id);
  }

  async listObjects(stale: boolean): Promise<ObjectMeta[]> {
    if (stale) this.node.assertServing();
    else await this.node.readBarrier();
    return this.node.store.list();
  }

  /**
   * Commits `data` through the leader and resolves once it is applied on *this* node too, so a client
   * that reads from the node it wrote to sees its write even with ?stale=true.
   */
  async write(data: Uint8Array): Promise<number> {
    const deadline = Date.now() + this.opts.requestTimeoutMs;
    return onLeader(
      this.node,
      deadline,
      async (leader, left) => {
        if (leader === this.node.id) return this.node.proposeLocal(data);
        const index = await this.transport.request(leader, RPC_PROPOSE, data, left).then(
          (raw) => {
            this.opts.forwardedWrites?.inc({ outcome: 'ok' });
            return decodeIndex(raw);
          },
          (e: unknown) => {
            this.opts.forwardedWrites?.inc({ outcome: 'failed' });
            throw e;
          },
        );
        await this.node.appliedWaiters.wait(index, Math.max(1, deadline - Date.now()));
        return index;
      },
      (attempt, code, err) => this.opts.logger.debug({ attempt, code, err: err.message }, 'write retried after a leader change'),
    );
  }

  // ---- membership ---------------------------------------------------------------------------------

  addMember(id: string, raftAddress: string): Promise<MemberChangeResult> {
    if (!MEMBER_ID_RE.test(id)) throw new ClusterError('invalid_member', `member id ${JSON.stringify(id)} must match ${MEMBER_ID_RE.source}`);
    if (typeof raftAddress !== 'string' || parseHostPort(raftAddress) === null) {
      throw new ClusterError('invalid_member', `raft_address ${JSON.stringify(raftAddress)} must look like host:port`);
    }
    return this.admin({ op: 'add', id, raft_address: raftAddress });
  }

  removeMember(id: string): Promise<MemberChangeResult> {
    if (!MEMBER_ID_RE.test(id)) throw new ClusterError('invalid_member', `member id ${JSON.stringify(id)} is not valid`);
    return this.admin({ op: 'remove', id });
  }

  transferLeadership(to?: string): Promise<MemberChangeResult> {
    if (to !== undefined && !MEMBER_ID_RE.test(to)) throw new ClusterError('invalid_member', `member id ${JSON.stringify(to)} is not valid`);
    return this.admin(to === undefined ? { op: 'transfer' } : { op: 'transfer', to });
  }

  /** Runs an admin operation on the leader: here, or forwarded over the raft link. */
  private admin(req: AdminRequest): Promise<MemberChangeResult> {
    const deadline = Date.now() + this.catchUpTimeout() + this.opts.requestTimeoutMs;
    return onLeader(
      this.node,
      deadline,
      async (leader, left) => {
        if (leader === this.node.id) return this.runAdminHere(req);
        const raw = await this.transport.request(leader, RPC_ADMIN, Buffer.from(JSON.stringify(req)), left);
        return JSON.parse(Buffer.from(raw).toString('utf8')) as MemberChangeResult;
      },
      (attempt, code, err) => this.opts.logger.debug({ attempt, code, op: req.op, err: err.message }, 'admin operation retried after a leader change'),
    );
  }

  private async runAdminHere(req: AdminRequest): Promise<MemberChangeResult> {
    if (!this.node.isLeader) throw new ClusterError('no_leader', `${this.node.id} is not the leader`);
    switch (req.op) {
      case 'add':
        return this.exclusive(`add ${req.id}`, () => this.addHere(req.id, req.raft_address));
      case 'remove':
        return this.removeHere(req.id);
      case 'transfer': {
        const leader = await this.node.handOverLeadership(this.opts.requestTimeoutMs, req.to);
        return { done: true, body: { leader_id: leader } };
      }
    }
  }

  private async exclusive(what: string, run: () => Promise<MemberChangeResult>): Promise<MemberChangeResult> {
    if (this.changeInProgress !== null) {
      throw new ClusterError('change_in_progress', `a membership change is in progress (${this.changeInProgress}); retry when it is done`);
    }
    this.changeInProgress = what;
    let release = true;
    try {
      const r = await run();
      // a learner still catching up keeps the slot until it is promoted in the background
      if (!r.done) release = false;
      return r;
    } finally {
      if (release) this.changeInProgress = null;
    }
  }

  private async addHere(id: NodeId, address: string): Promise<MemberChangeResult> {
    const conf = this.node.confState();
    if (conf.voters.includes(id)) return { done: true, body: this.memberBody(id, 'voter') };
    // 1. every node learns the address first (a replicated command), so the new member can be dialled
    if (this.node.store.members().get(id) !== address) await this.node.proposeCommand({ kind: 'setMember', id, address });
    // 2. it joins as a learner: replicates (snapshot + log) without counting toward any quorum
    if (!conf.learners.includes(id)) await this.node.proposeConfChange({ type: 'addLearner', node: id });
    this.opts.logger.info({ member: id, address }, 'member added as learner; waiting for it to catch up');
    // 3. promoted once nearly caught up, so the quorum never waits on a member still copying the log
    if (await this.waitCaughtUp(id, this.catchUpTimeout())) {
      await this.node.proposeConfChange({ type: 'promote', node: id });
      this.opts.logger.info({ member: id }, 'learner promoted to voter');
      return { done: true, body: this.memberBody(id, 'voter') };
    }
    void this.promoteWhenCaughtUp(id);
    return { done: false, body: this.memberBody(id, 'learner') };
  }

  private async promoteWhenCaughtUp(id: NodeId): Promise<void> {
    const pending = { id, cancelled: false };
    this.pendingLearner = pending;
    try {
      while (!pending.cancelled && this.node.isLeader && this.node.confState().learners.includes(id)) {
        if (await this.waitCaughtUp(id, 5_000)) {
          await this.node.proposeConfChange({ type: 'promote', node: id });
          this.opts.logger.info({ member: id }, 'learner promoted to voter (background)');
          return;
        }
      }
    } catch (e) {
      this.opts.logger.warn({ member: id, err: (e as Error).message }, 'background promotion failed; the leader retries while the learner is a member');
    } finally {
      if (!pending.cancelled) this.changeInProgress = null;
      if (this.pendingLearner === pending) this.pendingLearner = null;
    }
  }

  private async waitCaughtUp(id: NodeId, timeoutMs: number): Promise<boolean> {
    const lag = this.opts.promoteLagEntries ?? 64;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.node.isLeader) {
      const p = this.node.progressOf(id);
      if (p && p.match > 0 && p.match + lag >= this.node.lastIndex()) return true;
      await sleep(20);
    }
    return false;
  }

  private async removeHere(id: NodeId): Promise<MemberChangeResult> {
    const conf = this.node.confState();
    const isMember = conf.voters.includes(id) || conf.learners.includes(id);
    if (!isMember) {
      if (this.node.store.members().has(id)) await this.node.proposeCommand({ kind: 'removeMember', id });
      throw new ClusterError('not_found', `${id} is not a member of this cluster`);
    }
    if (id === this.node.id) {
      // the leader never removes itself: it hands over first and the new leader performs the removal.
      // The new leader's answer may never arrive (it drops its link to us once we are out), so our own
      // removal, applied here, is the success signal.
      await this.node.handOverLeadership(this.opts.requestTimeoutMs);
      const forwarded = this.admin({ op: 'remove', id });
      forwarded.catch(() => undefined);
      const removed = this.untilRemoved(this.opts.requestTimeoutMs).then((): MemberChangeResult => ({
        done: true,
        body: { id, removed: true, voters: this.node.confState().voters, learners: this.node.confState().learners },
      }));
      return Promise.race([forwarded.catch((e: unknown) => (this.node.removed ? removed : Promise.reject(e))), removed]);
    }
    // a learner that never caught up (e.g. it never started) can always be removed: that cancels its promotion
    if (this.pendingLearner?.id === id) {
      this.pendingLearner.cancelled = true;
      this.pendingLearner = null;
      this.changeInProgress = null;
    }
    return this.exclusive(`remove ${id}`, async () => {
      await this.node.proposeConfChange({ type: 'removeNode', node: id });
      await this.node.proposeCommand({ kind: 'removeMember', id });
      this.opts.logger.info({ member: id }, 'member removed');
      return { done: true, body: { id, removed: true, voters: this.node.confState().voters, learners: this.node.confState().learners } };
    });
  }

  /** Resolves once this node has applied its own removal; rejects with timeout after `timeoutMs`. */
  private async untilRemoved(timeoutMs: number): Promise<void> {
    if (!(await until(this.node.events, 'halted', () => this.node.removed, timeoutMs))) {
      throw new ClusterError('timeout', `${this.node.id} did not see its own removal within ${timeoutMs} ms`);
    }
  }

  private memberBody(id: NodeId, status: 'voter' | 'learner'): Record<string, unknown> {
    const p = this.node.progressOf(id);
    const conf = this.node.confState();
    return {
      id,
      status,
      match_index: p?.match ?? 0,
      leader_last_index: this.node.lastIndex(),
      voters: conf.voters,
      learners: conf.learners,
    };
  }

  private catchUpTimeout(): number {
    return this.opts.catchUpTimeoutMs ?? 30_000;
  }
}

function encodeIndex(index: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(index, 0);
  return b;
}

function decodeIndex(b: Uint8Array): number {
  if (b.byteLength !== 8) throw new ClusterError('unavailable', 'malformed propose answer from the leader');
  return Buffer.from(b.buffer, b.byteOffset, 8).readDoubleBE(0);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
