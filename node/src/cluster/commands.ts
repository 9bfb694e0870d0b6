// Replicated commands, encoded compactly for the raft log: a small binary header followed by the raw
// PNG bytes (no base64, no JSON around megabytes of image data).
//
//   put:          [1][idLen u8][id][sha256 32B][createdAt f64 BE][ctLen u8][contentType][bytes...]
//   put by a client (owner, quota, idempotency key; see PutCommand):
//                 [5][idLen u8][id][sha256 32B][createdAt f64 BE][ctLen u8][contentType]
//                 [ownerLen u8][owner][quotaBytes f64 BE][keyLen u8][key][fpLen u8][fingerprint][bytes...]
//   delete:       [2][idLen u8][id]
//   setMember:    [3][idLen u8][id][addrLen u8][raft address]
//   removeMember: [4][idLen u8][id]

import type { NodeId } from '../raft/types.js';

export interface PutCommand {
  kind: 'put';
  id: string;
  sha256: Uint8Array;
  createdAt: number;
  contentType: string;
  bytes: Uint8Array;
  /** API token id that wrote the object (quota and idempotency keys are scoped by it). */
  owner?: string;
  /** The owner's stored-bytes quota: the put is dropped at apply when it would go over (0: none). */
  quotaBytes?: number;
  /** Idempotency-Key of the request (with `owner`): a fresh put under the same key is dropped at apply. */
  idempotencyKey?: string;
  /** HMAC of the request that created the object, so a reused key with another body is recognised. */
  fingerprint?: Uint8Array;
}
export interface DeleteCommand {
  kind: 'delete';
  id: string;
}
/** Replicates a member's raft address so every node can dial it (recorded before addLearner). */
export interface SetMemberCommand {
  kind: 'setMember';
  id: NodeId;
  address: string;
}
export interface RemoveMemberCommand {
  kind: 'removeMember';
  id: NodeId;
}
export type Command = PutCommand | DeleteCommand | SetMemberCommand | RemoveMemberCommand;

const KIND_CODE = { put: 1, delete: 2, setMember: 3, removeMember: 4 } as const;
const CLIENT_PUT_CODE = 5;

export class CommandDecodeError extends Error {
  readonly code = 'corrupt_command';
  constructor(message: string) {
    super(message);
    this.name = 'CommandDecodeError';
  }
}

function shortString(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length === 0 || b.length > 255) throw new RangeError(`${what} must be 1..255 bytes, got ${b.length}`);
  return b;
}

export function encodeCommand(cmd: Command): Uint8Array {
  const id = shortString(cmd.id, 'id');
  const head = Buffer.from([KIND_CODE[cmd.kind], id.length]);
  switch (cmd.kind) {
    case 'put': {
      if (cmd.sha256.length !== 32) throw new RangeError('sha256 must be 32 bytes');
      const ct = shortString(cmd.contentType, 'contentType');
      const fixed = Buffer.alloc(32 + 8 + 1);
      fixed.set(cmd.sha256, 0);
      fixed.writeDoubleBE(cmd.createdAt, 32);
      fixed.writeUInt8(ct.length, 40);
      if (cmd.owner === undefined && cmd.idempotencyKey === undefined && !cmd.quotaBytes) {
        return Buffer.concat([head, id, fixed, ct, cmd.bytes]);
      }
      head[0] = CLIENT_PUT_CODE;
      const owner = Buffer.from(cmd.owner ?? '', 'utf8');
      const key = Buffer.from(cmd.idempotencyKey ?? '', 'utf8');
      const fp = Buffer.from(cmd.fingerprint ?? new Uint8Array(0));
      if (owner.length > 255 || key.length > 255 || fp.length > 255) throw new RangeError('owner, idempotency key and fingerprint must be ≤ 255 bytes');
      const quota = Buffer.alloc(8);
      quota.writeDoubleBE(cmd.quotaBytes ?? 0, 0);
      const client = Buffer.concat([Buffer.from([owner.length]), owner, quota, Buffer.from([key.length]), key, Buffer.from([fp.length]), fp]);
      return Buffer.concat([head, id, fixed, ct, client, cmd.bytes]);
    }
    case 'setMember': {
      const addr = shortString(cmd.address, 'address');
      return Buffer.concat([head, id, Buffer.from([addr.length]), addr]);
    }
    case 'delete':
    case 'removeMember':
      return Buffer.concat([head, id]);
  }
}

class Cursor {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  take(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new CommandDecodeError(`command truncated at byte ${this.pos}`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u8(): number {
    return this.take(1)[0]!;
  }
  shortString(): string {
    return this.take(this.u8()).toString('utf8');
  }
}

export function decodeCommand(data: Uint8Array): Command {
  const c = new Cursor(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  const kind = c.u8();
  const id = c.shortString();
  switch (kind) {
    case KIND_CODE.put: {
      const sha256 = c.take(32);
      const createdAt = c.take(8).readDoubleBE(0);
      const contentType = c.shortString();
      return { kind: 'put', id, sha256, createdAt, contentType, bytes: c.buf.subarray(c.pos) };
    }
    case CLIENT_PUT_CODE: {
      const sha256 = c.take(32);
      const createdAt = c.take(8).readDoubleBE(0);
      const contentType = c.shortString();
      const owner = c.take(c.u8()).toString('utf8');
      const quotaBytes = c.take(8).readDoubleBE(0);
      const key = c.take(c.u8()).toString('utf8');
      const fingerprint = c.take(c.u8());
      const cmd: PutCommand = { kind: 'put', id, sha256, createdAt, contentType, bytes: c.buf.subarray(c.pos), owner, quotaBytes };
      if (key !== '') cmd.idempotencyKey = key;
      if (fingerprint.length > 0) cmd.fingerprint = fingerprint;
      return cmd;
    }
    case KIND_CODE.delete:
      return { kind: 'delete', id };
    case KIND_CODE.setMember:
      return { kind: 'setMember', id, address: c.shortString() };
    case KIND_CODE.removeMember:
      return { kind: 'removeMember', id };
    default:
      throw new CommandDecodeError(`unknown command kind ${kind}`);
  }
}
