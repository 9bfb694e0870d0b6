import { expect } from 'chai';
import fc from 'fast-check';
import type { Op, OpKind } from './history.js';
import { checkHistory, formatCounterExample, stepKv, type KvState } from './linearizability.js';

let nextId = 0;
function op(kind: OpKind, call: number, ret: number, fields: Partial<Op> = {}): Op {
  return {
    id: nextId++,
    client: fields.client ?? 0,
    key: fields.key ?? 'k',
    kind,
    call,
    ret: fields.outcome === 'unknown' ? Infinity : ret,
    outcome: fields.outcome ?? 'ok',
    node: 'n1',
    ...fields,
  };
}
const put = (v: string, call: number, ret: number, f: Partial<Op> = {}) => op('put', call, ret, { value: v, result: v, ...f });
const get = (r: string | null, call: number, ret: number, f: Partial<Op> = {}) => op('get', call, ret, { result: r, ...f });
const del = (existed: boolean, call: number, ret: number, f: Partial<Op> = {}) => op('delete', call, ret, { result: existed, ...f });

describe('chaos linearizability checker (key-value model)', () => {
  it('accepts a sequential history and overlapping ops that can be ordered', () => {
    const h = [put('a', 0, 1), get('a', 2, 3), del(true, 4, 5), get(null, 6, 7), put('b', 8, 9)];
    expect(checkHistory(h).ok).to.equal(true);
    // a read concurrent with a put may see either side of it
    const c = [put('a', 0, 10, { client: 1 }), get(null, 1, 2, { client: 2 }), get('a', 3, 4, { client: 3 }), get('a', 11, 12)];
    expect(checkHistory(c).ok).to.equal(true);
  });

  it('catches a stale read (a value read after its delete completed)', () => {
    const h = [put('a', 0, 1), del(true, 2, 3), get('a', 4, 5, { client: 1 })];
    const r = checkHistory(h);
    expect(r.ok).to.equal(false);
    expect(r.anomalies[0]!.ops.map((o) => o.kind)).to.deep.equal(['put', 'delete', 'get']);
    expect(formatCounterExample(r.anomalies[0]!)).to.match(/not linearizable/);
  });

  it('catches a lost write (an acknowledged put not seen by a later read)', () => {
    const h = [put('a', 0, 1), get(null, 2, 3, { client: 1 })];
    expect(checkHistory(h).ok).to.equal(false);
  });

  it('catches a duplicate: a second put of the same key replacing the first (first write must win)', () => {
    const h = [put('a', 0, 1), put('b', 2, 3, { client: 1 })];
    expect(checkHistory(h).ok).to.equal(false);
    // the correct answer to the second put names the first value
    expect(checkHistory([put('a', 0, 1), put('b', 2, 3, { client: 1, result: 'a' })]).ok).to.equal(true);
  });

  it('catches a value no one wrote, and a 404 delete of a present object', () => {
    expect(checkHistory([put('a', 0, 1), get('zz', 2, 3)]).ok).to.equal(false);
    expect(checkHistory([put('a', 0, 1), del(false, 2, 3)]).ok).to.equal(false);
  });

  it('lets an unknown write take effect late or never, but not before its invocation', () => {
    const unknownPut = put('a', 5, 0, { outcome: 'unknown', result: undefined });
    expect(checkHistory([unknownPut, get(null, 6, 7), get('a', 100, 101)]).ok).to.equal(true);
    expect(checkHistory([put('b', 5, 0, { outcome: 'unknown', result: undefined }), get(null, 6, 7)]).ok).to.equal(true);
    // observed before it was invoked: impossible
    expect(checkHistory([get('c', 0, 1), put('c', 5, 0, { outcome: 'unknown', result: undefined })]).ok).to.equal(false);
    // an unknown delete may explain a later 404
    expect(checkHistory([put('d', 0, 1), del(true, 2, 0, { outcome: 'unknown' }), get(null, 50, 51)]).ok).to.equal(true);
  });

  it('checks keys independently and ignores definite failures', () => {
    const h = [put('a', 0, 1, { key: 'x' }), put('b', 0, 1, { key: 'y' }), get('a', 2, 3, { key: 'x' }), get('b', 2, 3, { key: 'y' }),
      put('c', 4, 5, { key: 'x', outcome: 'fail', result: undefined })];
    const r = checkHistory(h);
    expect(r.ok).to.equal(true);
    expect(r.keys.map((k) => k.key).sort()).to.deep.equal(['x', 'y']);
  });

  it('partitions by the object an answer named: register puts create distinct objects, unknown puts have none', () => {
    const X = '00000000-0000-4000-8000-00000000000a';
    const Y = '00000000-0000-4000-8000-00000000000b';
    const fresh = '00000000-0000-4000-8000-00000000000f';
    // two puts of one key create two objects; reads of each see its own value; an unanswered put of the key
    // (no id) changes neither; a read at a fresh id (the key had no acknowledged put) sees absent
    const ok = [put('a', 0, 1, { key: 'r1', object: X }), put('b', 2, 3, { key: 'r1', object: Y }), put('c', 4, 0, { key: 'r1', outcome: 'unknown', result: undefined }),
      get('a', 5, 6, { key: 'r1', object: X }), get('b', 5, 6, { key: 'r1', object: Y }), del(true, 7, 8, { key: 'r1', object: X }), get(null, 9, 10, { key: 'r1', object: X }),
      get(null, 0, 1, { key: 'r2', object: fresh }), del(false, 2, 3, { key: 'r2', object: fresh })];
    const r = checkHistory(ok);
    expect(r.ok).to.equal(true);
    expect(r.keys.map((k) => k.key).sort()).to.deep.equal([X, Y, fresh].sort());
    // a fresh id that answers with bytes, or an object that shows another put's bytes, is an anomaly
    expect(checkHistory([get('a', 0, 1, { key: 'r2', object: fresh })]).ok).to.equal(false);
    expect(checkHistory([put('a', 0, 1, { key: 'r1', object: X }), put('b', 2, 3, { key: 'r1', object: Y }), get('b', 4, 5, { key: 'r1', object: X })]).ok).to.equal(false);
    // an unknown put that a retry (same Idempotency-Key and bytes) named: one object, either attempt created it
    const retried = [put('d', 0, 0, { key: 'u0-0', outcome: 'unknown', result: undefined, object: X }), put('d', 10, 11, { key: 'u0-0', object: X, retryOf: 0 }), get('d', 12, 13, { key: 'u0-0', object: X })];
    expect(checkHistory(retried).ok).to.equal(true);
  });

  it('shrinks a long history to a small witness around the injected stale read', () => {
    const h: Op[] = [];
    let t = 0;
    let state: string | null = null;
    for (let i = 0; i < 300; i++) {
      const v = `v${i}`;
      if (i % 3 === 0) {
        state = state ?? v;
        h.push(put(v, t, t + 1, { result: state, client: i % 4 }));
      } else if (i % 3 === 1) h.push(get(state, t, t + 1, { client: i % 4 }));
      else {
        h.push(del(state !== null, t, t + 1, { client: i % 4 }));
        state = null;
      }
      t += 2;
    }
    expect(checkHistory(h).ok).to.equal(true);
    // a read returning the value of the previous generation, after the delete that ended it
    const stale = h.findIndex((o, i) => i > 150 && o.kind === 'get' && o.result !== null);
    const original = h[stale]!.result;
    h[stale] = get('v0', h[stale]!.call, h[stale]!.ret);
    expect(original).to.not.equal('v0');
    const r = checkHistory(h);
    expect(r.ok).to.equal(false);
    const w = r.anomalies[0]!;
    expect(w.ops.some((o) => o.id === h[stale]!.id)).to.equal(true);
    expect(w.ops.filter((o) => o.kind === 'get')).to.have.length(1);
    expect(w.ops.length).to.be.lessThan(stale + 2);
  });

  // Property: any history produced by a real sequential execution, with each op's window stretched
  // arbitrarily around its linearization point, is accepted; changing one read to a never-written value is not.
  it('accepts every concurrent execution of the model and rejects a corrupted read (property)', () => {
    const opArb = fc.record({
      kind: fc.constantFrom<OpKind>('put', 'get', 'delete'),
      key: fc.constantFrom('a', 'b'),
      before: fc.integer({ min: 0, max: 30 }),
      after: fc.integer({ min: 0, max: 30 }),
      client: fc.integer({ min: 0, max: 5 }),
      unknown: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), fc.nat(), (specs, pick) => {
        const state = new Map<string, KvState>();
        const h: Op[] = specs.map((s, i) => {
          const point = i * 10 + 5;
          const cur = state.get(s.key) ?? null;
          const o: Op = { id: i, client: s.client, key: s.key, kind: s.kind, call: point - s.before / 10 - 0.1, ret: point + s.after / 10 + 0.1, outcome: 'ok', node: 'n1' };
          if (s.kind === 'put') {
            o.value = `v${i}`;
            o.result = cur ?? o.value;
          } else if (s.kind === 'get') o.result = cur;
          else o.result = cur !== null;
          if (s.unknown && s.kind !== 'get') {
            o.outcome = 'unknown';
            o.ret = Infinity;
          }
          const next = stepKv(cur, o);
          if (next === undefined) throw new Error('generator produced an illegal step');
          state.set(s.key, next);
          return o;
        });
        if (!checkHistory(h).ok) return false;
        const reads = h.filter((o) => o.kind === 'get');
        if (reads.length === 0) return true;
        const victim = reads[pick % reads.length]!;
        victim.result = 'never-written';
        return !checkHistory(h).ok;
      }),
      { numRuns: 300, seed: 13 },
    );
  });
});

describe('chaos linearizability checker: put answers apart from effects', () => {
  it('an ok put answering its own value although another value was stored is an anomaly of the answer only', () => {
    // put a stored; put b was a no-op but answered "b"; a delete raced both; the final read sees nothing
    const h = [put('a', 0, 1), put('b', 2, 10, { client: 1, result: 'b' }), del(true, 3, 9, { client: 2 }), get(null, 11, 12)];
    expect(checkHistory(h).ok).to.equal(false);
    expect(checkHistory(h, { ignorePutResult: true }).ok).to.equal(true);
  });
});

describe('chaos linearizability checker: many unknown outcomes', () => {
  it('checks a key with 120 timed-out deletes and puts between reads quickly, and still finds a stale read', () => {
    const h: Op[] = [];
    let t = 0;
    for (let i = 0; i < 120; i++) {
      h.push(i === 0 ? put('v0', t, t + 1, { client: 1 }) : put(`v${i}`, t, t + 1, { client: 1, result: undefined, outcome: 'unknown' }));
      h.push(del(true, t + 0.5, 0, { client: 2, outcome: 'unknown' }));
      h.push(get(i % 2 === 0 ? `v${i}` : null, t + 2, t + 3, { client: 3 }));
      t += 4;
    }
    const started = Date.now();
    const ok = checkHistory(h);
    expect(ok.ok, JSON.stringify(ok.timeouts)).to.equal(true);
    expect(Date.now() - started).to.be.below(5_000);
    // v0 read again at the end: its only put was acknowledged at the start and later values were read since
    h.push(get('v0', t + 10, t + 11, { client: 4 }));
    expect(checkHistory(h).ok).to.equal(false);
  });
});
