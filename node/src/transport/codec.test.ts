import { expect } from 'chai';
import fc from 'fast-check';
import { MESSAGE_TYPES, makeMessage, type Message } from '../raft/message.js';
import { decodeFrame, encodeFrame, encodeFrameSegments, encodePartInto, WIRE_VERSION, type Frame, type FrameOf } from './codec.js';
import { CodecError } from './errors.js';

const uint = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const id = fc.string({ minLength: 1, maxLength: 12 });
const bytes = fc.uint8Array({ maxLength: 300 });
const meta = fc.record({
  index: uint,
  term: uint,
  conf: fc.record({ voters: fc.array(id, { maxLength: 5 }), learners: fc.array(id, { maxLength: 3 }) }),
});
const entry = fc.record({ term: uint, index: uint, type: fc.constantFrom('normal' as const, 'conf' as const, 'noop' as const), data: bytes });

const message: fc.Arbitrary<Message> = fc.record(
  {
    type: fc.constantFrom(...MESSAGE_TYPES),
    from: id,
    to: id,
    term: uint,
    logTerm: uint,
    index: uint,
    commit: uint,
    reject: fc.boolean(),
    rejectHint: uint,
    entries: fc.array(entry, { maxLength: 6 }),
    ctx: bytes,
    snapshot: meta,
  },
  { requiredKeys: ['type', 'from', 'to', 'term', 'logTerm', 'index', 'commit', 'reject', 'rejectHint'] },
);

const frame: fc.Arbitrary<Frame> = fc.oneof(
  message.map((msg) => ({ t: 'raft' as const, msg })),
  fc.record({ t: fc.constant('req' as const), id: uint, kind: fc.string(), body: bytes }),
  fc.record({ t: fc.constant('res' as const), id: uint, body: bytes }),
  fc.record({ t: fc.constant('err' as const), id: uint, code: fc.string(), message: fc.string() }),
  fc.record({ t: fc.constant('snapOffer' as const), sid: fc.string(), meta, size: uint }),
  fc.record({ t: fc.constant('snapAccept' as const), sid: fc.string(), offset: uint }),
  fc.record({ t: fc.constant('snapChunk' as const), sid: fc.string(), offset: uint, data: fc.uint8Array({ maxLength: 5000 }) }),
  fc.record({ t: fc.constant('snapAck' as const), sid: fc.string(), offset: uint }),
  fc.record({ t: fc.constant('snapEnd' as const), sid: fc.string(), sha256: fc.string() }),
  fc.record(
    { t: fc.constant('snapDone' as const), sid: fc.string(), ok: fc.boolean(), code: fc.string(), message: fc.string() },
    { requiredKeys: ['t', 'sid', 'ok'] },
  ),
  fc.record({ t: fc.constant('challenge' as const), cluster: fc.string(), id, nonce: fc.string() }),
  fc.record({
    t: fc.constant('auth' as const), cluster: fc.string(), from: id, to: id, nonce: fc.string(), incarnation: fc.string(), mac: fc.string(),
  }),
  fc.record({ t: fc.constant('welcome' as const), incarnation: fc.string(), mac: fc.string() }),
  fc.record({ t: fc.constant('deny' as const), code: fc.string(), message: fc.string() }),
);

/** Decoding garbage may succeed (if it happens to be a frame) or throw CodecError; nothing else. */
function decodesOrRefusesCleanly(buf: Uint8Array): void {
  try {
    decodeFrame(buf);
  } catch (err) {
    expect(err).to.be.instanceOf(CodecError);
  }
}

describe('transport codec', function () {
  it('round-trips every frame kind, binary blobs included', function () {
    fc.assert(
      fc.property(frame, (f) => {
        expect(decodeFrame(encodeFrame(f))).to.deep.equal(f);
      }),
      { numRuns: 500 },
    );
  });

  it('encodes Buffers (which have toJSON) as blobs, not as JSON arrays', function () {
    const data = Buffer.from('héllo wörld');
    const m = makeMessage({ type: 'app', from: 'a', to: 'b', entries: [{ term: 1, index: 1, type: 'normal', data }] });
    const wire = encodeFrame({ t: 'raft', msg: m });
    expect(wire.includes(Buffer.from('"Buffer"'))).to.equal(false);
    const back = decodeFrame(wire);
    expect(back.t === 'raft' && Buffer.from(back.msg.entries![0]!.data).equals(data)).to.equal(true);
  });

  it('refuses every truncation of a valid frame with a CodecError', function () {
    fc.assert(
      fc.property(frame, fc.nat(), (f, cut) => {
        const wire = encodeFrame(f);
        const at = cut % wire.length;
        expect(() => decodeFrame(wire.subarray(0, at))).to.throw(CodecError);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws anything but a CodecError on random bytes or mutated frames', function () {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), decodesOrRefusesCleanly), { numRuns: 1000 });
    fc.assert(
      fc.property(frame, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (f, edits) => {
        const wire = Buffer.from(encodeFrame(f));
        for (const [pos, val] of edits) wire[pos % wire.length] = val;
        decodesOrRefusesCleanly(wire);
      }),
      { numRuns: 1000 },
    );
  });

  it('names what is wrong: version, kind, header length, trailing bytes, field types', function () {
    const good = encodeFrame({ t: 'snapAck', sid: 's', offset: 3 });
    const withVersion = Buffer.from(good);
    withVersion[0] = WIRE_VERSION + 1;
    expect(() => decodeFrame(withVersion)).to.throw(CodecError, /version/);
    const withKind = Buffer.from(good);
    withKind[1] = 200;
    expect(() => decodeFrame(withKind)).to.throw(CodecError, /kind/);
    const longHeader = Buffer.from(good);
    longHeader.writeUInt32BE(1 << 30, 2);
    expect(() => decodeFrame(longHeader)).to.throw(CodecError, /header length/);
    expect(() => decodeFrame(Buffer.concat([good, Buffer.of(1)]))).to.throw(CodecError, /trailing/);
    const negative = encodeFrame({ t: 'snapAck', sid: 's', offset: -1 } as Frame);
    expect(() => decodeFrame(negative)).to.throw(CodecError, /offset/);
    const badMsg = encodeFrame({ t: 'raft', msg: { type: 'gossip', from: 'a', to: 'b' } as unknown as Message });
    expect(() => decodeFrame(badMsg)).to.throw(CodecError, /msg/);
    expect(() => decodeFrame(Buffer.of(1, 2))).to.throw(CodecError, /preamble/);
  });

  it('encodes a large frame as header plus payload views, and a part into a reused buffer, byte for byte as encodeFrame', function () {
    const data = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff);
    const frame: Frame = { t: 'req', id: 9, kind: 'propose', body: data };
    const segments = encodeFrameSegments(frame);
    expect(segments[1]!.buffer).to.equal(data.buffer);
    expect(Buffer.concat(segments).equals(encodeFrame(frame))).to.equal(true);
    const scratch = Buffer.alloc(300_000 + 1024);
    for (const part of [
      { t: 'part', id: 3, last: false, data: data.subarray(0, 1000), total: 300_000 },
      { t: 'part', id: 3, last: true, data: data.subarray(1000) },
    ] as FrameOf<'part'>[]) {
      const bytes = encodePartInto(scratch, part);
      expect(bytes.buffer).to.equal(scratch.buffer);
      expect(bytes.equals(encodeFrame(part))).to.equal(true);
      expect(decodeFrame(bytes)).to.deep.include({ t: 'part', id: 3, last: part.last });
    }
    // too small a scratch buffer: a new one, same bytes
    const small = encodePartInto(Buffer.alloc(10), { t: 'part', id: 1, last: true, data: data.subarray(0, 100) });
    expect(small.equals(encodeFrame({ t: 'part', id: 1, last: true, data: data.subarray(0, 100) }))).to.equal(true);
  });
});
