// HMAC challenge-response of the link handshake (see docs/transport.md, "Authentication").
// Both sides prove knowledge of the cluster secret over fresh nonces from *both* sides, bound to the
// cluster id and both node ids, so a recorded handshake cannot be replayed and a node of another
// cluster (other secret or other cluster id) cannot join.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NodeId } from '../raft/types.js';

const PROTOCOL_LABEL = 'stego-raft-link-v1';

export interface HandshakeTranscript {
  cluster: string;
  client: NodeId;
  server: NodeId;
  serverNonce: string;
  clientNonce: string;
  /** The incarnation of the side producing the MAC (a random id per process start). */
  incarnation: string;
}

export type HandshakeRole = 'client' | 'server';

export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

export function handshakeMac(secret: Uint8Array, role: HandshakeRole, t: HandshakeTranscript): string {
  // A JSON array leaves no room for delimiter ambiguity between the fields.
  const transcript = JSON.stringify([PROTOCOL_LABEL, role, t.cluster, t.client, t.server, t.serverNonce, t.clientNonce, t.incarnation]);
  return createHmac('sha256', secret).update(transcript).digest('hex');
}

export function macMatches(secret: Uint8Array, role: HandshakeRole, t: HandshakeTranscript, mac: string): boolean {
  const expected = Buffer.from(handshakeMac(secret, role, t), 'hex');
  const given = Buffer.from(mac, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
