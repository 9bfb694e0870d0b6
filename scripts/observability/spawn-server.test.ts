// spawnServer: a server process that dies before it is ready fails the start at once, with its own words.
import { expect } from 'chai';
import { spawnServer } from './prometheus.js';

describe('spawnServer', () => {
  it('fails at once, with the exit code and the last lines, when the process exits before it is ready', async () => {
    const output: string[] = [];
    const started = Date.now();
    const err = await spawnServer('a doomed server', process.execPath, ['-e', "console.error('listen EADDRINUSE: address already in use :::1234'); process.exit(3)"], undefined, output, async () => false, 20_000).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).to.match(/a doomed server exited \(code 3, signal null\) before it was ready/);
    expect(err?.message).to.contain('EADDRINUSE');
    expect(Date.now() - started).to.be.below(10_000);
  });

  it('on a timeout, stops the process and says what it printed', async () => {
    const output: string[] = [];
    const err = await spawnServer('a silent server', process.execPath, ['-e', "console.log('still starting'); setInterval(() => {}, 1000)"], undefined, output, async () => false, 1500).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).to.match(/timed out after 1500 ms waiting for a silent server; its last lines:\nstill starting/);
  });

  it('returns the running process once it is ready', async () => {
    const output: string[] = [];
    const child = await spawnServer('a ready server', process.execPath, ['-e', "console.log('up'); setInterval(() => {}, 1000)"], undefined, output, async () => output.includes('up'), 10_000);
    expect(child.exitCode).to.equal(null);
    child.kill('SIGKILL');
  });
});
