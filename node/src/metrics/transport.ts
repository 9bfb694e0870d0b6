// Raft link metrics, fed by the transport's event sink (WsTransportOptions.metrics). Peer ids come from
// the cluster configuration, so the `peer` label is bounded by the member count; an unauthenticated
// caller's claimed id is never a label value.
import { Counter, type Registry } from 'prom-client';

export type DropReason = 'link_down' | 'backpressure';

/** The shape of the transport's sink (see TransportMetricsSink in transport/ws-transport.ts). */
export interface TransportEvents {
  authFailure(claimedPeer: string | undefined, reason: string): void;
  linkUp(peer: string): void;
  linkDown(peer: string): void;
  dropped(peer: string, reason: DropReason): void;
}

export class TransportMetrics {
  readonly linkTransitions: Counter<'peer' | 'state'>;
  readonly droppedMessages: Counter<'peer' | 'reason'>;
  readonly authFailures: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.linkTransitions = new Counter({
      name: 'stego_transport_link_transitions_total', help: 'raft link to a peer came up or went down', labelNames: ['peer', 'state'], registers,
    });
    this.droppedMessages = new Counter({
      name: 'stego_transport_dropped_messages_total', help: 'raft messages not sent to a peer, by reason (link_down, backpressure)', labelNames: ['peer', 'reason'], registers,
    });
    this.authFailures = new Counter({
      name: 'stego_transport_auth_failures_total', help: 'raft link handshakes refused (bad MAC, unknown peer, wrong cluster)', registers,
    });
  }

  /** Event handlers for the transport; `also` runs after each (the driver needs `dropped` too). */
  events(also: Partial<TransportEvents> = {}): TransportEvents {
    return {
      authFailure: (claimed, reason) => {
        this.authFailures.inc();
        also.authFailure?.(claimed, reason);
      },
      linkUp: (peer) => {
        this.linkTransitions.inc({ peer, state: 'up' });
        also.linkUp?.(peer);
      },
      linkDown: (peer) => {
        this.linkTransitions.inc({ peer, state: 'down' });
        also.linkDown?.(peer);
      },
      dropped: (peer, reason) => {
        this.droppedMessages.inc({ peer, reason });
        also.dropped?.(peer, reason);
      },
    };
  }
}
