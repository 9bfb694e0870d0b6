import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokens, parseTokens, TokenConfigError } from './tokens.js';
import { RateLimiter } from './rate-limit.js';

describe('API tokens', () => {
  it('parses the line format with scopes, quota and rate, ignoring comments', () => {
    const reg = parseTokens('# team tokens\nalice aaaaaaaaaaaaaaaa01 read,write,delete quota=1000 rate=5\nbob bbbbbbbbbbbbbbbb02 read ; carol cccccccccccccccc03 write');
    expect(reg.size).to.equal(3);
    const alice = reg.authenticate('aaaaaaaaaaaaaaaa01')!;
    expect(alice.id).to.equal('alice');
    expect([...alice.scopes]).to.deep.equal(['read', 'write', 'delete']);
    expect(alice).to.include({ quotaBytes: 1000, ratePerSecond: 5 });
    expect(reg.authenticate('cccccccccccccccc03')!.id).to.equal('carol');
    expect(reg.authenticate('aaaaaaaaaaaaaaaa0')).to.equal(undefined);
    expect(reg.authenticate('')).to.equal(undefined);
  });

  it('parses the JSON format (object or bare array) with defaults', () => {
    const reg = parseTokens(JSON.stringify({ tokens: [{ id: 'ci', token: 'x'.repeat(32), scopes: ['read'] }] }));
    const ci = reg.authenticate('x'.repeat(32))!;
    expect(ci.quotaBytes).to.be.above(0);
    expect(ci.ratePerSecond).to.be.above(0);
    expect(parseTokens(JSON.stringify([{ id: 'a', token: 'y'.repeat(16), scopes: 'read,write' }])).size).to.equal(1);
  });

  it('refuses bad entries naming them: short token, unknown scope, duplicate id, bad JSON', () => {
    expect(() => parseTokens('a short read')).to.throw(TokenConfigError, /at least 16/);
    expect(() => parseTokens('a aaaaaaaaaaaaaaaa01 admin')).to.throw(TokenConfigError, /unknown scope "admin"/);
    expect(() => parseTokens('a aaaaaaaaaaaaaaaa01 read\na bbbbbbbbbbbbbbbb01 read')).to.throw(TokenConfigError, /twice/);
    expect(() => parseTokens('{"tokens": [')).to.throw(TokenConfigError, /invalid JSON/);
  });

  it('loads from STEGO_API_TOKENS_FILE before STEGO_API_TOKENS; neither means no tokens', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tokens-'));
    try {
      const file = join(dir, 'tokens');
      await writeFile(file, 'fromfile ffffffffffffffff01 read\n');
      const reg = loadTokens({ STEGO_API_TOKENS_FILE: file, STEGO_API_TOKENS: 'inline iiiiiiiiiiiiiiii01 read' });
      expect(reg.authenticate('ffffffffffffffff01')?.id).to.equal('fromfile');
      expect(reg.authenticate('iiiiiiiiiiiiiiii01')).to.equal(undefined);
      expect(loadTokens({ STEGO_API_TOKENS: 'inline iiiiiiiiiiiiiiii01 read' }).size).to.equal(1);
      expect(loadTokens({}).size).to.equal(0);
      expect(() => loadTokens({ STEGO_API_TOKENS_FILE: join(dir, 'missing') })).to.throw(TokenConfigError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rate limiter: a burst of 2 × rate, then Retry-After until the bucket refills', () => {
    let now = 0;
    const rl = new RateLimiter(() => now);
    const results = Array.from({ length: 5 }, () => rl.take('t', 2).allowed);
    expect(results).to.deep.equal([true, true, true, true, false]);
    expect(rl.take('t', 2).retryAfterSeconds).to.equal(1);
    now += 1000;
    expect(rl.take('t', 2).allowed).to.equal(true);
    expect(rl.take('other', 2).allowed).to.equal(true);
  });
});
