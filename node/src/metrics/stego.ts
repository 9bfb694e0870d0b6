// Steganography throughput: bytes hidden and recovered, and the size of the carrier images handled.
// Durations are the worker pool's job histogram (stego_pool_job_duration_seconds{kind,outcome}).
import { Counter, type Registry } from 'prom-client';

export type StegoOperation = 'embed' | 'extract';

export class StegoMetrics {
  /** Payload bytes hidden (embed) or recovered (extract) by successful jobs. */
  readonly payloadBytes: Counter<'operation'>;
  /** Carrier PNG bytes received by successful jobs. */
  readonly imageBytes: Counter<'operation'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.payloadBytes = new Counter({
      name: 'stego_payload_bytes_total', help: 'payload bytes hidden (embed) or recovered (extract) by successful jobs', labelNames: ['operation'], registers,
    });
    this.imageBytes = new Counter({
      name: 'stego_image_bytes_total', help: 'carrier PNG bytes received by successful jobs', labelNames: ['operation'], registers,
    });
  }

  jobDone(operation: StegoOperation, payloadBytes: number, imageBytes: number): void {
    this.payloadBytes.inc({ operation }, payloadBytes);
    this.imageBytes.inc({ operation }, imageBytes);
  }
}
