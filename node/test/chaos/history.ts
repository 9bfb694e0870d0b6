// One operation of a chaos history, as a client saw it: when it was invoked and completed (monotonic ms
// since the run started), what it asked, what came back, and which node answered.
//
// Outcome:
//   ok       the node answered and the answer is definite (2xx, or 404 for get/delete)
//   fail     definitely had no effect (a 4xx refusal of a write, any failed read)
//   unknown  a write that may or may not have taken effect (timeout, connection error, 5xx): the checker
//            lets it take effect at any point after its invocation, or never

export type OpKind = 'put' | 'get' | 'delete';
export type Outcome = 'ok' | 'fail' | 'unknown';

export interface Op {
  /** Unique within the history, in invocation order. */
  id: number;
  client: number;
  /** Logical key: a contended register `r<n>` or a write-once `u<client>-<n>`. */
  key: string;
  /**
   * The object the op is about, which the linearizability check partitions by: for a put, the id its
   * answer named (undefined while the outcome is unknown: the node picks the id, so an unanswered put
   * created an object no one can name, unless a retry under the same Idempotency-Key later names it);
   * for a get or delete, the id it addressed — the key's latest acknowledged object, or, when the key has
   * none, a fresh id no put can have created (the model then says absent).
   */
  object?: string;
  kind: OpKind;
  /** put: the sha256 of the PNG sent. */
  value?: string;
  /** get: the sha256 read (null = 404). put: the sha256 the node says is stored. delete: true = 204, false = 404. */
  result?: string | null | boolean;
  call: number;
  /** Completion time; Infinity for unknown outcomes. */
  ret: number;
  outcome: Outcome;
  /** Node the request was sent to / the node that answered (X-Stego-Node). */
  node: string;
  answeredBy?: string;
  /** HTTP status or error text, for the report. */
  detail?: string;
  /** Set on a put that retries an earlier unknown put with the same key and value. */
  retryOf?: number;
}

export function describeOp(op: Op): string {
  const ret = Number.isFinite(op.ret) ? op.ret.toFixed(1) : '∞';
  const short = (v: unknown) => (typeof v === 'string' ? v.slice(0, 10) : String(v));
  let what: string;
  switch (op.kind) {
    case 'put':
      what = `put(${op.key}, ${short(op.value)})${op.outcome === 'ok' ? ` → ${short(op.result)}` : ''}`;
      break;
    case 'get':
      what = `get(${op.key})${op.outcome === 'ok' ? ` → ${op.result === null ? 'absent' : short(op.result)}` : ''}`;
      break;
    case 'delete':
      what = `delete(${op.key})${op.outcome === 'ok' ? ` → ${op.result ? '204' : '404'}` : ''}`;
      break;
  }
  const obj = op.object ? ` ${op.object.slice(0, 8)}` : '';
  const by = op.answeredBy && op.answeredBy !== op.node ? ` via ${op.node} answered by ${op.answeredBy}` : ` @${op.node}`;
  return `#${op.id} c${op.client} [${op.call.toFixed(1)}, ${ret}] ${op.outcome.padEnd(7)} ${what}${obj}${by}${op.detail ? ` (${op.detail})` : ''}`;
}
