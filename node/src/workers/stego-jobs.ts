// The jobs the stego worker understands. Kept apart from the worker entry so the main thread can
// import the types without loading the engine.
import type { EngineOptions, Payload } from '../stego/engine.js';

export type StegoJob =
  /** fingerprintKey: also answer an HMAC of the request (idempotency: same request ⇔ same fingerprint). */
  | { kind: 'embed'; png: Uint8Array; payload: Payload; options: EngineOptions; digest: boolean; fingerprintKey?: string }
  | { kind: 'extract'; png: Uint8Array; options: EngineOptions }
  | { kind: 'capacity'; png: Uint8Array; options: EngineOptions }
  /** Structural check of a PNG about to be stored (png/validate.ts); answers its SHA-256. */
  | { kind: 'validate'; png: Uint8Array; maxPixels: number; fingerprintKey?: string };

export interface CapacityResult {
  width: number;
  height: number;
  capacityBytes: number;
}

export type StegoJobResult =
  | { kind: 'embed'; png: Uint8Array; sha256?: string; fingerprint?: string }
  | { kind: 'extract'; payload: Payload }
  | { kind: 'capacity'; capacity: CapacityResult }
  /** The validated PNG comes back (it was transferred in) with its digest. */
  | { kind: 'validate'; png: Uint8Array; sha256: string; width: number; height: number; fingerprint?: string };
