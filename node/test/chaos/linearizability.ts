// Linearizability checker for the object store seen as a key-value map, in the style of Wing & Gong with
// Lowe's memoization, as Porcupine implements it: per key (P-compositionality, Herlihy & Wing), a
// depth-first search over the entries (calls and returns, in time order) that linearizes a pending call
// when the model accepts it and backtracks when it meets the return of an op it could not place. A cache of
// (set of linearized ops, model state) prunes configurations already explored.
//
// The model, per object (Op.object: the id a put's answer named, or the id a get or delete addressed; the
// node picks ids, so a put whose outcome is unknown has none and stands apart under its logical key, where
// it is dropped unless something observed its value, which is then itself an anomaly):
//   state   the sha256 of the stored object, or null when absent
//   put(v)  first write wins (the store keeps the first put of an id): absent → v; present → unchanged.
//           An ok put returns the sha256 the node says is stored, which must equal the state after the put.
//   get     returns the state (null = 404); the bytes' sha256 is checked separately by the client
//   delete  204: the state becomes absent. 404: the state was absent. A 204 does not claim the object
//           existed at the delete's linearization point: the service checks existence with a read barrier
//           and then replicates the delete, two steps (docs/cluster.md), so two racing deletes may both
//           answer 204.
// Unknown outcomes (timeouts, 5xx, connection errors) may take effect at any time after their invocation
// or never: their return is at infinity, and the model accepts them in any state without a result check.

import { describeOp, type Op } from './history.js';

export type KvState = string | null;

/** The model's transition: the next state, or undefined when the op's answer is impossible in `state`. */
export function stepKv(state: KvState, op: Op, ignorePutResult = false): KvState | undefined {
  switch (op.kind) {
    case 'get':
      return op.result === state ? state : undefined;
    case 'put': {
      const next = state ?? op.value ?? null;
      if (!ignorePutResult && op.outcome === 'ok' && typeof op.result === 'string' && op.result !== next) return undefined;
      return next;
    }
    case 'delete':
      if (op.outcome === 'ok' && op.result === false) return state === null ? null : undefined;
      return null;
  }
}

interface ListEntry {
  op: Op;
  /** Index of the op within its key's sub-history (bit in the linearized set). */
  bit: number;
  isCall: boolean;
  time: number;
  match: ListEntry | null;
  prev: ListEntry | null;
  next: ListEntry | null;
}

export type CheckOutcome = 'ok' | 'illegal' | 'timeout';

export interface KeyResult {
  key: string;
  outcome: CheckOutcome;
  ops: number;
  steps: number;
  /** Illegal only: the longest sequence the search managed to linearize, and the op it could not place. */
  longestPrefix?: Op[];
  stuck?: Op;
}

export interface CheckOptions {
  /** Search steps per key before giving up with 'timeout' (never reported as a pass). */
  maxSteps?: number;
  /**
   * Do not check the sha256 an ok put answers with (only its effect). Used to tell an anomaly in the put
   * response alone from one in the stored state. Unknown puts are then no longer "observed" by puts.
   */
  ignorePutResult?: boolean;
}

class BitSet {
  private readonly words: Uint32Array;
  constructor(n: number) {
    this.words = new Uint32Array(Math.ceil(n / 32) || 1);
  }
  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31));
  }
  has(i: number): boolean {
    return (this.words[i >>> 5]! & (1 << (i & 31))) !== 0;
  }
  key(): string {
    return Buffer.from(this.words.buffer, this.words.byteOffset, this.words.byteLength).toString('latin1');
  }
}

/**
 * Ops that cannot affect the verdict are dropped before the search: definite failures, reads whose
 * outcome is unknown, and unknown puts whose value no one ever observed (had such a put taken effect,
 * something deleted it before any read; deletes do not depend on presence in this model, so leaving it
 * out changes no other op's legality, and it keeps the search from branching over every timed-out put).
 */
export function prepare(history: readonly Op[], opts: CheckOptions = {}): Op[] {
  const observed = new Set<string>();
  for (const op of history) {
    if (op.outcome !== 'ok') continue;
    if ((op.kind === 'get' || (op.kind === 'put' && !opts.ignorePutResult)) && typeof op.result === 'string') observed.add(op.result);
  }
  // An unknown put whose value someone observed took effect before the first observation completed: its
  // return can be moved from infinity to that completion (sound when no other put carries the same value;
  // retries of the same request do, and keep infinity). Ops are copied, the history is not changed.
  const firstSeen = new Map<string, number>();
  const putsOfValue = new Map<string, number>();
  for (const op of history) {
    if (op.kind === 'put' && op.value !== undefined) putsOfValue.set(op.value, (putsOfValue.get(op.value) ?? 0) + 1);
    if (op.outcome !== 'ok' || typeof op.result !== 'string') continue;
    if (op.kind === 'get' || (op.kind === 'put' && !opts.ignorePutResult && op.result !== op.value)) {
      firstSeen.set(op.result, Math.min(firstSeen.get(op.result) ?? Infinity, op.ret));
    }
  }
  return history
    .filter((op) => {
      if (op.outcome === 'fail') return false;
      if (op.outcome === 'unknown' && op.kind === 'get') return false;
      if (op.outcome === 'unknown' && op.kind === 'put' && !observed.has(op.value ?? '')) return false;
      return true;
    })
    .map((op) => {
      if (op.outcome !== 'unknown' || op.kind !== 'put' || putsOfValue.get(op.value ?? '') !== 1) return op;
      const seen = firstSeen.get(op.value ?? '');
      return seen !== undefined && seen > op.call ? { ...op, ret: seen } : op;
    });
}

function buildList(ops: readonly Op[]): ListEntry {
  const entries: ListEntry[] = [];
  ops.forEach((op, bit) => {
    const call: ListEntry = { op, bit, isCall: true, time: op.call, match: null, prev: null, next: null };
    const ret: ListEntry = { op, bit, isCall: false, time: op.ret, match: null, prev: null, next: null };
    call.match = ret;
    entries.push(call, ret);
  });
  // Calls before returns at the same instant: operations that touch are treated as concurrent, which can
  // only make the checker more permissive, never report a false anomaly.
  entries.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op.id - b.op.id : a.isCall ? -1 : 1));
  const head: ListEntry = { op: null as unknown as Op, bit: -1, isCall: false, time: -Infinity, match: null, prev: null, next: null };
  let prev = head;
  for (const e of entries) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return head;
}

function lift(e: ListEntry): void {
  e.prev!.next = e.next;
  e.next!.prev = e.prev;
  const m = e.match!;
  m.prev!.next = m.next;
  if (m.next) m.next.prev = m.prev;
}

function unlift(e: ListEntry): void {
  const m = e.match!;
  m.prev!.next = m;
  if (m.next) m.next.prev = m;
  e.prev!.next = e;
  e.next!.prev = e;
}

/** Checks one key's sub-history (already prepared). */
export function checkKey(key: string, ops: readonly Op[], opts: CheckOptions = {}): KeyResult {
  const maxSteps = opts.maxSteps ?? 5_000_000;
  const head = buildList(ops);
  const linearized = new BitSet(ops.length);
  const cache = new Map<string, KvState[]>();
  const stack: { entry: ListEntry; state: KvState }[] = [];
  let state: KvState = null;
  // Symmetry: unknown deletes of a key are interchangeable except for their invocation times (no answer
  // to check, same effect), and an earlier-invoked one can stand in for a later one at any point the later
  // one could take effect. So some linearization exists iff one exists whose unknown deletes taking effect
  // are the earliest-invoked ones: an unknown delete may be placed only after the previous one (by
  // invocation) was placed. That turns 2^n choices into n for n timed-out deletes.
  const prevUnknownDelete = new Map<number, number>();
  const unknownDeletes = ops
    .map((op, bit) => ({ op, bit }))
    .filter(({ op }) => op.kind === 'delete' && op.outcome === 'unknown')
    .sort((a, b) => a.op.call - b.op.call || a.op.id - b.op.id);
  for (let i = 1; i < unknownDeletes.length; i++) prevUnknownDelete.set(unknownDeletes[i]!.bit, unknownDeletes[i - 1]!.bit);
  let entry = head.next;
  let steps = 0;
  let longest: Op[] = [];
  let stuck: Op | undefined;
  while (head.next !== null) {
    if (++steps > maxSteps) return { key, outcome: 'timeout', ops: ops.length, steps };
    const e = entry!;
    if (e.isCall) {
      const before = prevUnknownDelete.get(e.bit);
      const next: KvState | undefined = before !== undefined && !linearized.has(before) ? undefined : stepKv(state, e.op, opts.ignorePutResult);
      if (next !== undefined) {
        linearized.set(e.bit);
        const k = linearized.key();
        const seen = cache.get(k);
        if (!seen || !seen.includes(next)) {
          if (seen) seen.push(next);
          else cache.set(k, [next]);
          stack.push({ entry: e, state });
          state = next;
          lift(e);
          entry = head.next;
          continue;
        }
        linearized.clear(e.bit);
      }
      entry = e.next;
    } else {
      // the return of an op not yet linearized: nothing placed so far can precede it; backtrack
      if (stack.length >= longest.length) {
        longest = stack.map((s) => s.entry.op);
        stuck = e.op;
      }
      const top = stack.pop();
      if (!top) return { key, outcome: 'illegal', ops: ops.length, steps, longestPrefix: longest, stuck };
      state = top.state;
      linearized.clear(top.entry.bit);
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { key, outcome: 'ok', ops: ops.length, steps };
}

export interface CounterExample {
  key: string;
  /** A sub-history that is itself not linearizable: a prefix up to a quiescent point, reads pruned. */
  ops: Op[];
  /** Ops of the key before the witness window that were kept but not printed. */
  omittedBefore: number;
  longestPrefix: Op[];
  stuck?: Op;
}

export interface CheckReport {
  ok: boolean;
  keys: KeyResult[];
  anomalies: CounterExample[];
  timeouts: string[];
  opsChecked: number;
}

/** The partition an op is checked in: its object (a UUID), or its logical key when no answer named one. */
export function partitionOf(op: Op): string {
  return op.object ?? op.key;
}

export function groupByKey(history: readonly Op[]): Map<string, Op[]> {
  const byKey = new Map<string, Op[]>();
  for (const op of history) {
    const k = partitionOf(op);
    const list = byKey.get(k);
    if (list) list.push(op);
    else byKey.set(k, [op]);
  }
  return byKey;
}

/** Checks a whole history: per key, and a minimal counter-example for each key that fails. */
export function checkHistory(history: readonly Op[], opts: CheckOptions = {}): CheckReport {
  const keys: KeyResult[] = [];
  const anomalies: CounterExample[] = [];
  const timeouts: string[] = [];
  let opsChecked = 0;
  for (const [key, all] of groupByKey(prepare(history, opts))) {
    const ops = [...all].sort((a, b) => a.call - b.call || a.id - b.id);
    opsChecked += ops.length;
    const r = checkKey(key, ops, opts);
    keys.push(r);
    if (r.outcome === 'timeout') timeouts.push(key);
    if (r.outcome === 'illegal') anomalies.push(shrink(key, ops, r, opts));
  }
  return { ok: anomalies.length === 0 && timeouts.length === 0, keys, anomalies, timeouts, opsChecked };
}

const illegal = (key: string, ops: readonly Op[], opts: CheckOptions) => checkKey(key, ops, opts).outcome === 'illegal';

/**
 * Sound shrinking: every step keeps a sub-history that is itself not linearizable and whose
 * non-linearizability implies the original's.
 *  1. Prefix at a quiescent point T (every op with a definite outcome invoked before T returned before T):
 *     every dropped definite op comes after every kept one in any linearization, and kept unknown ops can
 *     move to the end, so a linearization of the whole restricts to one of the prefix.
 *  2. Reads (get, delete → 404) removed one at a time: removing an observation never makes a linearizable
 *     history illegal, so if what is left is still illegal, it is a witness on its own.
 */
export function shrink(key: string, ops: readonly Op[], result: KeyResult, opts: CheckOptions = {}): CounterExample {
  let witness = [...ops];
  const definite = ops.filter((o) => o.outcome === 'ok');
  const cuts: number[] = [];
  let maxRet = -Infinity;
  for (let i = 0; i < definite.length; i++) {
    maxRet = Math.max(maxRet, definite[i]!.ret);
    const nextCall = definite[i + 1]?.call ?? Infinity;
    if (maxRet < nextCall) cuts.push(maxRet);
  }
  for (const t of cuts) {
    const prefix = ops.filter((o) => o.call <= t);
    if (prefix.length < witness.length && illegal(key, prefix, opts)) {
      witness = prefix;
      break;
    }
  }
  // bounded: each check of an illegal history is exhaustive, so removing reads stops after 400 checks or 10 s
  const budget = { checks: 400, until: Date.now() + 10_000 };
  for (let i = witness.length - 1; i >= 0 && budget.checks > 0 && Date.now() < budget.until; i--) {
    const op = witness[i]!;
    const isRead = op.kind === 'get' || (op.kind === 'delete' && op.outcome === 'ok' && op.result === false);
    if (!isRead) continue;
    const without = witness.filter((_, j) => j !== i);
    budget.checks--;
    if (illegal(key, without, opts)) witness = without;
  }
  // print the tail around the failure; earlier ops are kept in the witness but summarized
  const stuckAt = result.stuck?.call ?? Infinity;
  const firstShown = Math.max(0, witness.findIndex((o) => o.call >= stuckAt - 2_000) - 8);
  return {
    key,
    ops: witness,
    omittedBefore: firstShown,
    longestPrefix: result.longestPrefix ?? [],
    stuck: result.stuck,
  };
}

export function formatCounterExample(c: CounterExample): string {
  const keys = [...new Set(c.ops.map((o) => o.key))].join(', ');
  const lines = [`object ${c.key} (key ${keys}): not linearizable; minimal witness of ${c.ops.length} ops${c.omittedBefore ? ` (${c.omittedBefore} earlier ops not shown)` : ''}:`];
  for (const op of c.ops.slice(c.omittedBefore)) lines.push(`  ${op === c.stuck ? '!' : ' '} ${describeOp(op)}`);
  if (c.stuck) lines.push(`  the search placed at most ${c.longestPrefix.length} ops in order before failing to place #${c.stuck.id}`);
  const tail = c.longestPrefix.slice(-5);
  if (tail.length) lines.push(`  last placed: ${tail.map((o) => `#${o.id}`).join(' → ')}`);
  return lines.join('\n');
}
